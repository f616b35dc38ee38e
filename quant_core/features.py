"""The names of the stored feature columns: Qlib's Alpha158 in its order, then the factors.

The storage schema and the feature code both read them from here, so a table and the code that
fills it cannot disagree. The formulas live in ``quant_assets.features.alpha158``.
"""

from __future__ import annotations

WINDOWS: tuple[int, ...] = (5, 10, 20, 30, 60)
LOOKBACK_ROWS: int = 60

_KBAR = ("KMID", "KLEN", "KMID2", "KUP", "KUP2", "KLOW", "KLOW2", "KSFT", "KSFT2")
_PRICE = ("OPEN0", "HIGH0", "LOW0", "VWAP0")
_ROLLING = (
    "ROC", "MA", "STD", "BETA", "RSQR", "RESI", "MAX", "MIN", "QTLU", "QTLD", "RANK", "RSV",
    "IMAX", "IMIN", "IMXD", "CORR", "CORD", "CNTP", "CNTN", "CNTD", "SUMP", "SUMN", "SUMD",
    "VMA", "VSTD", "WVMA", "VSUMP", "VSUMN", "VSUMD",
)  # fmt: skip
ALPHA158_NAMES: tuple[str, ...] = (
    *_KBAR,
    *_PRICE,
    *(f"{prefix}{d}" for prefix in _ROLLING for d in WINDOWS),
)

# the factors of quant_assets.features.factors: each base factor and its sector-relative version
FACTOR_LOOKBACK_ROWS: int = 252
BASE_FACTORS: tuple[str, ...] = (
    "MOM12_1", "MOM6_1", "REV21", "HIGH52", "BETA252", "IVOL63", "SKEW63", "MAX21", "ILLIQ21",
    "DVOL21", "TURN21_252",
)  # fmt: skip
FACTOR_NAMES: tuple[str, ...] = (*BASE_FACTORS, *(f"{name}_SEC" for name in BASE_FACTORS))

__all__ = [
    "ALPHA158_NAMES",
    "BASE_FACTORS",
    "FACTOR_LOOKBACK_ROWS",
    "FACTOR_NAMES",
    "LOOKBACK_ROWS",
    "WINDOWS",
]
