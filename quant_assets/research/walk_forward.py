"""Walk-forward backtest of every model x allocation method, with the platform's own code.

The steps, each reusing the code that runs live:

1. Scores: every model of ``models`` is retrained every ``retrain_every`` sessions on the last
   ``train_sessions`` sessions (:func:`~quant_assets.models.validation.walk_forward_evaluate`
   with the weekly training's estimators, purged by the label horizon so no training label
   overlaps a scored day) and scores the following block out of sample. The ``ensemble`` is
   the equal-weight rank ensemble of the models (validation-weighted ensembles would need the
   future's validation).
2. Views: on every re-optimisation day ``d``, a :class:`ScoreCalibrator` is fitted on the
   model's own out-of-sample scores of the last ``calibration_sessions`` sessions whose label
   was realised by ``d`` (label date <= d - 5 sessions), exactly the live calibration; before
   it has ``min_calibration_dates`` of them the day has no views (BL = its prior, Markowitz
   without edge).
3. The live book, replayed every session (``replay_models``, default the ensemble):
   :mod:`quant_assets.research.replay` runs the live assets' own decision
   (:func:`~quant_assets.portfolio.decision.decide_session`) on a whole-share account, against
   the book it holds, with fills at the next open through the simulated broker's fill model,
   on the fast path (running-sums covariance, working set, compiled problems).
4. The other books: :func:`~quant_assets.portfolio.books.allocate_day` every
   ``reoptimise_every`` sessions with the live drawdown rule per strategy (a strategy whose own
   simulated NAV over the policy's window is past the maximum drawdown at the close of a
   decision day only trades to shrink positions that day, ``risk_reducing``). Methods that use
   views are fitted per model; the others do not see the scores and are fitted once. Between
   re-optimisations the book is traded back to its last target every day; the turnover limit
   is scaled to the cadence. P&L: :func:`~quant_assets.research.backtest.simulate_book`
   (decided at d's close, earns d+1), proportional ``cost_bps`` plus each name's
   Corwin-Schultz half-spread.
5. Benchmarks: the index (buy and hold, no cost) and the equal-weight book of the day's
   investable names (rebalanced on the same days, same costs).
6. CPCV: for each model, combinatorial purged CV over the backtest period gives ``C(N, k) k / N``
   out-of-sample score paths; each path's top-quintile portfolio (re-formed every
   ``reoptimise_every`` sessions, same simulator and costs) gives
   one Sharpe ratio, a distribution instead of a single walk-forward number.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Any

import pandas as pd
import polars as pl

from quant_assets.models.cross_section import daily_ic
from quant_assets.models.ensemble import RankEnsemble
from quant_assets.models.training import ENSEMBLE, TrainingSpec
from quant_assets.models.validation import cpcv_evaluate, make_cpcv, walk_forward_evaluate
from quant_assets.portfolio.allocation import MarkowitzProblems
from quant_assets.portfolio.books import (
    DayInputs,
    InsufficientReturnsError,
    allocate_day,
    day_inputs,
    returns_panel,
    risk_reducing,
)
from quant_assets.portfolio.covariance import RollingLedoitWolf
from quant_assets.portfolio.methods import VIEW_METHODS
from quant_assets.portfolio.views import InsufficientHistoryError, ScoreCalibrator
from quant_assets.research.backtest import (
    backtest_metrics,
    corwin_schultz_half_spread,
    sharpe_distribution,
    simulate_book,
    top_quantile_weights,
)
from quant_assets.research.replay import Replay, account_bars
from quant_core.conventions import LABEL_HORIZON_SESSIONS, TRADING_DAYS
from quant_core.metrics import current_drawdown
from resources.broker.simulated import FillModel
from resources.execution_policy import ExecutionPolicy
from resources.portfolio_policy import PortfolioPolicy

INDEX = "benchmark/index"
EQUAL_WEIGHT = "benchmark/equal_weight"

Log = Callable[[str], Any]
# strategy name -> decision date -> target book
Books = dict[str, dict[date, pd.Series]]


@dataclass(frozen=True)
class BacktestSpec:
    """Explicit parameters of one backtest (sizes in sessions).

    The Dagster config of the ``backtest`` asset exposes every numeric field of this class
    under the same name and default (``quant_assets.research.assets.BacktestConfig``): a field
    added here is configurable there."""

    models: tuple[str, ...] = ("lightgbm", "catboost")
    train_sessions: int = 504
    retrain_every: int = 20
    reoptimise_every: int = 20
    # 0: the live policy's window (the backtest replays the live policy)
    lookback_sessions: int = 0
    cost_bps: float = 5.0
    calibration_sessions: int = TRADING_DAYS
    min_calibration_dates: int = 20
    signal_quantile: float = 0.2
    cpcv_folds: int = 6
    cpcv_test_folds: int = 2
    initial_cash: float = 1_000_000.0
    # the models whose live-method book is replayed every session (research/replay.py)
    replay_models: tuple[str, ...] = (ENSEMBLE,)
    training: TrainingSpec = field(default_factory=TrainingSpec)

    def __post_init__(self) -> None:
        if not self.models:
            raise ValueError("a backtest needs at least one model")
        for size in ("train_sessions", "retrain_every", "reoptimise_every"):
            if getattr(self, size) < 1:
                raise ValueError(f"{size} must be positive")
        if self.lookback_sessions < 0:
            raise ValueError("lookback_sessions must be positive (0: the policy's)")

    def lookback(self, policy: PortfolioPolicy) -> int:
        return self.lookback_sessions or policy.lookback_sessions


@dataclass(frozen=True, eq=False)
class Market:
    """The stored history a backtest runs on: ``labels`` (realised labels on a (date, ticker)
    index, dates as datetime64), ``bars`` (ticker, date, adj_close, adj_high, adj_low of the
    tickers and the benchmark), the tickers' ``sectors`` and the ``benchmark``'s ticker. The
    frames derived from the bars are computed once, on first use."""

    labels: pd.Series
    bars: pl.DataFrame
    sectors: pd.Series
    benchmark: str

    @cached_property
    def panel(self) -> pl.DataFrame:
        """:func:`~quant_assets.portfolio.books.returns_panel` of the bars."""
        return returns_panel(self.bars)

    @cached_property
    def sessions(self) -> list[date]:
        return self.panel["date"].to_list()

    @cached_property
    def returns(self) -> pd.DataFrame:
        """Wide daily returns on datetime64 dates."""
        returns = self.panel.to_pandas().set_index("date")
        returns.index = pd.DatetimeIndex(returns.index)
        return returns

    @cached_property
    def account_bars(self) -> pl.DataFrame:
        """:func:`~quant_assets.research.replay.account_bars` (the replayed accounts' prices);
        needs ``adj_open``, ``close`` and ``volume`` in the bars."""
        return account_bars(self.bars)

    @cached_property
    def priced_sessions(self) -> set[date]:
        """Sessions with a benchmark return: the only possible decision days
        (``books._market_window``)."""
        return set(self.panel.filter(pl.col(self.benchmark).is_not_null())["date"].to_list())

    @cached_property
    def half_spread(self) -> pd.DataFrame:
        """Wide Corwin-Schultz half-spreads (bps) on datetime64 dates."""
        spreads = corwin_schultz_half_spread(self.bars).to_pandas()
        half_spread = spreads.pivot(index="date", columns="ticker", values="half_spread_bps")
        half_spread.index = pd.DatetimeIndex(half_spread.index)
        return half_spread

    def simulate(
        self, targets: pd.DataFrame, spec: BacktestSpec, until: date | None = None
    ) -> pd.DataFrame:
        """:func:`simulate_book` of ``targets`` (decision dates x tickers) from its first date
        on (to ``until`` when given), with the spec's costs and the names' half-spreads."""
        tickers = targets.columns
        returns = self.returns[self.returns.index >= targets.index[0]]
        if until is not None:
            returns = returns[returns.index <= pd.Timestamp(until)]
        return simulate_book(
            targets,
            returns.reindex(columns=tickers),
            cost_bps=spec.cost_bps,
            half_spread_bps=self.half_spread.reindex(columns=tickers),
        )


@dataclass
class BacktestResult:
    """Scores (panel x models + ensemble), each strategy's simulated book (``books``: name ->
    simulate_book frame), daily IC per model, CPCV Sharpe distributions per model, allocation
    statuses (``risk_reducing``: the strategy was past the maximum drawdown that day), the
    re-optimisation days, the time each stage took and every strategy's decided books
    (``decisions``: name -> decision day -> target weights)."""

    scores: pd.DataFrame
    books: dict[str, pd.DataFrame]
    ic: dict[str, pd.Series]
    cpcv_sharpes: dict[str, pd.DataFrame]
    status: pl.DataFrame
    rebalance_days: list[date]
    seconds: dict[str, float]
    strategy_models: dict[str, str] = field(default_factory=dict)
    decisions: Books = field(default_factory=dict)
    replayed: list[str] = field(default_factory=list)
    # strategy -> how often it was re-decided (stated in the output)
    cadence: dict[str, str] = field(default_factory=dict)
    # the replayed strategies' books held at each decision's close (what their turnover and
    # drawdown rule were measured against)
    held: Books = field(default_factory=dict)


def strategy_name(model: str | None, method: str) -> str:
    return method if model is None else f"{model}/{method}"


@contextmanager
def _timed(seconds: dict[str, float], stage: str) -> Iterator[None]:
    """Record the block's wall time as ``seconds[stage]``."""
    started = time.perf_counter()
    yield
    seconds[stage] = time.perf_counter() - started


