"""TFT benchmark: default ``TemporalFusionAlpha`` training on 100 synthetic tickers x 3 years.

Features are ``TemporalFusionAlpha.DEFAULT_FEATURES`` (18 Alpha158 columns, computed by
``quant_assets.features.alpha158.compute_alpha158`` when that module is importable, otherwise a
Polars fallback with the same definitions for the columns it knows); the label is the 5-session
forward return in excess of the synthetic index; the static covariate is the ticker's sector.
The last ``--holdout`` sessions are held out; the training labels of the ``LABEL_HORIZON_SESSIONS``
sessions before them are dropped (their horizon reaches into the holdout). Prints the data
preparation time (not part of the target), the model's size, fit time (target: <= 10 minutes on
this 2-core CPU), predict time, and the out-of-sample daily Rank IC on the holdout next to the
planted reversal signal's own Rank IC on the same dates (the synthetic market's only signal).

    uv run python benches/bench_tft.py [--tickers 100] [--sessions 756] [--holdout 126]

Measured 2026-11-23 on the 2-core dev box (under flock /tmp/quant-bench.lock, load average 1.85
at the start, 1.07 at the end), defaults, alpha158 features: 28,262 parameters, 62,100 training
samples; fit 105.3 s, predict 30.9 s for 75,600 rows (one day's scores 1.02 s); holdout Rank IC
mean 0.0459 (ICIR 0.324) over 126 dates, the planted reversal signal 0.0453 (ICIR 0.334).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from quant_assets.features.labels import forward_excess_returns  # noqa: E402
from quant_assets.models.cross_section import daily_ic, summarise_ic  # noqa: E402
from quant_assets.models.tft import TemporalFusionAlpha  # noqa: E402
from quant_assets.partitions import trading_sessions  # noqa: E402
from quant_core.conventions import LABEL_HORIZON_SESSIONS  # noqa: E402
from resources.market_data.synthetic import SyntheticMarket, planted_signal  # noqa: E402

LOOKBACK = 60  # sessions of history before the first date (Alpha158's longest window)
TARGET_SECONDS = 600.0
START, END = date(2015, 1, 1), date(2024, 1, 1)  # synthetic history; sessions are [START, END)


def fallback_features(bars: pl.DataFrame) -> pl.DataFrame:
    """A few Alpha158 columns with Qlib's definitions, for when alpha158.py is unavailable."""
    c, o, h, lo, v = (pl.col(n) for n in ("close", "open", "high", "low", "volume"))

    def over(e: pl.Expr) -> pl.Expr:
        return e.over("ticker")

    ret = c / over(c.shift(1)) - 1.0
    return (
        bars.sort("ticker", "date")
        .with_columns(ret.alias("_ret"))
        .with_columns(
            (o / c).alias("OPEN0"),
            (h / c).alias("HIGH0"),
            (lo / c).alias("LOW0"),
            ((c - o) / o).alias("KMID"),
            ((h - lo) / o).alias("KLEN"),
            (over(c.shift(5)) / c).alias("ROC5"),
            (over(c.shift(20)) / c).alias("ROC20"),
            (over(c.rolling_mean(5)) / c).alias("MA5"),
            (over(c.rolling_mean(20)) / c).alias("MA20"),
            (over(c.rolling_std(5)) / c).alias("STD5"),
            (over(c.rolling_std(20)) / c).alias("STD20"),
            (over(v.rolling_mean(5)) / (v + 1e-12)).alias("VMA5"),
            (over(v.rolling_std(5)) / (v + 1e-12)).alias("VSTD5"),
            (
                over((pl.col("_ret").abs() * v).rolling_std(5))
                / (over((pl.col("_ret").abs() * v).rolling_mean(5)) + 1e-12)
            ).alias("WVMA5"),
        )
        .drop("_ret")
    )


