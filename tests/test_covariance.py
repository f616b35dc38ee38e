"""The rolling Ledoit-Wolf covariance (portfolio/covariance.py) against scikit-learn's
``ledoit_wolf`` re-estimated from each window: sliding windows, sessions left out of a window,
changing subsets of tickers, a ticker with a gap, and the periodic rebuild."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from sklearn.covariance import ledoit_wolf

from quant_assets.portfolio.covariance import RollingLedoitWolf

N, SESSIONS, WINDOW = 40, 260, 120


@pytest.fixture(scope="module")
def panel() -> pl.DataFrame:
    rng = np.random.default_rng(11)
    factor = rng.normal(0.0004, 0.01, size=(SESSIONS, 1))
    x = factor * rng.uniform(0.5, 1.5, size=(1, N)) + rng.normal(0.0, 0.02, size=(SESSIONS, N))
    x[100:110, 7] = np.nan  # T07 has a gap: not investable while it is in the window
    days = [date(2022, 1, 3) + timedelta(days=i) for i in range(SESSIONS)]
    return pl.DataFrame({"date": days, **{f"T{i:02d}": x[:, i] for i in range(N)}})


def _reference(window: pl.DataFrame, tickers: list[str]) -> np.ndarray:
    return ledoit_wolf(window.select(tickers).to_numpy())[0]


def test_the_running_sums_give_sklearns_ledoit_wolf_on_every_sliding_window(panel):
    tickers = [c for c in panel.columns if c != "date"]
    rolling = RollingLedoitWolf(tickers, reseed_every=50)
    for end in range(WINDOW, SESSIONS + 1, 3):
        window = panel.slice(end - WINDOW, WINDOW)
        # some names drop out on some days (a stop-loss), T07 while its gap is in the window
        full = [t for t in tickers if window[t].null_count() == 0 and window[t].is_not_nan().all()]
        investable = [t for i, t in enumerate(full) if (i + end) % 7]
        got = rolling.covariance(window, investable)
        assert list(got.index) == investable
        np.testing.assert_allclose(
            got.to_numpy(), _reference(window, investable), rtol=1e-9, atol=1e-15
        )
    # it was updated incrementally, with rebuilds only every ~50 row changes
    assert 2 <= rolling.rebuilds_ <= 6


def test_a_window_that_skips_a_session_is_the_same_as_estimating_it_afresh(panel):
    tickers = [c for c in panel.columns if c != "date" and c != "T07"]
    rolling = RollingLedoitWolf([c for c in panel.columns if c != "date"])
    for end in (WINDOW + 20, WINDOW + 21, WINDOW + 22):
        # a session without a benchmark return leaves the window: the window is not contiguous
        window = panel.slice(end - WINDOW - 1, WINDOW + 1).filter(
            pl.col("date") != panel["date"][end - 5]
        )
        np.testing.assert_allclose(
            rolling.covariance(window, tickers).to_numpy(),
            _reference(window, tickers),
            rtol=1e-9,
            atol=1e-15,
        )


def test_the_daily_fast_path_gives_the_cold_solves_books_day_after_day(panel):
    """The live method as the replay runs it (the covariance from running sums, the working
    set warm-started from yesterday's book, the problems compiled once and re-solved with new
    parameter values) against a cold solve from scratch (sklearn's Ledoit-Wolf, the full
    problem built anew), five consecutive days, each from its own previous book."""
    import pandas as pd

    from quant_assets.portfolio.allocation import ConstrainedMarkowitz, MarkowitzProblems

    tickers = [c for c in panel.columns if c not in ("date", "T07")]
    rng = np.random.default_rng(5)
    views = pd.Series(rng.normal(0.0, 0.002, len(tickers)), index=tickers)
    sectors = pd.Series([f"S{i % 4}" for i in range(len(tickers))], index=tickers)
    limits = {"sectors": sectors, "expected_returns": views, "max_weight": 0.1, "max_top10": 0.6}
    rolling = RollingLedoitWolf([c for c in panel.columns if c != "date"])
    problems = MarkowitzProblems()
    fast_book = cold_book = None
    for end in range(SESSIONS - 5, SESSIONS):
        window = panel.slice(end - WINDOW, WINDOW)
        returns = window.select(tickers).to_pandas()
        fast = ConstrainedMarkowitz(
            **limits,
            working_set_size=10,
            previous_weights=fast_book,
            warm_start=None if fast_book is None else list(fast_book.index),
            covariance=rolling.covariance(window, tickers),
            problems=problems,
        ).fit(returns)
        cold = ConstrainedMarkowitz(**limits, working_set=False, previous_weights=cold_book)
        cold.fit(returns)
        assert fast.feasible_ and cold.feasible_
        assert (fast.weights_ - cold.weights_).abs().max() <= 1e-6
        previous = fast_book
        fast_book = fast.weights_[fast.weights_ > 1e-9]
        cold_book = cold.weights_[cold.weights_ > 1e-9]
    assert 3 <= len(fast_book) <= 39
    # compiled once per size bucket (DPP), not once a day
    compiled = [problem for problem, *_ in problems._compiled.values()]
    assert 1 <= problems.compilations_ == len(compiled) <= 3
    assert all(problem.is_dcp(dpp=True) for problem in compiled)
    # the same day again: every problem it needs is compiled already
    before = problems.compilations_
    again = ConstrainedMarkowitz(
        **limits,
        working_set_size=10,
        previous_weights=previous,
        warm_start=list(previous.index),
        covariance=rolling.covariance(window, tickers),
        problems=problems,
    ).fit(returns)
    assert problems.compilations_ == before
    assert (again.weights_ - fast.weights_).abs().max() <= 1e-9