def model_scores(
    X: pd.DataFrame, y: pd.Series, sectors: pd.Series, spec: BacktestSpec
) -> pd.DataFrame:
    """Out-of-sample walk-forward score of every model and the ensemble (NaN before the first
    scored block), one column per model, on ``X``'s (date, ticker) index."""
    columns: dict[str, pd.Series] = {}
    for name in spec.models:
        estimator = spec.training.estimator(name, sectors)
        features = spec.training.feature_columns(name, [str(c) for c in X.columns])
        result = walk_forward_evaluate(
            estimator,
            X[features],
            y,
            train_days=spec.train_sessions,
            test_days=spec.retrain_every,
            purge=LABEL_HORIZON_SESSIONS,
        )
        columns[name] = result.predictions
    ensemble = RankEnsemble(dict.fromkeys(spec.models, 1.0)).combine(columns)
    frame = pd.DataFrame(columns)
    frame[ENSEMBLE] = ensemble.where(frame.notna().any(axis=1))
    return frame


def _calibrated_views(
    day: date,
    score: pd.Series,
    label: pd.Series,
    sessions: list[date],
    spec: BacktestSpec,
) -> pl.DataFrame | None:
    """The day's views from ``score`` (one model's panel scores) calibrated on its realised
    out-of-sample history; None while that history is too short."""
    position = sessions.index(day)
    last_realised = position - LABEL_HORIZON_SESSIONS
    if last_realised < 1:
        return None
    history_dates = sessions[max(0, last_realised - spec.calibration_sessions) : last_realised]
    dates = score.index.get_level_values("date")
    in_history = dates.isin(pd.DatetimeIndex(history_dates))
    history = (
        pd.DataFrame({"score": score[in_history], "label": label[in_history]})
        .dropna()
        .reset_index()
    )
    if history.empty:
        return None
    calibrator = ScoreCalibrator(min_dates=spec.min_calibration_dates)
    try:
        calibrator.fit(pl.from_pandas(history).with_columns(pl.col("date").cast(pl.Date)))
    except InsufficientHistoryError:
        return None
    today = score[dates == pd.Timestamp(day)].dropna()
    if today.empty:
        return None
    frame = pl.DataFrame(
        {"ticker": today.index.get_level_values("ticker").astype(str).tolist(), "score": today}
    )
    return calibrator.predict(frame)