def panel(
    n_tickers: int, n_sessions: int
) -> tuple[pd.DataFrame, pd.Series, dict[str, str], pd.Series, str]:
    """(X, y, ticker -> sector, planted signal on X's index, feature source)."""
    sessions = trading_sessions(START, END)
    last = len(sessions) - LABEL_HORIZON_SESSIONS - 1  # the last session with a known label
    first = last - n_sessions + 1
    market = SyntheticMarket(n_tickers=n_tickers)
    universe = market.universe()
    benchmark = market.benchmark_ticker
    # fetch_bars' end is exclusive, like trading_sessions': END keeps the last session's bars
    bars = market.fetch_bars(universe["ticker"].to_list(), sessions[first - LOOKBACK], END)
    stocks = bars.filter(pl.col("ticker") != benchmark)
    try:
        from quant_assets.features.alpha158 import compute_alpha158

        features, source = compute_alpha158(stocks), "alpha158"
    except ImportError:
        features, source = fallback_features(stocks), "polars fallback"
    names = [n for n in TemporalFusionAlpha.DEFAULT_FEATURES if n in features.columns]
    labels = forward_excess_returns(bars, benchmark, sessions[first], sessions[last + 1])
    signal = planted_signal(stocks)
    frame = (
        features.select("ticker", "date", *names)
        .filter(pl.col("date") >= sessions[first])
        .join(labels.select("ticker", "date", "label"), on=["ticker", "date"])
        .join(signal, on=["ticker", "date"], how="left")
        .sort("date", "ticker")
    )
    index = pd.MultiIndex.from_arrays(
        [pd.DatetimeIndex(frame["date"].to_numpy()), frame["ticker"].to_numpy()],
        names=["date", "ticker"],
    )
    X = pd.DataFrame(frame.select(names).to_numpy().astype(np.float32), index=index, columns=names)
    y = pd.Series(frame["label"].to_numpy(), index=index, name="label")
    planted = pd.Series(frame["signal"].to_numpy(), index=index, name="planted")
    members = universe.filter(~pl.col("is_benchmark"))
    sectors = dict(zip(members["ticker"].to_list(), members["sector"].to_list(), strict=True))
    return X, y, sectors, planted, source


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickers", type=int, default=100)
    parser.add_argument("--sessions", type=int, default=756)
    parser.add_argument("--holdout", type=int, default=126)
    args = parser.parse_args()

    t0 = time.perf_counter()
    X, y, sectors, planted, source = panel(args.tickers, args.sessions)
    dates = X.index.get_level_values("date")
    unique = dates.unique()
    holdout_start = unique[len(unique) - args.holdout]
    purge_start = unique[len(unique) - args.holdout - LABEL_HORIZON_SESSIONS]
    train = dates < holdout_start
    y_train = y[train].where(dates[train] < purge_start)
    print(
        f"data ({source}): {len(X):,} rows = {len(unique)} sessions x ~{len(X) // len(unique)} "
        f"tickers, {X.shape[1]} features, {X.isna().to_numpy().mean():.1%} NaN; prepared in "
        f"{time.perf_counter() - t0:.1f} s (not part of the target)"
    )
    print(
        f"train: {unique[0].date()}..{purge_start.date()} (labels), holdout: "
        f"{holdout_start.date()}..{unique[-1].date()} ({args.holdout} sessions)"
    )

    model = TemporalFusionAlpha(sectors=sectors)  # defaults otherwise
    t1 = time.perf_counter()
    model.fit(X[train], y_train)
    t2 = time.perf_counter()
    scores = model.predict(X)
    t3 = time.perf_counter()
    last_day = X[dates >= unique[-model.max_encoder_length]]
    model.predict(last_day)
    t4 = time.perf_counter()

    params = model.get_params()
    seen = min(
        model.n_train_samples_,
        (params["limit_train_batches"] or 10**12) * params["batch_size"],
    )
    print(
        f"model: {model.n_parameters_:,} parameters (hidden {params['hidden_size']}, "
        f"{params['attention_head_size']} heads, encoder {params['max_encoder_length']} sessions); "
        f"{model.n_train_samples_:,} training samples, {seen:,} per epoch x "
        f"{params['max_epochs']} epochs, batch {params['batch_size']}"
    )
    print(f"fit:     {t2 - t1:7.1f} s (target <= {TARGET_SECONDS:.0f} s)")
    print(f"predict: {t3 - t2:7.1f} s for {len(X):,} rows; one day's scores: {t4 - t3:.2f} s")

    hold = dates >= holdout_start
    score = pd.Series(scores, index=X.index)
    ic = summarise_ic(daily_ic(score[hold], y[hold]))
    ref = summarise_ic(daily_ic(planted[hold], y[hold]))
    print(
        f"holdout Rank IC: mean {ic['rank_ic_mean']:.4f}, ICIR {ic['rank_icir']:.3f} "
        f"over {int(ic['n_dates'])} dates; planted reversal signal on the same dates: "
        f"{ref['rank_ic_mean']:.4f} (ICIR {ref['rank_icir']:.3f})"
    )
    top = model.feature_importances_.head(5)
    print("top encoder importances: " + ", ".join(f"{k} {v:.3f}" for k, v in top.items()))
    attention = model.interpretation_["attention"]
    print(f"attention on the last 5 sessions: {attention.tail(5).sum():.3f} of 1")


if __name__ == "__main__":
    main()
