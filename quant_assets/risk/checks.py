"""Risk limits on the live book as BLOCKING asset checks, named for what they guarantee.

A failed check stops every asset downstream of the checked one in the run, which is how a
breach stops paper orders. The checks name their assets by key: ``allocation_status`` and
``risk_metrics`` are each one asset of a multi-asset (with ``target_weights`` and
``risk_contributions``). Each check reads what ``allocation_status`` / ``risk_metrics`` stored
for the run's days and compares it with the ``portfolio_policy`` resource, the same numbers
the optimiser was given. The metadata names the offending days and values.
"""

import dagster as dg
import polars as pl

from quant_assets.metadata import not_evaluated
from quant_assets.queries import rows_of_run
from quant_assets.risk.limits import limit_rules, live_metrics
from resources.portfolio_policy import PortfolioPolicy
from resources.storage import Store

ALLOCATION_STATUS = dg.AssetKey("allocation_status")
RISK_METRICS = dg.AssetKey("risk_metrics")


def _live_limit_check(
    context: dg.AssetCheckExecutionContext, store: Store, policy: PortfolioPolicy, name: str
) -> dg.AssetCheckResult:
    """Pass when no live-book day of the run breaches the limit ``name`` (``limits.py``)."""
    rule = limit_rules(policy)[name]
    stored = rows_of_run(context, store, "risk_metrics")
    if stored.is_empty():
        return dg.AssetCheckResult(passed=False, metadata={"reason": "no risk_metrics stored"})
    live = live_metrics(stored, rule.metrics)
    absent = [m for m in rule.metrics if m not in live.columns]
    if live.is_empty() or absent:
        return dg.AssetCheckResult(
            passed=False,
            metadata={"reason": f"live book metrics missing: {absent or list(rule.metrics)}"},
        )
    bad = live.filter(rule.breached)
    unmeasured = live.filter(rule.unmeasured())
    latest = live.tail(1).to_dicts()[0]
    # the run's last day is the one the report shows: unmeasured there, the check cannot pass
    if bad.is_empty() and unmeasured.height and unmeasured["date"][-1] == latest["date"]:
        return not_evaluated(
            f"{', '.join(rule.required)} not measured on {latest['date']}",
            days_not_evaluated=unmeasured.height,
            **{f"limit_{k}": v for k, v in rule.limits.items()},
        )
    return dg.AssetCheckResult(
        passed=bad.is_empty(),
        metadata={
            "days_checked": live.height,
            "days_breached": bad.height,
            "days_not_evaluated": unmeasured.height,
            **{f"limit_{k}": v for k, v in rule.limits.items()},
            **{
                f"latest_{m}": float(latest[m]) if latest[m] is not None else "not evaluated"
                for m in rule.metrics
            },
            "breaches": dg.MetadataValue.json(
                [{k: str(v) for k, v in row.items()} for row in bad.head(20).to_dicts()]
            ),
        },
    )


@dg.asset_check(
    asset=ALLOCATION_STATUS,
    blocking=True,
    description="The live method produced a feasible book on every day of the run (an "
    "infeasible optimisation is reported with the solver's reason, never relaxed).",
)
def live_book_is_feasible(
    context: dg.AssetCheckExecutionContext, store: Store
) -> dg.AssetCheckResult:
    status = rows_of_run(context, store, "allocation_status")
    if status.is_empty():
        return dg.AssetCheckResult(passed=False, metadata={"reason": "no allocation_status"})
    infeasible = status.filter(~pl.col("feasible"))
    live_infeasible = infeasible.filter(pl.col("is_live"))
    return dg.AssetCheckResult(
        passed=live_infeasible.is_empty(),
        metadata={
            "books_checked": status.height,
            "live_infeasible_days": live_infeasible.height,
            # other methods' failures do not stop orders but are reported here too
            "infeasible_books": dg.MetadataValue.json(
                infeasible.select("date", "method", "status")
                .with_columns(pl.col("date").cast(pl.String))
                .head(50)
                .to_dicts()
            ),
        },
    )


# What each limit guarantees, in the policy's default numbers (the check reads the policy)
LIMIT_DESCRIPTIONS = {
    "live_book_only_reduces_risk_beyond_max_drawdown": "While the live book's realised "
    "drawdown from its peak is beyond the policy's maximum (10%), its trades only shrink "
    "positions: none opens, grows or flips sign.",
    "live_positions_within_stop_loss": "No live position has lost more than the policy's "
    "multiple (3x) of its rolling 5-session volatility over the last 5 sessions (position "
    "stop-loss).",
    "live_book_within_sector_cap": "Every sector's net weight in the live book is within the "
    "sector cap (25%); each unclassified name counts as a sector of its own.",
    "live_book_within_concentration_limits": "The live book's largest position and its ten "
    "largest together are within the concentration limits (10% and 60% of NAV).",
    "live_book_within_volatility_band": "The live book's ex-ante (Ledoit-Wolf) annualised "
    "volatility lies in the policy's band around the 10% target (below it is allowed while the "
    "book is past its maximum drawdown and reducing risk).",
}


def _limit_check(name: str) -> dg.AssetChecksDefinition:
    """The blocking check of the limit ``name`` (one of ``limits.limit_rules``)."""

    @dg.asset_check(
        asset=RISK_METRICS, name=name, blocking=True, description=LIMIT_DESCRIPTIONS[name]
    )
    def _check(
        context: dg.AssetCheckExecutionContext, store: Store, portfolio_policy: PortfolioPolicy
    ) -> dg.AssetCheckResult:
        return _live_limit_check(context, store, portfolio_policy, name)

    return _check


live_book_only_reduces_risk_beyond_max_drawdown = _limit_check(
    "live_book_only_reduces_risk_beyond_max_drawdown"
)
live_positions_within_stop_loss = _limit_check("live_positions_within_stop_loss")
live_book_within_sector_cap = _limit_check("live_book_within_sector_cap")
live_book_within_concentration_limits = _limit_check("live_book_within_concentration_limits")
live_book_within_volatility_band = _limit_check("live_book_within_volatility_band")