def _targets(books: dict[date, pd.Series], days: list[date]) -> pd.DataFrame:
    """Decision dates x tickers: each day's target is the last re-optimised book (daily
    rebalancing back to it); days before the first book are absent (cash)."""
    frame = pd.DataFrame(books).T.sort_index().fillna(0.0)
    frame.index = pd.DatetimeIndex(frame.index)
    return frame.reindex(pd.DatetimeIndex(days)).ffill().dropna(how="all")


def run_backtest(
    X: pd.DataFrame,
    market: Market,
    policy: PortfolioPolicy,
    spec: BacktestSpec,
    log: Log = print,
    scores: pd.DataFrame | None = None,
    execution: Execution | None = None,
) -> BacktestResult:
    """Everything in the module docstring. ``X``: Alpha158 on a (date, ticker) index (dates as
    datetime64) over the stored history, the index of ``market.labels``. ``scores``: step 1's
    output when the caller has already computed it with this ``spec`` (:func:`model_scores`:
    the research command evaluates them before backtesting them), so it is not trained twice."""
    seconds: dict[str, float] = {}
    if scores is None:
        with _timed(seconds, "walk_forward_training"):
            scores = model_scores(X, market.labels, market.sectors, spec)
        log(f"walk-forward scores: {seconds['walk_forward_training']:.1f} s")
    result = backtest_from_scores(scores, market, policy, spec, log, execution)
    with _timed(seconds, "cpcv"):
        result.cpcv_sharpes = _cpcv_sharpes(X, scores, market, spec)
    log(f"CPCV paths: {seconds['cpcv']:.1f} s")
    result.seconds.update(seconds)
    return result


