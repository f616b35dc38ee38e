"""The names of the allocation methods, the one list every stage reads.

The policy resource validates its ``methods`` against :data:`ALLOCATION_METHODS`;
``quant_assets.portfolio.methods`` maps each name to its estimator and refuses to import unless
it covers exactly these names. Kept here, free of imports, because resources must not import
from the asset packages.
"""

from __future__ import annotations

ALLOCATION_METHODS: tuple[str, ...] = (
    "black_litterman",
    "hrp",
    "min_cvar",
    "risk_parity",
    "constrained_markowitz",
    "herc",
    "relaxed_risk_parity",
)

# run only when a policy lists them: without a return target relaxed risk parity is the
# vanilla risk parity book again, at several times its cost (timings in the README)
ON_REQUEST_METHODS: tuple[str, ...] = ("relaxed_risk_parity",)

# the policy's default daily set
DEFAULT_METHODS: tuple[str, ...] = tuple(
    m for m in ALLOCATION_METHODS if m not in ON_REQUEST_METHODS
)

__all__ = ["ALLOCATION_METHODS", "DEFAULT_METHODS", "ON_REQUEST_METHODS"]
