"""The numbers every stage shares, each defined once.

Returns are daily and annualised with :data:`TRADING_DAYS` (volatility ``x sqrt(252)``, mean
``x 252``). A label covers :data:`LABEL_HORIZON_SESSIONS` sessions (d+1 .. d+5), so the CPCV's
purge must be at least the horizon minus one; the embargo removes further dates after each test
block against serial correlation in the features.
"""

from __future__ import annotations

TRADING_DAYS = 252
LABEL_HORIZON_SESSIONS = 5
# an annualised figure from fewer daily returns than this is noise: surfaces show n/a instead
MIN_ANNUALISED_RETURNS = 20

CPCV_FOLDS = 6
CPCV_TEST_FOLDS = 2
CPCV_PURGED_SESSIONS = 5
CPCV_EMBARGO_SESSIONS = 5

__all__ = [
    "CPCV_EMBARGO_SESSIONS",
    "CPCV_FOLDS",
    "CPCV_PURGED_SESSIONS",
    "CPCV_TEST_FOLDS",
    "LABEL_HORIZON_SESSIONS",
    "MIN_ANNUALISED_RETURNS",
    "TRADING_DAYS",
]
