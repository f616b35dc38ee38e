"""One day's constrained Markowitz fit by universe size: the full solve against the working set.

The live method, fitted as the live book is every session: the policy's 756-session window of
SyntheticMarket (seed 7) returns, its sectors, random daily views, and yesterday's book (the
previous day's fit) so the turnover cap binds from the second day on. Each day is fitted three
ways on the same inputs: the full problem (``working_set=False``), the exact working set from
a cold start (held names and the highest views), and the working set warm-started from the
previous day's ``active_set_``. Printed per fit: total seconds (covariance included), the
solver's own seconds (Clarabel, every solve of the fit), restricted solves, the size of the
final working set, and the largest weight difference against the full solve.

    flock /tmp/quant-bench.lock .venv/bin/python benches/bench_markowitz.py \\
        [--sizes 100 250 500] [--days 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _timed_fit(window: Any, **params: Any) -> tuple[float, Any]:
    from quant_assets.portfolio.allocation import ConstrainedMarkowitz

    started = time.perf_counter()
    model = ConstrainedMarkowitz(**params).fit(window)
    return time.perf_counter() - started, model


def _cell(seconds: float, model: Any, full: Any) -> str:
    diff = float((model.weights_ - full.weights_).abs().max())
    return (
        f"{seconds:6.3f} {model.timings_['solver_s']:6.3f} {model.working_set_rounds_:2d} "
        f"{model.working_set_.size:4d} {diff:8.1e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 250, 500])
    parser.add_argument("--sessions", type=int, default=756)
    parser.add_argument("--days", type=int, default=3, help="consecutive days fitted per size")
    args = parser.parse_args()

    import numpy as np
    import pandas as pd

    from benches.bench_allocation import load_returns
    from quant_assets.portfolio.allocation import MarkowitzProblems

    print("per fit: total_s solver_s rounds working_set max|w - w_full|")
    print(
        "names day  held  full: total_s solver_s  | working set cold      | warm (yesterday)"
        "      | warm + compiled once (DPP): total_s compile_s solver_s max|w - w_full|"
    )
    for size in args.sizes:
        returns, sectors = load_returns(size, args.sessions + args.days)
        rng = np.random.default_rng(7)
        previous: pd.Series | None = None
        active: pd.Index | None = None
        totals: dict[str, list[float]] = {"full": [], "cold": [], "warm": [], "compiled": []}
        problems = MarkowitzProblems()
        for day in range(args.days):
            window = returns.iloc[day : day + args.sessions]
            params: dict[str, Any] = {
                "sectors": sectors.reindex(window.columns),
                "expected_returns": pd.Series(rng.normal(0.0, 0.001, size), index=window.columns),
                "previous_weights": previous,
                "max_weight": 0.10,
                "max_top10": 0.60,
            }
            yesterday = active
            full_s, full = _timed_fit(window, **params, working_set=False)
            cold_s, cold = _timed_fit(window, **params)
            line = (
                f"{size:5d} {day:3d}  {int((full.weights_ > 1e-6).sum()):4d}  "
                f"{full_s:6.3f} {full.timings_['solver_s']:6.3f}  | {_cell(cold_s, cold, full)}"
            )
            totals["full"].append(full_s)
            totals["cold"].append(cold_s)
            if active is not None:
                warm_s, warm = _timed_fit(window, **params, warm_start=active)
                line += f" | {_cell(warm_s, warm, full)}"
                totals["warm"].append(warm_s)
                active = warm.active_set_
            compiled_s, compiled = _timed_fit(
                window, **params, warm_start=yesterday, problems=problems
            )
            timings = compiled.timings_
            line += (
                f" | {compiled_s:6.3f} {timings['compile_s']:6.3f} {timings['solver_s']:6.3f} "
                f"{float((compiled.weights_ - full.weights_).abs().max()):8.1e}"
            )
            if day:  # the first day compiles
                totals["compiled"].append(compiled_s)
            else:
                active = cold.active_set_
            print(line, flush=True)
            previous = full.weights_[full.weights_ > 1e-9] if full.feasible_ else None
        means = "  ".join(f"{k} {np.mean(v):.3f}" for k, v in totals.items() if v)
        print(f"{size:5d} mean s: {means}; compilations {problems.compilations_}", flush=True)
        _covariance_stage(returns, args.sessions, args.days)


def _covariance_stage(returns: Any, sessions: int, days: int) -> None:
    """The daily covariance: scikit-learn's Ledoit-Wolf of each window against the running
    sums (``RollingLedoitWolf``) slid a session at a time; the largest relative difference."""
    import numpy as np
    import polars as pl
    from sklearn.covariance import ledoit_wolf

    from quant_assets.portfolio.covariance import RollingLedoitWolf

    panel = pl.from_pandas(returns.reset_index(drop=True)).with_row_index("date")
    tickers = [str(c) for c in returns.columns]
    rolling = RollingLedoitWolf(tickers)
    rolling.covariance(panel.slice(0, sessions), tickers)  # the first window: a rebuild
    fresh_s, running_s, worst = [], [], 0.0
    for day in range(1, days):
        window = panel.slice(day, sessions)
        started = time.perf_counter()
        reference = ledoit_wolf(window.select(tickers).to_numpy())[0]
        fresh_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        kept = rolling.covariance(window, tickers).to_numpy()
        running_s.append(time.perf_counter() - started)
        worst = max(worst, float(np.abs(kept - reference).max() / np.abs(reference).max()))
    print(
        f"{len(tickers):5d} covariance per day: ledoit_wolf {np.mean(fresh_s):.4f} s, "
        f"running sums {np.mean(running_s):.4f} s; max relative difference {worst:.1e}",
        flush=True,
    )


if __name__ == "__main__":
    main()
