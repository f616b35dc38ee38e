"""The live book's risk limits as data: each is the ``risk_metrics`` figures it reads and the
condition that breaches it. The blocking checks (``checks.py``) and the paper orders (which
only send risk-reducing orders when a limit is breached) evaluate the same rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from resources.portfolio_policy import PortfolioPolicy
from resources.storage import Store


@dataclass(frozen=True)
class LimitRule:
    """``breached`` is evaluated on one row per day with a column per metric of ``metrics``;
    a day where one of ``required`` (default: all of them) is missing cannot be judged: the
    check and the report say NOT EVALUATED for it, never OK."""

    metrics: tuple[str, ...]
    breached: pl.Expr
    limits: dict[str, float]
    required: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.required:
            object.__setattr__(self, "required", self.metrics)

    def unmeasured(self) -> pl.Expr:
        """True on a day one of the ``required`` figures is missing (null or NaN)."""
        return pl.any_horizontal([pl.col(m).is_null() | pl.col(m).is_nan() for m in self.required])


def limit_rules(policy: PortfolioPolicy) -> dict[str, LimitRule]:
    """Every limit, by the name of the check that guards it."""
    # only a measured drawdown beyond the maximum puts the book in de-risking mode
    de_risking = (pl.col("realised_drawdown") > policy.max_drawdown).fill_null(False)
    low, high = policy.vol_band_low, policy.vol_band_high
    position, top10 = policy.max_position, policy.max_top10
    return {
        "live_book_only_reduces_risk_beyond_max_drawdown": LimitRule(
            ("realised_drawdown", "realised_sessions", "risk_increasing_names"),
            de_risking & (pl.col("risk_increasing_names") > 0),
            {"max_drawdown": policy.max_drawdown},
            required=("realised_drawdown", "risk_increasing_names"),
        ),
        "live_positions_within_stop_loss": LimitRule(
            ("stop_loss_breaches",),
            pl.col("stop_loss_breaches") > 0,
            {
                "vol_multiple": policy.stop_loss_vol_multiple,
                "vol_window": float(policy.stop_loss_vol_window),
            },
        ),
        "live_book_within_sector_cap": LimitRule(
            ("max_sector_weight",),
            pl.col("max_sector_weight") > policy.sector_cap + 1e-6,
            {"sector_cap": policy.sector_cap},
        ),
        "live_book_within_concentration_limits": LimitRule(
            ("max_position", "top10_weight"),
            (pl.col("max_position") > position + 1e-6) | (pl.col("top10_weight") > top10 + 1e-6),
            {"max_position": position, "max_top10": top10},
        ),
        "live_book_within_volatility_band": LimitRule(
            ("ex_ante_vol", "realised_drawdown"),
            ((pl.col("ex_ante_vol") < low) & ~de_risking) | (pl.col("ex_ante_vol") > high),
            {"vol_band_low": low, "vol_band_high": high},
            # the drawdown only relaxes the band's floor: the band is judged without it
            required=("ex_ante_vol",),
        ),
    }


def live_metrics(stored: pl.DataFrame, metrics: tuple[str, ...]) -> pl.DataFrame:
    """``risk_metrics`` rows -> one row per day of the live book, a column per metric."""
    return (
        stored.filter(pl.col("is_live") & pl.col("metric").is_in(list(metrics)))
        .pivot(on="metric", index="date", values="value")
        .sort("date")
    )


def breached_limits(store: Store, day: date, policy: PortfolioPolicy) -> list[str]:
    """The limits the live book of ``day`` breaches (a limit whose figures are missing counts
    as breached: what cannot be measured is not within it)."""
    stored = store.read("risk_metrics", day, day + timedelta(days=1), where={"is_live": [True]})
    breached = []
    for name, rule in limit_rules(policy).items():
        live = live_metrics(stored, rule.metrics)
        measured = not live.is_empty() and all(m in live.columns for m in rule.metrics)
        if not measured or not live.filter(rule.breached).is_empty():
            breached.append(name)
    return breached
