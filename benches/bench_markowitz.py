"""Where one day's constrained Markowitz solve spends its time, by universe size.

The live method, fitted as the live book is every session: the policy's 756-session window of
SyntheticMarket (seed 7) returns, its sectors, random daily views, and yesterday's book (the
fit of the window one session earlier) so the turnover cap binds. Each fit reports
``ConstrainedMarkowitz.timings_``: the Ledoit-Wolf covariance and its Cholesky factor, then
over its solves (the relaxation and, above 50 names, the cardinality re-solve) cvxpy's
compilation, the solver's own time (Clarabel) and the rest. This is the profile that says what
a faster daily re-optimisation has to attack.

    flock /tmp/quant-bench.lock uv run python benches/bench_markowitz.py [--sizes 100 250 500]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 250, 500])
    parser.add_argument("--sessions", type=int, default=756)
    parser.add_argument("--days", type=int, default=3, help="consecutive days fitted per size")
    args = parser.parse_args()

    import numpy as np
    import pandas as pd

    from benches.bench_allocation import load_returns
    from quant_assets.portfolio.allocation import ConstrainedMarkowitz

    print(
        "names  day  total_s  estimate_s  compile_s  solver_s  other_s  solves  stage  names_held"
    )
    for size in args.sizes:
        returns, sectors = load_returns(size, args.sessions + args.days)
        rng = np.random.default_rng(7)
        previous: pd.Series | None = None
        for day in range(args.days):
            window = returns.iloc[day : day + args.sessions]
            views = pd.Series(rng.normal(0.0, 0.001, size), index=window.columns)
            model = ConstrainedMarkowitz(
                sectors=sectors.reindex(window.columns),
                expected_returns=views,
                previous_weights=previous,
                max_weight=0.10,
                max_top10=0.60,
            )
            started = time.perf_counter()
            model.fit(window)
            total = time.perf_counter() - started
            t = model.timings_
            held = int((model.weights_.abs() > 1e-6).sum())
            print(
                f"{size:5d}  {day:3d}  {total:7.3f}  {t['estimate_s']:10.3f}  "
                f"{t['compile_s']:9.3f}  {t['solver_s']:8.3f}  {t['other_s']:7.3f}  "
                f"{int(t['solves']):6d}  {model.stage_:>10}  {held:4d}",
                flush=True,
            )
            previous = model.weights_[model.weights_.abs() > 1e-9] if model.feasible_ else None


if __name__ == "__main__":
    main()
