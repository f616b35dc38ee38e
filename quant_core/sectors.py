"""How every layer groups tickers by sector, and what an unclassified name is.

A ticker whose sector nobody knows (neither the user's universe file nor the packaged
classification) is stored with the sector ``UNCLASSIFIED``. Wherever tickers are grouped by
sector (the sector cap of the allocation and of the risk checks, the sector weights and risk
contributions, the sector stress scenarios, the report) each unclassified name is a group of its
own, ``"Unclassified (XYZ)"``: pooling them would treat unrelated companies as one sector, and a
cap on that pool would bind on names that share nothing. Sector-relative inputs (the TFT's
static sector covariate) treat an unclassified name as missing, never as a category.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import polars as pl

UNCLASSIFIED = "Unclassified"


def is_unclassified(sector: object) -> bool:
    """True for a missing sector, ``UNCLASSIFIED`` or an unclassified name's own group key."""
    if sector is None or (isinstance(sector, float) and sector != sector):
        return True
    text = str(sector)
    return text == UNCLASSIFIED or text.startswith(f"{UNCLASSIFIED} (")


def group_key(ticker: str) -> str:
    """The sector group of one unclassified ticker: a group of its own."""
    return f"{UNCLASSIFIED} ({ticker})"


def sector_groups(sectors: pd.Series) -> pd.Series:
    """``sectors`` (indexed by ticker) with every unclassified or missing entry replaced by the
    ticker's own group key, so no two unclassified names share a group."""
    unclassified = sectors.map(is_unclassified).astype(bool)
    groups = sectors.astype(object).copy()
    groups[unclassified] = [group_key(str(t)) for t in sectors.index[unclassified]]
    return groups


def sector_group_expr(sector: str = "sector", ticker: str = "ticker") -> pl.Expr:
    """Polars twin of :func:`sector_groups` over a frame's ``sector`` and ``ticker`` columns."""
    unclassified = pl.col(sector).is_null() | (pl.col(sector) == UNCLASSIFIED)
    own = pl.format(f"{UNCLASSIFIED} ({{}})", pl.col(ticker))
    return pl.when(unclassified).then(own).otherwise(pl.col(sector)).alias(sector)


def classified_only(sectors: Mapping[str, str]) -> dict[str, str]:
    """ticker -> sector without the unclassified names (a sector-relative input leaves them
    missing)."""
    return {str(t): str(s) for t, s in sectors.items() if not is_unclassified(s)}