def backtest_from_scores(
    scores: pd.DataFrame,
    market: Market,
    policy: PortfolioPolicy,
    spec: BacktestSpec,
    log: Log = print,
    execution: Execution | None = None,
) -> BacktestResult:
    """Steps 2-5 of the module docstring on given out-of-sample ``scores`` (one column per
    model, ``ensemble`` included, on a (date, ticker) index; the score of date d must use only
    what is known at d's close). The market's labels calibrate the views, only where
    realised. ``execution``: the live orders' policy and the simulated broker's fill model
    (defaults: the resources' defaults) for the replayed live books."""
    seconds: dict[str, float] = {}
    first_scored = pd.Timestamp(scores.dropna(how="all").index.get_level_values("date").min())
    test_days = [d for d in market.sessions if pd.Timestamp(d) >= first_scored]
    # a session without a benchmark return cannot be a decision day (books._market_window):
    # known before any allocation runs, so it is skipped rather than failing the run there
    rebalance_days = [d for d in test_days if d in market.priced_sessions][:: spec.reoptimise_every]
    replayed = _replayed_owners(scores, policy, spec)
    with _timed(seconds, "allocation"):
        books, status = _allocate(
            scores, market, _reoptimisation_policy(policy, spec), spec, rebalance_days, replayed
        )
    log(f"allocation on {len(rebalance_days)} days: {seconds['allocation']:.1f} s")
    with _timed(seconds, "live_replay"):
        replays = [
            _replay(model, scores, market, policy, spec, execution or Execution(), test_days)
            for model in replayed
        ]
    log(f"live method replayed daily for {replayed}: {seconds['live_replay']:.1f} s")
    with _timed(seconds, "simulation"):
        simulated = {
            name: market.simulate(_targets(b, test_days), spec) for name, b in books.items()
        }
        simulated[INDEX] = _index_book(market, test_days[0])
    for replay in replays:
        simulated[replay.name] = replay.book().drop(columns="nav")
        books[replay.name] = replay.decisions
    cadence = (
        {name: f"every {spec.reoptimise_every} sessions" for name in simulated if name != INDEX}
        | {INDEX: "bought and held"}
        | {r.name: "every session (live replay)" for r in replays}
    )
    models = [str(c) for c in scores.columns]
    view_methods, plain_methods = _split_methods(policy)
    return BacktestResult(
        scores=scores,
        books=simulated,
        ic={m: daily_ic(scores[m].dropna(), market.labels)["rank_ic"].dropna() for m in models},
        cpcv_sharpes={},
        status=pl.concat(
            [status, *(pl.concat(r.statuses) for r in replays if r.statuses)],
            how="diagonal_relaxed",
        ),
        rebalance_days=rebalance_days,
        seconds=seconds,
        decisions=books,
        strategy_models={
            strategy_name(model, method): model or "-"
            for model in [None, *models]
            for method in (plain_methods if model is None else view_methods)
        },
        replayed=[r.name for r in replays],
        cadence=cadence,
        held={replay.name: replay.held for replay in replays},
    )


