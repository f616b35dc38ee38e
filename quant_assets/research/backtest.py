"""Pure simulation core of the backtest: book simulation, spread estimate, signal portfolio, metrics.

No Dagster and no store access here: the walk-forward orchestration and the ``backtest`` asset
feed these functions in-memory frames. Metrics come from :mod:`quant_assets.research.performance`
and the cost formula mirrors :func:`quant_assets.risk.measures.rebalance_cost`, so the live
book and the backtest measure turnover and costs the same way.

Conventions (every function):

* Wide frames are pandas ``DataFrame`` of float64, index = trading dates (sorted), columns =
  tickers. Bar-derived long tables are Polars frames with ``ticker`` and ``date`` columns.
* Returns are SIMPLE daily close-to-close returns, the return of date ``d`` being
  ``close_d / close_{d-1} - 1``. Weights are fractions of NAV; the uninvested rest is cash at a
  zero return.
* Turnover is ``sum_i |w_target,i - w_drifted,i|`` (buys plus sells) and costs are fractions of
  NAV, as in :func:`quant_assets.research.performance.turnover` and ``risk.rebalance_cost``.
* Sharpe ratios are annualised with ``sqrt(252)`` unless said per period.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pandas as pd
import polars as pl

from quant_assets.research import performance as perf
from quant_core.conventions import TRADING_DAYS

BOOK_COLUMNS = ("gross_return", "cost", "net_return", "turnover", "gross_exposure", "n_names")


# --- book simulation --------------------------------------------------------------------------


def simulate_book(
    targets: pd.DataFrame,
    asset_returns: pd.DataFrame,
    cost_bps: float = 5.0,
    half_spread_bps: float | pd.DataFrame = 0.0,
) -> pd.DataFrame:
    """Daily P&L of a book that trades to ``targets`` at the close, with drift and costs.

    Timing, the no-look-ahead rule: a target row dated ``d`` is a decision taken at the CLOSE of
    ``d`` (with everything known at that close, including ``d``'s return) and the trade is done
    at that close; the weights it sets first earn the return of the NEXT date of
    ``asset_returns``. So the gross return of date ``d`` is earned by the book set at the close
    of the previous date, and no weight ever earns the return of the date it was decided on.

    Parameters
    ----------
    targets:
        Decision dates x tickers, target weights (fractions of NAV; cash = 1 - sum; negative
        weights are shorts). A date absent from ``targets``, or a row that is all NaN, means "no
        rebalance": the book is held and its weights drift with the prices. Inside a row that
        has at least one value, a NaN weight is 0 (the name is not held). Every decision date
        must be a date of ``asset_returns``.
    asset_returns:
        Dates x tickers, simple close-to-close returns; the calendar of the simulation. Columns
        are aligned to ``targets``' tickers (a target ticker without a column has no return). A
        missing return (NaN) of a held name counts as 0 that day: its price is carried, so a
        halted or delisted name stays in the book at its last value until a rebalance sells it.
    cost_bps:
        Proportional fee in basis points of the traded value.
    half_spread_bps:
        Half the bid-ask spread in bps, paid on every traded unit: a scalar, or a dates x tickers
        frame (e.g. :func:`corwin_schultz_half_spread` pivoted wide) whose gaps are forward
        filled per ticker and otherwise 0.

    Returns
    -------
    One row per date of ``asset_returns`` from the first decision date on (before it the book is
    all cash, which is where it starts), columns:

    * ``gross_return``: ``sum_i w_pre,i * r_d,i``, the return of the book held over ``d``;
    * ``turnover``: ``sum_i |w_target,i - w_drifted,i|`` at the close of ``d`` against the
      weights DRIFTED by ``d``'s returns, ``w_drifted = w_pre (1 + r_d) / (1 + gross_return)``
      (0 on hold dates; the first rebalance is measured against cash);
    * ``cost``: ``sum_i |trade_i| (cost_bps + half_spread_bps_d,i) / 1e4``, charged on ``d``'s
      P&L, as a fraction of NAV;
    * ``net_return``: ``gross_return - cost`` (the cost is taken from cash, so the post-trade
      weights are the targets exactly; the second-order ``cost * gross_return`` is ignored);
    * ``gross_exposure`` and ``n_names``: ``sum |w|`` and the count of non-zero weights of the
      book carried out of the close of ``d`` (after the rebalance, if any).
    """
    calendar, decisions = _checked_inputs(targets, asset_returns, cost_bps)
    if decisions.empty:
        return pd.DataFrame(columns=list(BOOK_COLUMNS), index=calendar[:0], dtype=np.float64)
    dates = calendar[calendar >= decisions.index[0]]
    tickers = targets.columns
    rebalance = dates.isin(decisions.index)
    gross, drifted, held = _drift(
        dates,
        _dense(asset_returns.reindex(index=dates, columns=tickers)),
        rebalance,
        # one target row per rebalance date, in calendar order, so the loop only walks a cursor
        _dense(decisions.reindex(dates[rebalance])),
    )
    traded = np.abs(held - drifted)
    per_unit = (cost_bps + _half_spread_matrix(half_spread_bps, dates, tickers)) / 1e4
    cost = (traded * per_unit).sum(axis=1)
    return pd.DataFrame(
        {
            "gross_return": gross,
            "cost": cost,
            "net_return": gross - cost,
            "turnover": traded.sum(axis=1),
            "gross_exposure": np.abs(held).sum(axis=1),
            "n_names": (held != 0.0).sum(axis=1).astype(np.float64),
        },
        index=dates,
        columns=list(BOOK_COLUMNS),
    )


def _dense(frame: pd.DataFrame) -> np.ndarray:
    """``frame`` as a float64 array with its missing values as 0."""
    return np.nan_to_num(frame.to_numpy(np.float64, na_value=np.nan), nan=0.0)


def _checked_inputs(
    targets: pd.DataFrame, asset_returns: pd.DataFrame, cost_bps: float
) -> tuple[pd.Index, pd.DataFrame]:
    """(the sorted calendar of ``asset_returns``, the decision rows of ``targets``: sorted,
    all-NaN rows dropped), after checking the inputs :func:`simulate_book` requires."""
    if not cost_bps >= 0:
        raise ValueError(f"cost_bps must be non-negative, got {cost_bps}")
    calendar = asset_returns.index.sort_values()
    if not calendar.is_unique:
        raise ValueError("asset_returns has duplicate dates")
    decisions = targets.sort_index().dropna(how="all")
    if decisions.index.has_duplicates:
        raise ValueError("targets has duplicate decision dates")
    unknown = decisions.index.difference(calendar)
    if len(unknown):
        raise ValueError(f"decision dates not in asset_returns: {list(unknown[:5])}")
    return calendar, decisions


def _drift(
    dates: pd.Index, returns: np.ndarray, rebalance: np.ndarray, target_rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(gross return of each date, the weights drifted by its returns, the weights carried
    out of its close): the book starts in cash and is set to the next of ``target_rows`` at
    each ``rebalance`` date's close."""
    n_dates, n_names = returns.shape
    drifted = np.empty((n_dates, n_names))
    held = np.empty((n_dates, n_names))
    gross = np.empty(n_dates)
    w = np.zeros(n_names)  # all cash before the first decision
    k = 0
    # the only date loop: the drift is a recursion (each day's weights depend on the last's)
    for t in range(n_dates):
        r_t = returns[t]
        g = float(w @ r_t)
        if not 1.0 + g > 0.0:
            raise ValueError(f"the book lost all its value on {dates[t]} (return {g:.4f})")
        gross[t] = g
        w = w * (1.0 + r_t) / (1.0 + g)
        drifted[t] = w
        if rebalance[t]:
            w = target_rows[k]
            k += 1
        held[t] = w
    return gross, drifted, held


def _half_spread_matrix(
    half_spread_bps: float | pd.DataFrame, dates: pd.Index, tickers: pd.Index
) -> np.ndarray:
    """Half-spreads in bps as a dates x tickers array (a scalar broadcasts)."""
    if not isinstance(half_spread_bps, pd.DataFrame):
        value = float(half_spread_bps)
        if not value >= 0:
            raise ValueError(f"half_spread_bps must be non-negative, got {value}")
        return np.full((len(dates), len(tickers)), value)
    # the estimate of an earlier session is the best guess for a day without one; the union
    # index lets a spread dated on a non-trading day still carry forward
    frame = half_spread_bps.sort_index().reindex(columns=tickers)
    frame = frame.reindex(frame.index.union(dates)).ffill().reindex(dates)
    out = _dense(frame)
    if (out < 0).any():
        raise ValueError("half_spread_bps has negative values")
    return out


# --- spread estimate --------------------------------------------------------------------------


def corwin_schultz_half_spread(
    bars: pl.DataFrame,
    window: int = 21,
    floor_bps: float = 0.5,
    cap_bps: float = 100.0,
) -> pl.DataFrame:
    """Corwin & Schultz (2012) high-low half-spread per ticker and session, in bps.

    For the two sessions ``t-1, t`` of a ticker, with ``H``/``L`` the highs and lows,

        beta  = ln(H_{t-1}/L_{t-1})^2 + ln(H_t/L_t)^2
        gamma = ln(max(H_{t-1}, H_t) / min(L_{t-1}, L_t))^2
        alpha = (sqrt(2 beta) - sqrt(beta)) / (3 - 2 sqrt 2) - sqrt(gamma / (3 - 2 sqrt 2))
        S     = 2 (e^alpha - 1) / (1 + e^alpha)

    and negative two-day estimates are set to 0 (the paper's first remedy). The estimate is
    dated on the later session ``t`` (it uses nothing after the close of ``t``), averaged over
    the last ``window`` sessions of the ticker (fewer at the start of its history; the first
    session, with no pair, is null), halved, expressed in bps and clipped to
    ``[floor_bps, cap_bps]``. The paper's overnight-return adjustment is not applied.

    Adjusted prices (``adj_high``, ``adj_low``) are required because ``gamma`` compares two
    sessions: a split or dividend between them moves raw prices by the adjustment factor, which
    the estimator would read as a two-day range and so as (negative) spread noise. Within one
    session the factor cancels in ``H/L``, so adjusting changes nothing else.

    ``bars`` needs columns ``ticker``, ``date``, ``adj_high``, ``adj_low``; a session with a
    missing or non-positive price, or ``high < low``, gives no estimate. Returns columns
    ``ticker``, ``date``, ``half_spread_bps`` sorted by ticker and date.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if not 0 <= floor_bps <= cap_bps:
        raise ValueError(f"need 0 <= floor_bps <= cap_bps, got {floor_bps}, {cap_bps}")
    k = 3.0 - 2.0 * math.sqrt(2.0)
    high, low = pl.col("adj_high"), pl.col("adj_low")
    valid = (low > 0) & (high >= low)
    prev_high = pl.col("_h").shift(1).over("ticker")
    prev_low = pl.col("_l").shift(1).over("ticker")
    beta = pl.col("_h").truediv(pl.col("_l")).log().pow(2) + prev_high.truediv(prev_low).log().pow(
        2
    )
    gamma = (
        pl.max_horizontal(pl.col("_h"), prev_high)
        .truediv(pl.min_horizontal(pl.col("_l"), prev_low))
        .log()
        .pow(2)
    )
    alpha = ((2.0 * pl.col("_beta")).sqrt() - pl.col("_beta").sqrt()) / k - (
        pl.col("_gamma") / k
    ).sqrt()
    spread = 2.0 * (alpha.exp() - 1.0) / (1.0 + alpha.exp())
    return (
        bars.select("ticker", "date", "adj_high", "adj_low")
        .sort("ticker", "date")
        .with_columns(
            _h=pl.when(valid).then(high.cast(pl.Float64)),
            _l=pl.when(valid).then(low.cast(pl.Float64)),
        )
        # max/min_horizontal skip nulls, so gamma is only kept where both sessions are valid
        .with_columns(
            _beta=beta,
            _gamma=pl.when(prev_high.is_not_null() & pl.col("_h").is_not_null()).then(gamma),
        )
        .with_columns(_s=spread.clip(lower_bound=0.0))
        .with_columns(
            half_spread_bps=(
                pl.col("_s").rolling_mean(window, min_samples=1).over("ticker") / 2.0 * 1e4
            ).clip(floor_bps, cap_bps)
        )
        .select("ticker", "date", "half_spread_bps")
    )


# --- signal portfolio -------------------------------------------------------------------------


def top_quantile_weights(scores: pd.DataFrame, quantile: float = 0.2) -> pd.DataFrame:
    """Equal weights on each date's top-``quantile`` names by score, fully invested.

    On each date (row) with ``n`` finite scores, the ``k = ceil(quantile * n)`` highest scores
    are selected (at least one name; names tied with the ``k``-th score all get in, so ties never
    pick by column order) and each gets ``1 / #selected``; the other names get 0. NaN scores are
    excluded. A date without any finite score gives an all-NaN row, which :func:`simulate_book`
    reads as "hold". This is the simple portfolio that turns a path of model scores into a
    return series (CPCV paths, IC-style checks), not an optimised book.
    """
    if not 0.0 < quantile <= 1.0:
        raise ValueError(f"quantile must lie in (0, 1], got {quantile}")
    values = scores.astype(np.float64)
    n_valid = values.notna().sum(axis=1)
    # rounding first: 0.1 * 30 is 3.0000000000000004 in floating point and would round up to 4
    k = np.ceil((quantile * n_valid).round(9)).clip(lower=1)
    rank = values.rank(axis=1, ascending=False, method="min")
    selected = rank.le(k, axis=0).astype(np.float64)
    weights = selected.div(selected.sum(axis=1), axis=0)
    weights[n_valid == 0] = np.nan
    return weights


# --- Sharpe distribution over CPCV paths ------------------------------------------------------


def sharpe_distribution(
    path_returns: Mapping[int, pd.Series], periods_per_year: int = TRADING_DAYS
) -> pd.DataFrame:
    """Annualised Sharpe ratio of each backtest path (CPCV paths): columns ``path``, ``sharpe``,
    ``n_obs`` (finite returns used), one row per path in the order given. Sharpe as in
    :func:`quant_assets.research.performance.sharpe_ratio` (mean over std ``ddof=1``, zero
    risk-free, NaN returns dropped)."""
    rows = [
        {
            "path": path,
            "sharpe": perf.sharpe_ratio(returns, periods_per_year=periods_per_year),
            "n_obs": int(np.isfinite(returns.to_numpy(np.float64, na_value=np.nan)).sum()),
        }
        for path, returns in path_returns.items()
    ]
    return pd.DataFrame(rows, columns=["path", "sharpe", "n_obs"]).astype(
        {"path": np.int64, "sharpe": np.float64, "n_obs": np.int64}
    )


def summarise_sharpe_distribution(distribution: pd.DataFrame) -> dict[str, float]:
    """Summary of :func:`sharpe_distribution`: ``n_paths``, ``mean``, ``std`` (ddof=1), the
    5/50/95% quantiles (linear interpolation) and ``share_positive`` (paths with Sharpe > 0),
    over the paths with a finite Sharpe."""
    sharpe = distribution["sharpe"].to_numpy(np.float64, na_value=np.nan)
    sharpe = sharpe[np.isfinite(sharpe)]
    if sharpe.size == 0:
        nan = math.nan
        return dict.fromkeys(("mean", "std", "q05", "q50", "q95", "share_positive"), nan) | {
            "n_paths": 0.0
        }
    q05, q50, q95 = np.quantile(sharpe, [0.05, 0.5, 0.95])
    return {
        "n_paths": float(sharpe.size),
        "mean": float(sharpe.mean()),
        "std": float(sharpe.std(ddof=1)) if sharpe.size > 1 else math.nan,
        "q05": float(q05),
        "q50": float(q50),
        "q95": float(q95),
        "share_positive": float(np.mean(sharpe > 0)),
    }


# --- metrics table ----------------------------------------------------------------------------

METRIC_SCHEMA: dict[str, type[pl.DataType]] = {
    "strategy": pl.String,
    "cagr": pl.Float64,
    "volatility": pl.Float64,
    "sharpe": pl.Float64,
    "sortino": pl.Float64,
    "max_drawdown": pl.Float64,
    "calmar": pl.Float64,
    "hit_rate": pl.Float64,
    "mean_turnover": pl.Float64,
    "psr": pl.Float64,
    "dsr": pl.Float64,
    "n_obs": pl.Int64,
    "n_trials": pl.Int64,
    "mean_ic": pl.Float64,
}


def backtest_metrics(
    net_returns: Mapping[str, pd.Series],
    turnover: Mapping[str, pd.Series],
    ic: Mapping[str, pd.Series] | None = None,
    periods_per_year: int = TRADING_DAYS,
) -> pl.DataFrame:
    """One row per strategy with every metric of :func:`performance.summarise`.

    ``net_returns`` maps a strategy name to its daily net returns, ``turnover`` to its daily
    turnover (``mean_turnover`` is its mean over the dates given, NaN when absent), ``ic`` to a
    daily information-coefficient series (``mean_ic`` is its mean, null when not supplied).

    The Deflated Sharpe Ratio takes as trials the per-period Sharpe ratios of ALL the strategies
    passed: the number of combinations tried is the number of strategies in this call (column
    ``n_trials``), so pass every model x method combination and benchmark that was looked at,
    not only the survivors. ``psr`` is against a zero Sharpe.
    """
    if not net_returns:
        return pl.DataFrame(schema=METRIC_SCHEMA)
    trials = np.array(
        [perf.sharpe_ratio(r, periods_per_year=None) for r in net_returns.values()],
        dtype=np.float64,
    )
    finite_trials = trials[np.isfinite(trials)]
    rows = []
    for name, returns in net_returns.items():
        summary = perf.summarise(
            returns,
            trial_sharpe_ratios=finite_trials if finite_trials.size else None,
            periods_per_year=periods_per_year,
        )
        strategy_turnover = turnover.get(name)
        mean_turnover = math.nan if strategy_turnover is None else _finite_mean(strategy_turnover)
        strategy_ic = None if ic is None else ic.get(name)
        rows.append(
            {"strategy": name}
            | replace(summary, mean_turnover=mean_turnover).as_dict()
            | {
                "n_trials": int(finite_trials.size),
                "mean_ic": None if strategy_ic is None else _finite_mean(strategy_ic),
            }
        )
    return pl.DataFrame(rows, schema=METRIC_SCHEMA)


def _finite_mean(series: pd.Series) -> float:
    """Mean over the finite values (NaN when there is none, without numpy's empty warning)."""
    values = series.to_numpy(np.float64, na_value=np.nan)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else math.nan
