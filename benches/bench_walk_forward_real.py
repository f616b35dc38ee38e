"""Walk-forward evaluation of the alpha models on real US equities, next to Qlib's anchors.

Data: the shared sample ``/work/shared/data/us_equities_daily_sample.parquet`` (100 US large
caps + SPY, 2005-03 .. 2012-12, split/dividend-adjusted OHLCV, no separate adjusted close), read
by path through the project's ``files`` provider and never copied. The sample carries a few
decimal-shifted prints on purpose; they are removed by the same validation as the ``raw_bars``
asset (:func:`quant_assets.ingest.validation.validate_bars`, whose quarantine is printed), not by
a cleaner of this script's own.

Features: Alpha158 (:func:`quant_assets.features.alpha158.compute_alpha158`) on the adjusted
prices; label: the 5-session forward return in excess of SPY
(:func:`quant_assets.features.labels.forward_excess_returns`).

Protocol: :func:`quant_assets.models.validation.walk_forward_evaluate` with a trailing window of
756 sessions (3 years), a purge of 5 sessions (the label horizon) between the last training date
and the first test date, retrained every ``--retrain`` sessions (default 5: weekly, 200 fits
per model; ``--retrain 21`` is the monthly variant, 48 fits). The walk-forward starts on
the first session of 2009: 2009's out-of-sample predictions only set the rank ensemble's
weights (:meth:`RankEnsemble.from_validation` on each model's 2009 Rank ICIR), and every metric
printed is over 2010-01-04 .. the last labelled session of 2012, out-of-sample for every model
and for the ensemble. ICs are per date over the ~100 names, against the raw excess return;
ICIR = mean / std of the daily IC (not annualised), as in Qlib's table.

Qlib's anchors (examples/benchmarks/README.md, Alpha158 on CSI300, test 2017-2020) are not
like-for-like: ~300 Chinese A-shares, a 1-day label (Ref($close, -2) / Ref($close, -1) - 1),
a single train/valid/test split. With 100 names the daily IC is noisier, so ICIR is lower for
the same mean IC.

    uv run python benches/bench_walk_forward_real.py [--retrain 5] [--path FILE]

Measured 2026-11-23 on the 2-core machine under ``flock /tmp/quant-bench.lock`` (load average
1.07 at the start, 2.10 at the end; other engineers' jobs running), committed GBDT defaults.
The validation quarantined 11 rows (AVB, BEN, EIX: one price field shifted by a power of ten,
caught by the OHLC range rules); SPY has no bar on 2011-02-17, so 2011-02-10 and 2011-02-17
have no label. Weekly retraining (``--retrain 5``), total 704.6 s (LightGBM 200 fits in
428.0 s, CatBoost 200 fits in 274.2 s); ensemble weights from 2009 out-of-sample Rank ICIR
(LightGBM 0.0428, CatBoost 0.0737): LightGBM 0.367, CatBoost 0.633::

                                ic_mean    icir  rank_ic_mean  rank_icir  n_dates  qlib_ic_mean  qlib_icir  qlib_rank_ic_mean  qlib_rank_icir
    2010-2012, retrain every 5
    lightgbm                     0.0179  0.1348        0.0148     0.1140    747.0        0.0448     0.3660             0.0469          0.3877
    catboost                     0.0205  0.1574        0.0183     0.1459    747.0        0.0481     0.3366             0.0454          0.3311
    rank_ensemble                0.0197  0.1542        0.0182     0.1397    747.0           NaN        NaN                NaN             NaN
    mean daily Rank IC by year:
          lightgbm  catboost  rank_ensemble
    date
    2010    0.0114    0.0133         0.0132
    2011    0.0156    0.0170         0.0178
    2012    0.0176    0.0248         0.0238

Monthly retraining (``--retrain 21``, load 1.31 -> 1.92), total 172.6 s (LightGBM 48 fits in
105.6 s, CatBoost 48 fits in 64.3 s); weights from 2009 Rank ICIR (LightGBM 0.0605, CatBoost
0.0342): 0.639 / 0.361::

                                 ic_mean    icir  rank_ic_mean  rank_icir  n_dates
    2010-2012, retrain every 21
    lightgbm                      0.0162  0.1199        0.0146     0.1108    747.0
    catboost                      0.0164  0.1266        0.0158     0.1274    747.0
    rank_ensemble                 0.0180  0.1398        0.0163     0.1245    747.0

Reading: every model ranks the right way in each of the three years, at a third to a half of Qlib's
CSI300 IC and ICIR. The gap is expected rather than a defect: 100 US large caps (efficient,
where Alpha158's short-term reversal/volume factors are much weaker than in A-shares), a
5-session label, and ~100 names per daily IC. Weekly retraining beats monthly for CatBoost
(Rank ICIR 0.1459 vs 0.1274) and matches it for LightGBM (0.1140 vs 0.1108). TFT
(quant_assets/models/tft.py) is not in this run: 200 weekly CPU fits of a TFT do not fit a
benchmark run on this machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

# see benches/bench_training.py: OpenMP threads must not spin on a shared machine
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from quant_assets.features.alpha158 import ALPHA158_NAMES, compute_alpha158  # noqa: E402
from quant_assets.features.labels import (  # noqa: E402
    forward_excess_returns,
    label_gaps,
)
from quant_assets.ingest.validation import validate_bars  # noqa: E402
from quant_assets.models.boosting import CatBoostAlpha, LightGBMAlpha  # noqa: E402
from quant_assets.models.cross_section import daily_ic, summarise_ic  # noqa: E402
from quant_assets.models.ensemble import RankEnsemble  # noqa: E402
from quant_assets.models.validation import walk_forward_evaluate  # noqa: E402
from quant_core.conventions import LABEL_HORIZON_SESSIONS  # noqa: E402
from resources.market_data.files_provider import FilesProvider  # noqa: E402

SAMPLE = Path("/work/shared/data/us_equities_daily_sample.parquet")
BENCHMARK = "SPY"
TRAIN_SESSIONS = 756  # trailing 3 years
WEIGHTS_FROM = date(2009, 1, 1)  # out-of-sample year that sets the ensemble weights
EVAL_FROM = date(2010, 1, 1)
# Qlib examples/benchmarks/README.md, Alpha158 (CSI300): IC, ICIR, Rank IC, Rank ICIR
QLIB = {
    "lightgbm": (0.0448, 0.3660, 0.0469, 0.3877),
    "catboost": (0.0481, 0.3366, 0.0454, 0.3311),
}
COLUMNS = ("ic_mean", "icir", "rank_ic_mean", "rank_icir")


def load_panel(path: Path) -> tuple[pd.DataFrame, pd.Series]:
    provider = FilesProvider(path)
    tickers = provider.universe()["ticker"].to_list()
    bars = provider.fetch_bars(tickers, date(1990, 1, 1), date(2100, 1, 1))
    clean, quarantine = validate_bars(bars)
    shifted = quarantine.select("ticker", "date").unique().height
    print(
        f"bars: {bars.height:,} rows, {len(tickers)} tickers, {bars['date'].min()} .. "
        f"{bars['date'].max()}; quarantined {shifted} rows "
        f"({dict(quarantine.group_by('reason').len().sort('reason').iter_rows())})"
    )
    with pl.Config(tbl_rows=-1):
        print(
            quarantine.unique(["ticker", "date"])
            .sort("ticker", "date")
            .select("ticker", "date", "open", "high", "low", "close")
        )
    # Alpha158 on the adjusted prices, as Qlib's collectors feed it
    adjusted = clean.select(
        "ticker",
        "date",
        *(pl.col(f"adj_{c}").alias(c) for c in ("open", "high", "low", "close")),
        "volume",
        "vwap",
    )
    features = compute_alpha158(adjusted.filter(pl.col("ticker") != BENCHMARK))
    labels = labels_of(clean)
    panel = features.join(labels.select("ticker", "date", "label"), on=["ticker", "date"]).sort(
        "date", "ticker"
    )
    index = pd.MultiIndex.from_arrays(
        [pd.DatetimeIndex(panel["date"].to_numpy()), panel["ticker"].to_numpy()],
        names=["date", "ticker"],
    )
    names = list(ALPHA158_NAMES)
    X = pd.DataFrame(panel.select(names).to_numpy().astype(np.float32), index=index, columns=names)
    return X, pd.Series(panel["label"].to_numpy(), index=index, name="label")


def labels_of(bars: pl.DataFrame) -> pl.DataFrame:
    """The product's labels of the whole sample: a session without a benchmark return (the
    sample lacks SPY on 2011-02-17) gets none, as ``label_gaps`` reports."""
    days = bars["date"].unique().sort()
    # the last LABEL_HORIZON_SESSIONS sessions have no forward return inside the sample
    last = days[len(days) - LABEL_HORIZON_SESSIONS - 1]
    end = last + timedelta(days=1)
    gaps = label_gaps(bars, BENCHMARK, days[0], end).filter(pl.col("ticker") == BENCHMARK)
    print(f"labels: no {BENCHMARK} return for {[str(d) for d in gaps['date']]}: unlabelled")
    return forward_excess_returns(bars, BENCHMARK, days[0], end)


def metrics(score: pd.Series, label: pd.Series, since: date) -> dict[str, float]:
    daily = daily_ic(score, label)
    return summarise_ic(daily[daily.index >= pd.Timestamp(since)])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--path", type=Path, default=SAMPLE)
    parser.add_argument("--retrain", type=int, default=5, help="sessions between retrains")
    parser.add_argument("--n-jobs", type=int, default=-1)
    args = parser.parse_args()
    if not args.path.exists():
        sys.exit(
            f"{args.path} not found: this benchmark needs the shared real-data sample "
            "(ticker, date, OHLCV parquet); pass --path to point at a copy"
        )

    t0 = time.perf_counter()
    X, y = load_panel(args.path)
    dates = X.index.get_level_values(0)
    unique = dates.unique().sort_values()
    first_test = int(unique.searchsorted(pd.Timestamp(WEIGHTS_FROM)))
    first_train = first_test - TRAIN_SESSIONS - LABEL_HORIZON_SESSIONS
    if first_train < 0:
        sys.exit(f"not enough history before {WEIGHTS_FROM} for a {TRAIN_SESSIONS}-session window")
    keep = dates >= unique[first_train]
    X, y = X[keep], y[keep]
    print(
        f"panel: {len(X):,} rows, {X.index.get_level_values(0).nunique()} sessions "
        f"({unique[first_train].date()} .. {unique[-1].date()}), {X.shape[1]} features; "
        f"prepared in {time.perf_counter() - t0:.1f} s"
    )

    models = {
        "lightgbm": LightGBMAlpha(n_jobs=args.n_jobs),
        "catboost": CatBoostAlpha(n_jobs=args.n_jobs),
    }
    scores: dict[str, pd.Series] = {}
    for name, estimator in models.items():
        start = time.perf_counter()
        result = walk_forward_evaluate(
            estimator, X, y, TRAIN_SESSIONS, args.retrain, purge=LABEL_HORIZON_SESSIONS
        )
        scores[name] = result.predictions
        first, last = result.folds[0], result.folds[-1]
        print(
            f"{name}: {len(result.folds)} fits in {time.perf_counter() - start:.1f} s; first "
            f"train {first[0].date()} .. {first[1].date()} -> test {first[2].date()}, last "
            f"test {last[2].date()} .. {last[3].date()}"
        )

    weights_year = {
        name: metrics(s[s.index.get_level_values(0) < pd.Timestamp(EVAL_FROM)], y, WEIGHTS_FROM)
        for name, s in scores.items()
    }
    ensemble = RankEnsemble.from_validation({n: m["rank_icir"] for n, m in weights_year.items()})
    print(
        f"ensemble weights from 2009 out-of-sample Rank ICIR "
        f"({ {n: round(m['rank_icir'], 4) for n, m in weights_year.items()} }): {ensemble}"
    )
    scores["rank_ensemble"] = ensemble.combine(scores)

    rows = {}
    for name, score in scores.items():
        m = metrics(score, y, EVAL_FROM)
        qlib = QLIB.get(name, (np.nan,) * 4)
        rows[name] = {
            **{col: m[col] for col in COLUMNS},
            "n_dates": m["n_dates"],
            **{f"qlib_{col}": q for col, q in zip(COLUMNS, qlib, strict=True)},
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = f"2010-2012, retrain every {args.retrain}"
    with pd.option_context("display.width", 200):
        print(table.round(4).to_string())
    # the three years separately: one regime can carry a 3-year mean
    yearly = {
        name: daily_ic(score, y)["rank_ic"].groupby(lambda d: d.year).mean()
        for name, score in scores.items()
    }
    print("mean daily Rank IC by year:")
    print(pd.DataFrame(yearly).loc[EVAL_FROM.year :].round(4).to_string())
    print(f"total {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