def _replayed_owners(
    scores: pd.DataFrame, policy: PortfolioPolicy, spec: BacktestSpec
) -> list[str | None]:
    """Whose live-method book is replayed daily: the spec's models when the live method uses
    the views; the method alone (owner None) when it does not; nobody without replay models."""
    if not spec.replay_models:
        return []
    if policy.live_method not in VIEW_METHODS:
        return [None]
    return [m for m in spec.replay_models if m in scores.columns]


@dataclass(frozen=True)
class Execution:
    """How the replayed live books trade: the live orders' policy and the simulated broker's
    fill model (one cost model for live and backtest)."""

    policy: ExecutionPolicy = field(default_factory=ExecutionPolicy)
    fill_model: FillModel = field(default_factory=FillModel)


def _replay(
    model: str | None,
    scores: pd.DataFrame,
    market: Market,
    policy: PortfolioPolicy,
    spec: BacktestSpec,
    execution: Execution,
    sessions: list[date],
) -> Replay:
    """``model``'s live-method book replayed every session (``research/replay.py``) under the
    live policy itself (its daily turnover limit, not the re-optimisation cadence's)."""
    labels = market.labels.reindex(scores.index)
    replay = Replay(
        strategy_name(model, policy.live_method),
        model or "-",
        # the window the backtest's inputs use (the policy's unless the spec sets one)
        policy.model_copy(update={"lookback_sessions": spec.lookback(policy)}),
        execution.policy,
        execution.fill_model,
        spec.initial_cash,
    )

    fast = (
        RollingLedoitWolf([c for c in market.panel.columns if c != "date"]),
        MarkowitzProblems(),
    )

    def inputs_of(day: date) -> DayInputs | None:
        if day not in market.priced_sessions:
            return None
        views = (
            None
            if model is None
            else _calibrated_views(day, scores[model], labels, market.sessions, spec)
        )
        try:
            return _day_inputs(day, market, policy, spec, views, fast)
        except InsufficientReturnsError:
            return None

    replay.run(market.account_bars, sessions, inputs_of)
    return replay


def _day_inputs(
    day: date,
    market: Market,
    policy: PortfolioPolicy,
    spec: BacktestSpec,
    views: pl.DataFrame | None = None,
    fast: tuple[RollingLedoitWolf, MarkowitzProblems] | None = None,
) -> DayInputs:
    """The day's inputs with the live policy's window and stop-loss (no previous books); with
    ``fast``, the covariance from its running sums and the Markowitz problems it compiled."""
    return day_inputs(
        day,
        market.panel,
        market.benchmark,
        market.sectors,
        views,
        {},
        spec.lookback(policy),
        policy.stop_loss_vol_multiple,
        policy.stop_loss_vol_window,
        *(fast or (None, None)),
    )


