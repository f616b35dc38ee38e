"""The portfolio policy: which book is live, its construction limits and its risk limits.

One resource, so the optimiser that builds the live book and the blocking checks that guard
it read the same numbers (a sector cap of 25% in the optimiser and 30% in the check would
let a breach through). Defaults are Quant50's.
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from quant_core.allocation_methods import ALLOCATION_METHODS, DEFAULT_METHODS


class PortfolioPolicy(dg.ConfigurableResource):
    """Live book, construction limits (used by the optimiser) and risk limits (used by the
    blocking checks on ``risk_metrics``). Weights and volatilities are fractions (0.25 = 25%),
    volatilities annualised."""

    live_method: str = "constrained_markowitz"
    # every method but the on-request ones (quant_core.allocation_methods): relaxed risk parity
    # without a return target is the vanilla risk parity book again, and by far the slowest fit
    # (Riskfolio's one-cone-per-asset model; README, "Portfolio benchmarks")
    methods: list[str] = Field(default_factory=lambda: list(DEFAULT_METHODS))
    # the sessions of returns every method estimates its risk model on (3 years)
    lookback_sessions: int = 756
    max_names: int = 50
    sector_cap: float = 0.25
    max_turnover: float = 0.15
    vol_target: float = 0.10
    # proportional cost per unit of NAV traded, in basis points (fees + impact)
    cost_bps: float = 10.0
    long_only: bool = True
    # risk limits checked on the live book every day
    max_drawdown: float = 0.10
    stop_loss_vol_multiple: float = 3.0
    stop_loss_vol_window: int = 5
    max_position: float = 0.10
    max_top10: float = 0.60
    vol_band_low: float = 0.02
    vol_band_high: float = 0.11

    def check_consistent(self) -> None:
        unknown = [m for m in self.methods if m not in ALLOCATION_METHODS]
        if unknown:
            raise dg.Failure(f"unknown allocation methods {unknown}; known: {ALLOCATION_METHODS}")
        if self.live_method not in self.methods:
            raise dg.Failure(
                f"live_method {self.live_method!r} is not among the methods run: {self.methods}"
            )
        if not 0 <= self.vol_band_low < self.vol_band_high:
            raise dg.Failure(
                f"volatility band [{self.vol_band_low}, {self.vol_band_high}] is empty"
            )
