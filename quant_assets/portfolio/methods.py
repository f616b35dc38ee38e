"""The allocation methods by name: name -> estimator factory, the one registry.

The names are :data:`quant_core.allocation_methods.ALLOCATION_METHODS` (the policy resource
validates against that tuple; resources import nothing from here), and this module refuses to
import unless :data:`METHODS` covers exactly those names, in that order. The books
(``books.allocate_day``), the walk-forward backtest (:data:`VIEW_METHODS`), the benchmark and
the README's list of methods all follow this registry.

Each entry builds the method's scikit-learn estimator for one day from that day's inputs and
the policy: its estimator class, the day's parameters (views, limits, sectors) and the method's
own previous book as ``previous_weights``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from quant_assets.portfolio.allocation import (
    Allocation,
    BlackLittermanAllocation,
    ConstrainedMarkowitz,
    HierarchicalEqualRiskContribution,
    HierarchicalRiskParity,
    MinimumCVaR,
    RiskParity,
)
from quant_assets.portfolio.riskfolio_methods import RelaxedRiskParity
from quant_assets.portfolio.views import view_strings
from quant_core.allocation_methods import ALLOCATION_METHODS
from resources.portfolio_policy import PortfolioPolicy

if TYPE_CHECKING:
    from quant_assets.portfolio.books import DayInputs

DayParams = Callable[["DayInputs", PortfolioPolicy], dict[str, Any]]


def _no_params(inputs: DayInputs, policy: PortfolioPolicy) -> dict[str, Any]:
    return {}


def _black_litterman_params(inputs: DayInputs, policy: PortfolioPolicy) -> dict[str, Any]:
    """The day's ML views with a positive confidence on names of the window, as absolute
    views ``mu_b + excess`` over the empirical prior."""
    if inputs.views is None:
        return {}
    usable = inputs.views.filter(
        pl.col("ticker").is_in(list(inputs.returns.columns)) & (pl.col("confidence") > 0)
    )
    if usable.is_empty():
        return {}
    views = view_strings(
        usable["ticker"].to_list(),
        usable["expected_return_daily"].to_list(),
        inputs.benchmark_mean,
    )
    confidences = usable["confidence"].to_numpy().astype(np.float64)
    return {"views": views, "view_confidences": confidences}


def _markowitz_params(inputs: DayInputs, policy: PortfolioPolicy) -> dict[str, Any]:
    """The policy's construction limits, the day's sectors and expected returns."""
    return {
        "max_names": policy.max_names,
        "sector_cap": policy.sector_cap,
        "max_turnover": policy.max_turnover,
        "vol_target": policy.vol_target,
        "cost_rate": policy.cost_bps / 1e4,
        "long_only": policy.long_only,
        "max_weight": policy.max_position,
        "max_top10": policy.max_top10,
        "sectors": inputs.sectors,
        "expected_returns": inputs.expected_returns(),
        "covariance": inputs.covariance,
        "problems": inputs.problems,
    }


@dataclass(frozen=True)
class AllocationMethod:
    """One registered method: its estimator class, the parameters it takes from a day's
    inputs and the policy, and whether it uses the ML views (the backtest runs those once
    per model)."""

    estimator: type[Allocation]
    day_params: DayParams = _no_params
    uses_views: bool = False

    def build(
        self, inputs: DayInputs, policy: PortfolioPolicy, previous_weights: Any = None
    ) -> Allocation:
        """The unfitted estimator of one day (``previous_weights``: the method's own
        previous book, None = from cash)."""
        return self.estimator(**self.day_params(inputs, policy), previous_weights=previous_weights)


METHODS: dict[str, AllocationMethod] = {
    "black_litterman": AllocationMethod(
        BlackLittermanAllocation, _black_litterman_params, uses_views=True
    ),
    "hrp": AllocationMethod(HierarchicalRiskParity),
    "min_cvar": AllocationMethod(MinimumCVaR),
    "risk_parity": AllocationMethod(RiskParity),
    "constrained_markowitz": AllocationMethod(
        ConstrainedMarkowitz, _markowitz_params, uses_views=True
    ),
    "herc": AllocationMethod(HierarchicalEqualRiskContribution),
    "relaxed_risk_parity": AllocationMethod(RelaxedRiskParity),
}

if tuple(METHODS) != ALLOCATION_METHODS:
    raise ImportError(
        f"the allocation registry {tuple(METHODS)} does not match "
        f"quant_core.allocation_methods.ALLOCATION_METHODS {ALLOCATION_METHODS}"
    )

# the methods fitted on the ML views: the backtest runs each of them once per model
VIEW_METHODS: tuple[str, ...] = tuple(name for name, m in METHODS.items() if m.uses_views)


def build_estimator(method: str, inputs: DayInputs, policy: PortfolioPolicy) -> Allocation:
    """``method``'s unfitted estimator for the day of ``inputs``, against its own previous
    book (``inputs.previous[method]``)."""
    entry = METHODS.get(method)
    if entry is None:
        raise ValueError(f"unknown allocation method {method!r}; known: {ALLOCATION_METHODS}")
    return entry.build(inputs, policy, inputs.previous.get(method))


__all__ = ["METHODS", "VIEW_METHODS", "AllocationMethod", "build_estimator"]