def _reoptimisation_policy(policy: PortfolioPolicy, spec: BacktestSpec) -> PortfolioPolicy:
    """The policy with its turnover cap scaled to the re-optimisation cadence: the policy caps
    turnover per session, and a book re-optimised every k sessions may trade k sessions'
    allowance at once (else a 15% cap against a 20-session-old book is mostly infeasible once
    volatility moves)."""
    scaled = min(policy.max_turnover * spec.reoptimise_every, 2.0)
    return PortfolioPolicy(**{**policy.model_dump(), "max_turnover": scaled})


def _split_methods(policy: PortfolioPolicy) -> tuple[list[str], list[str]]:
    """(the policy's methods that use views, fitted per model; the others, fitted once)."""
    view_methods = [m for m in policy.methods if m in VIEW_METHODS]
    return view_methods, [m for m in policy.methods if m not in VIEW_METHODS]


def _allocate(
    scores: pd.DataFrame,
    market: Market,
    policy: PortfolioPolicy,
    spec: BacktestSpec,
    days: list[date],
    replayed: list[str | None],
) -> tuple[Books, pl.DataFrame]:
    """Every strategy's book (the equal-weight benchmark's included) on each of ``days``, and
    the allocation statuses; the live method of the ``replayed`` models is left to the daily
    replay. An infeasible book holds the strategy's last one."""
    labels = market.labels.reindex(scores.index)
    view_methods, plain_methods = _split_methods(policy)
    books: Books = {}
    statuses: list[pl.DataFrame] = []
    previous: dict[str, pd.Series] = {}
    navs: dict[str, _SimulatedNav] = {}
    for day in days:
        base = _day_inputs(day, market, policy, spec)
        plain = [m for m in plain_methods if not (None in replayed and m == policy.live_method)]
        runs: list[tuple[str | None, DayInputs, list[str]]] = [(None, base, plain)]
        for model in [str(c) for c in scores.columns]:
            views = _calibrated_views(day, scores[model], labels, market.sessions, spec)
            earlier = {
                m: previous[strategy_name(model, m)]
                for m in view_methods
                if strategy_name(model, m) in previous
            }
            methods = [
                m for m in view_methods if not (model in replayed and m == policy.live_method)
            ]
            runs.append((model, dataclasses.replace(base, views=views, previous=earlier), methods))
        for owner, inputs, methods in runs:
            if methods:
                day_books = allocate_day(inputs, policy, methods)
                cut = _past_max_drawdown(books, navs, owner, methods, market, spec, day, policy)
                status = day_books.status.with_columns(
                    (pl.col("risk_reducing") | pl.col("method").is_in(cut)).alias("risk_reducing"),
                    pl.lit(owner or "-").alias("model"),
                )
                statuses.append(status)
                book_of = _risk_reduced(day_books.book, cut, owner, previous)
                _keep(books, previous, day, owner, methods, book_of)
        books.setdefault(EQUAL_WEIGHT, {})[day] = pd.Series(
            1.0 / base.returns.shape[1], index=base.returns.columns
        )
    return books, pl.concat(statuses) if statuses else pl.DataFrame()


@dataclass
class _SimulatedNav:
    """A strategy's simulated net returns up to the last decision day it was judged on,
    extended a segment at a time (linear in the decision days, not quadratic): the book is
    rebalanced to its last target at every close, so the returns after a decision day depend
    only on that day's target and the one before it (the trade at that close)."""

    returns: pd.Series = field(
        default_factory=lambda: pd.Series(dtype="float64", index=pd.DatetimeIndex([]))
    )

    def drawdown(
        self,
        decided: dict[date, pd.Series],
        market: Market,
        spec: BacktestSpec,
        day: date,
        sessions: int | None = None,
    ) -> float:
        """The drawdown at the close of ``day`` of the strategy that traded ``decided`` (its
        books so far, all decided before ``day``), with the same simulator and costs, over its
        last ``sessions`` returns (all of them when None; live reads the policy's window)."""
        days = sorted(decided)
        start = days[-2] if len(days) > 1 else days[0]
        window = [d for d in market.sessions if start <= d <= day]
        segment = _targets({d: decided[d] for d in days[-2:]}, window)
        fresh = market.simulate(segment, spec, until=day)["net_return"]
        if len(days) > 1:
            # the segment starts from cash at ``start``: its first row is not the strategy's
            fresh = fresh[fresh.index > pd.Timestamp(start)]
        kept = self.returns[self.returns.index < fresh.index[0]] if len(fresh) else self.returns
        self.returns = pd.concat([kept, fresh]) if len(kept) else fresh
        returns = self.returns.to_numpy()[-(sessions or len(self.returns)) :]
        return current_drawdown(returns) if len(returns) else 0.0


