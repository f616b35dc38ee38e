"""Walk-forward evaluation of the alpha models on real US equities, next to Qlib's anchors.

The product's research command (``quant-research``, :mod:`apps.research`) on a store of the
shared sample, with a fixed protocol and Qlib's published figures beside its IC table; nothing
of its own but the protocol and the anchors.

Data: the store the daily job writes from the shared sample (100 US large caps + SPY, 2005-03 ..
2012-12), through the ``files`` provider, the ``raw_bars`` validation, Alpha158 and the labels::

    QUANT_MARKET_DATA_PROVIDER=files \\
    QUANT_FILES_PATH=/work/shared/data/us_equities_daily_sample.parquet \\
    QUANT_DATA_DIR=/tmp/realrun/data uv run quant-daily --end 2012-12-31 --sessions 1974
    QUANT_DATA_DIR=/tmp/realrun/data uv run python benches/bench_walk_forward_real.py [--retrain 5]

Protocol: a trailing window of 756 sessions (3 years), purged by the 5-session label horizon,
retrained every ``--retrain`` sessions (default 5: weekly; 21 is the monthly variant); the range
starts 761 sessions before the first session of 2009, so the first out-of-sample year is 2009,
whose Rank ICIR sets the rank ensemble's weights, and every figure is over 2010-01-04 .. the last
labelled session of 2012. ICIR = mean / std of the daily IC (not annualised), as in Qlib's table.

Qlib's anchors (examples/benchmarks/README.md, Alpha158 on CSI300, test 2017-2020) are not
like-for-like: ~300 Chinese A-shares, a 1-day label, a single train/valid/test split. With 100
names the daily IC is noisier, so ICIR is lower for the same mean IC.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from pathlib import Path

import pandas as pd

# see benches/bench_training.py: OpenMP threads must not spin on a shared machine
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from apps import research  # noqa: E402
from quant_core.calendar import shift_sessions  # noqa: E402
from quant_core.conventions import LABEL_HORIZON_SESSIONS, TRADING_DAYS  # noqa: E402
from resources.config import store_from_env  # noqa: E402

FIRST_OUT_OF_SAMPLE = date(2009, 1, 2)  # the first session of 2009
TRAIN_SESSIONS = 756
# Qlib examples/benchmarks/README.md, Alpha158 (CSI300): IC, ICIR, Rank IC, Rank ICIR
QLIB = {
    "lightgbm": (0.0448, 0.3660, 0.0469, 0.3877),
    "catboost": (0.0481, 0.3366, 0.0454, 0.3311),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--retrain", type=int, default=5, help="sessions between retrains")
    retrain = parser.parse_args().retrain
    start = shift_sessions(FIRST_OUT_OF_SAMPLE, TRAIN_SESSIONS + LABEL_HORIZON_SESSIONS)
    argv = ["--start", str(start), "--train-sessions", str(TRAIN_SESSIONS)]
    args = research.argument_parser().parse_args(
        [*argv, "--retrain", str(retrain), "--weights-sessions", str(TRADING_DAYS)]
    )
    try:
        config, X, market = research.load(store_from_env(), args)
    except research.ResearchError as error:
        print(f"bench_walk_forward_real: {error}", file=sys.stderr)
        return 2
    evaluation = research.evaluate(X, market, config.spec(), TRADING_DAYS)
    table = research.ic_table(evaluation, market.labels)
    yearly = research.rank_ic_by_year(evaluation, market.labels)
    print(research.report(evaluation, table, yearly))
    anchors = pd.DataFrame.from_dict(
        QLIB, orient="index", columns=[f"qlib_{c}" for c in research.IC_COLUMNS[:4]]
    )
    print(f"next to Qlib's CSI300 anchors:\n{research.shown(table.join(anchors))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
