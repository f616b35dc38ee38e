"""Backtest benchmark: the walk-forward backtest of every model x method on a synthetic market.

Target: 500 tickers x 5 years: the walk-forward of LightGBM and CatBoost (retrained every 20
sessions), the rank ensemble's live-method book replayed every session (research/replay.py),
the other books every 20 sessions, the index and equal weight, <= 15 minutes on a 2-core
machine; the CPCV Sharpe distributions run on top with their own time. Peak RSS reported. The input is built in-process the
way the assets build it (SyntheticMarket seed 7 bars -> Alpha158 -> labels), then timed
apart from the backtest itself (``run_backtest`` with ``BacktestSpec`` defaults and the
default ``PortfolioPolicy``), which prints each stage's time and the metrics table.

    flock /tmp/quant-bench.lock uv run python benches/bench_backtest.py [--tickers 500 --years 5]

The measured figures are in README.md ("Portfolio benchmarks").
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LAST = date(2024, 12, 31)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--models", default="lightgbm,catboost")
    parser.add_argument("--methods", default="", help="comma list; default: the policy's")
    parser.add_argument(
        "--check-days", type=int, default=5, help="replayed days re-solved cold from scratch"
    )
    args = parser.parse_args()

    import polars as pl

    from quant_assets.features.alpha158 import ALPHA158_NAMES, compute_alpha158
    from quant_assets.features.labels import forward_excess_returns
    from quant_assets.partitions import shift_sessions
    from quant_assets.research.backtest import summarise_sharpe_distribution
    from quant_assets.research.walk_forward import (
        BacktestSpec,
        Market,
        run_backtest,
        strategy_tables,
    )
    from resources.market_data.synthetic import SyntheticMarket
    from resources.portfolio_policy import PortfolioPolicy

    print(f"start: {load()}", flush=True)
    t0 = time.perf_counter()
    market = SyntheticMarket(n_tickers=args.tickers)
    universe = market.universe()
    benchmark = universe.filter(pl.col("is_benchmark"))["ticker"].item()
    bars = market.fetch_bars(
        universe["ticker"].to_list(), date(LAST.year - args.years + 1, 1, 1), LAST
    )
    members = bars.filter(pl.col("ticker") != benchmark)
    features = compute_alpha158(
        members.select(
            "ticker",
            "date",
            *(pl.col(f"adj_{c}").alias(c) for c in ("open", "high", "low", "close")),
            "volume",
            "vwap",
        )
    )
    first, last = bars["date"].min(), bars["date"].max()
    labels = forward_excess_returns(
        bars.select("ticker", "date", "adj_close"), benchmark, first, shift_sessions(last, 5)
    )
    panel = (
        features.join(labels.select("ticker", "date", "label"), on=["ticker", "date"], how="left")
        .to_pandas()
        .set_index(["date", "ticker"])
        .sort_index()
    )
    X, y = panel[list(ALPHA158_NAMES)], panel["label"]
    sectors = universe.to_pandas().set_index("ticker")["sector"]
    price_bars = bars.select(
        "ticker", "date", "adj_open", "adj_close", "adj_high", "adj_low", "close", "volume"
    )
    del features, panel
    sessions = X.index.get_level_values("date").nunique()
    print(
        f"input: {args.tickers} tickers x {sessions} sessions ({first}..{last}), "
        f"{len(X):,} rows, built in {time.perf_counter() - t0:.1f} s; "
        f"peak RSS so far {peak_rss_mib():,.0f} MiB",
        flush=True,
    )

    policy = PortfolioPolicy()
    if args.methods:
        methods = args.methods.split(",")
        policy = PortfolioPolicy(methods=methods, live_method=methods[0])
    spec = BacktestSpec(models=tuple(args.models.split(",")))
    print(f"methods: {policy.methods}; models: {spec.models} + ensemble; {spec}", flush=True)
    t0 = time.perf_counter()
    history = Market(y, price_bars, sectors, benchmark)
    result = run_backtest(X, history, policy, spec)
    wall = time.perf_counter() - t0
    metrics = strategy_tables(result)[0].sort("sharpe", descending=True)
    with pl.Config(tbl_rows=50, tbl_cols=20, tbl_width_chars=220, float_precision=3):
        print(metrics.drop("n_trials", "model", "method", "first_date", "last_date", "cadence"))
    for model, frame in result.cpcv_sharpes.items():
        summary = summarise_sharpe_distribution(frame)
        print(f"CPCV {model}: " + ", ".join(f"{k}={v:.3f}" for k, v in summary.items()))
    print(
        f"re-decided every session (live replay): {result.replayed}; the others every "
        f"{spec.reoptimise_every} sessions"
    )
    infeasible = result.status.filter(~pl.col("feasible"))
    print(f"allocation statuses: {result.status.height}, infeasible: {infeasible.height}")
    print(
        "stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items()),
        flush=True,
    )
    if args.check_days:
        cold_check(result, history, policy, spec, args.check_days)
    required = wall - result.seconds.get("cpcv", 0.0)
    print(
        f"without the CPCV paths: {required:.1f} s = {required / 60:.2f} min (target <= 15 min); "
        "live replay decisions: "
        + ", ".join(f"{name} {len(result.decisions[name])}" for name in result.replayed),
        flush=True,
    )
    print(
        f"backtest wall {wall:.1f} s = {wall / 60:.2f} min on "
        f"{len(result.rebalance_days)} re-optimisation days; peak RSS {peak_rss_mib():,.0f} MiB; "
        f"end: {load()}"
    )


def cold_check(result, history, policy, spec, days: int) -> None:
    """The live method on ``days`` replayed decision days, evenly spread: the fast path (the
    running-sums covariance, the working set, the compiled problems) against a cold solve from
    scratch (scikit-learn's Ledoit-Wolf, the full problem built anew), both from the book the
    replay held that day; the largest weight difference."""
    import numpy as np

    from quant_assets.portfolio.allocation import MarkowitzProblems
    from quant_assets.portfolio.covariance import RollingLedoitWolf
    from quant_assets.portfolio.methods import build_estimator
    from quant_assets.research.walk_forward import _calibrated_views, _day_inputs

    for name in result.replayed:
        model = name.split("/")[0]
        held = result.held[name]
        chosen = sorted(held)[:: max(1, len(held) // days)][:days]
        labels = history.labels.reindex(result.scores.index)
        worst = 0.0
        for day in chosen:
            views = _calibrated_views(day, result.scores[model], labels, history.sessions, spec)
            columns = [c for c in history.panel.columns if c != "date"]
            fast_path = (RollingLedoitWolf(columns), MarkowitzProblems())
            fast = _day_inputs(day, history, policy, spec, views, fast_path)
            cold = _day_inputs(day, history, policy, spec, views)
            previous = {policy.live_method: held[day]}
            started = time.perf_counter()
            fitted = build_estimator(
                policy.live_method, dataclasses.replace(fast, previous=previous), policy
            ).fit(fast.returns)
            fast_s = time.perf_counter() - started
            reference = build_estimator(
                policy.live_method, dataclasses.replace(cold, previous=previous), policy
            )
            reference.set_params(working_set=False)
            started = time.perf_counter()
            reference.fit(cold.returns)
            cold_s = time.perf_counter() - started
            diff = float(np.abs(fitted.weights_ - reference.weights_).max())
            worst = max(worst, diff)
            print(
                f"cold check {name} {day}: fast {fast_s:.3f} s (fresh covariance sums and "
                f"compilation), cold {cold_s:.3f} s, max |w_fast - w_cold| {diff:.1e}",
                flush=True,
            )
        print(f"cold check {name}: {len(chosen)} days, largest difference {worst:.1e}")


if __name__ == "__main__":
    main()