def _past_max_drawdown(
    books: Books,
    navs: dict[str, _SimulatedNav],
    owner: str | None,
    methods: list[str],
    market: Market,
    spec: BacktestSpec,
    day: date,
    policy: PortfolioPolicy,
) -> list[str]:
    """The methods of ``owner`` whose strategy is beyond the policy's maximum drawdown at the
    close of ``day``: the live drawdown rule, applied to each simulated strategy."""
    cut = []
    for method in methods:
        name = strategy_name(owner, method)
        decided = books.get(name)
        if not decided:
            continue
        nav = navs.setdefault(name, _SimulatedNav())
        window = spec.lookback(policy)
        if nav.drawdown(decided, market, spec, day, window) > policy.max_drawdown:
            cut.append(method)
    return cut


def _risk_reduced(
    book_of: Callable[[str], pd.Series | None],
    cut: list[str],
    owner: str | None,
    previous: dict[str, pd.Series],
) -> Callable[[str], pd.Series | None]:
    """``book_of``, with the books of the ``cut`` methods cut back to trades that only shrink
    positions against the strategy's previous book (``risk_reducing``, as live)."""

    def book(method: str) -> pd.Series | None:
        target = book_of(method)
        if target is None or method not in cut:
            return target
        return risk_reducing(target, previous.get(strategy_name(owner, method)))

    return book


def _keep(
    books: Books,
    previous: dict[str, pd.Series],
    day: date,
    owner: str | None,
    methods: list[str],
    book_of: Callable[[str], pd.Series | None],
) -> None:
    """Record the day's book of each method of ``owner`` (its last one where infeasible, which
    the status reports) in ``books`` and as the strategy's ``previous`` book."""
    for method in methods:
        name = strategy_name(owner, method)
        book = book_of(method)
        if book is None:
            book = previous.get(name)
        if book is not None:
            books.setdefault(name, {})[day] = book
            previous[name] = book


def _index_book(market: Market, first_day: date) -> pd.DataFrame:
    """The index benchmark as a simulated book: bought and held from ``first_day``, no cost. A
    session without a benchmark return counts as 0, as a held name's in every book
    (:func:`simulate_book`: the price is carried)."""
    returns = market.returns
    held = returns.loc[returns.index >= pd.Timestamp(first_day), market.benchmark].iloc[1:]
    index_returns = held.fillna(0.0)
    return pd.DataFrame(
        {
            "gross_return": index_returns,
            "cost": 0.0,
            "net_return": index_returns,
            "turnover": 0.0,
            "gross_exposure": 1.0,
            "n_names": 1,
        }
    )


def _cpcv_sharpes(
    X: pd.DataFrame, scores: pd.DataFrame, market: Market, spec: BacktestSpec
) -> dict[str, pd.DataFrame]:
    """Per model: the Sharpe ratio of the top-quantile portfolio on each CPCV path of the
    backtest period (models trained on the other folds, purged and embargoed)."""
    period = scores.dropna(how="all").index
    rows = period[market.labels.reindex(period).notna().to_numpy()]
    cv = make_cpcv(spec.cpcv_folds, spec.cpcv_test_folds)
    out: dict[str, pd.DataFrame] = {}
    for name in spec.models:
        features = spec.training.feature_columns(name, [str(c) for c in X.columns])
        estimator = spec.training.estimator(name, market.sectors)
        result = cpcv_evaluate(estimator, X.loc[rows, features], market.labels.loc[rows], cv)
        path_returns: dict[int, pd.Series] = {}
        for path in result.predictions.columns:
            wide = result.predictions[path].dropna().unstack("ticker").sort_index()
            wide.index = pd.DatetimeIndex(wide.index)
            # re-formed on the books' cadence (held and drifting in between), so the paths pay
            # the same order of costs as the walk-forward books they are compared with
            targets = top_quantile_weights(wide, spec.signal_quantile).iloc[
                :: spec.reoptimise_every
            ]
            path_returns[int(path)] = market.simulate(targets, spec)["net_return"]
        out[name] = sharpe_distribution(path_returns)
    return out


def rule_days(status: pl.DataFrame) -> pl.DataFrame:
    """Per strategy: the decision days it was past its maximum drawdown (only risk-reducing
    trades, ``drawdown_rule_days``) and the days the stop-loss left names out of its book
    (``stop_loss_days``)."""
    schema = pl.Schema(
        {"strategy": pl.String(), "drawdown_rule_days": pl.Int64(), "stop_loss_days": pl.Int64()}
    )
    if status.is_empty():
        return pl.DataFrame(schema=schema)
    named = status.with_columns(
        pl.when(pl.col("model") == "-")
        .then(pl.col("method"))
        .otherwise(pl.format("{}/{}", "model", "method"))
        .alias("strategy")
    )
    return (
        named.group_by("strategy")
        .agg(
            pl.col("date").filter(pl.col("risk_reducing")).n_unique().alias("drawdown_rule_days"),
            pl.col("date").filter(pl.col("stopped") > 0).n_unique().alias("stop_loss_days"),
        )
        .cast(schema)
        .sort("strategy")
    )


def strategy_tables(result: BacktestResult) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(metrics per strategy with its model and method, daily returns per strategy): the
    ``backtest_metrics`` and ``backtest_returns`` tables' frames. The DSR's trials are all the
    strategies of the result, benchmarks included."""
    net = {name: book["net_return"] for name, book in result.books.items()}
    turnover = {name: book["turnover"] for name, book in result.books.items()}
    ic = {
        name: result.ic[model]
        for name, model in result.strategy_models.items()
        if model in result.ic
    }
    metrics = backtest_metrics(net, turnover, ic)

    def split(name: str) -> tuple[str, str]:
        if name in (INDEX, EQUAL_WEIGHT):
            return "benchmark", name.split("/")[1]
        model, _, method = name.rpartition("/")
        return model or "-", method

    parts = [split(name) for name in metrics["strategy"]]
    first = min(book.index.min() for book in result.books.values()).date()
    last = max(book.index.max() for book in result.books.values()).date()
    fired = rule_days(result.status)
    metrics = (
        metrics.with_columns(
            pl.Series("model", [p[0] for p in parts]),
            pl.Series("method", [p[1] for p in parts]),
            pl.lit(first).alias("first_date"),
            pl.lit(last).alias("last_date"),
            pl.col("strategy").replace_strict(result.cadence, default=None).alias("cadence"),
        )
        .join(fired, on="strategy", how="left")
        .with_columns(pl.col("drawdown_rule_days", "stop_loss_days").fill_null(0))
    )
    returns = pl.concat(
        [
            pl.from_pandas(
                book[["gross_return", "cost", "net_return", "turnover", "gross_exposure"]]
                .rename_axis("date")
                .reset_index()
            ).with_columns(pl.col("date").cast(pl.Date), pl.lit(name).alias("strategy"))
            for name, book in result.books.items()
        ],
        how="diagonal",
    )
    return metrics, returns
