"""The backtest's assets: one walk-forward backtest of every model x method over the stored
history (see :mod:`quant_assets.research.walk_forward`) materializes four assets at once:

* ``backtest_metrics``: the metrics of every strategy (the table of the same name);
* ``backtest_returns``: every strategy's daily returns (the table of the same name);
* ``backtest_cpcv``: each model's CPCV path Sharpe ratios (the table of the same name);
* ``backtest``: the run itself: its equity and drawdown plots (PNGs under
  ``<data dir>/reports``, inline in the metadata), the best strategy, the stage timings and the
  MLflow run holding the parameters, the metrics and the plots.
"""

import dataclasses
import json
import typing
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import mlflow
import pandas as pd
import polars as pl
import pydantic
from pydantic import Field

from quant_assets import charts
from quant_assets.metadata import date_range_metadata, preview
from quant_assets.models.training import ENSEMBLE, TrainingSpec
from quant_assets.queries import sectors_and_benchmark
from quant_assets.research.backtest import summarise_sharpe_distribution
from quant_assets.research.performance import costs_paid, yearly_returns
from quant_assets.research.walk_forward import (
    EQUAL_WEIGHT,
    INDEX,
    BacktestResult,
    BacktestSpec,
    Execution,
    Market,
    run_backtest,
    strategy_tables,
)
from quant_core.features import ALPHA158_NAMES
from quant_core.metrics import drawdown
from resources.portfolio_policy import PortfolioPolicy
from resources.settings import data_dir
from resources.storage import Store

# the metrics shown in metadata and logged to MLflow per strategy
SHOWN_METRICS = (
    "cagr",
    "volatility",
    "sharpe",
    "max_drawdown",
    "mean_turnover",
    "psr",
    "dsr",
    "mean_ic",
)
LOGGED_METRICS = ("sharpe", "cagr", "max_drawdown", "psr", "dsr")
# the best strategies drawn in the plots, besides the benchmarks
PLOTTED = 5


def _spec_sizes() -> dict[str, Any]:
    """BacktestSpec's numeric fields as pydantic field definitions: (type, the spec's default)."""
    hints = typing.get_type_hints(BacktestSpec)
    return {
        f.name: (hints[f.name], f.default)
        for f in dataclasses.fields(BacktestSpec)
        if hints[f.name] in (int, float)
    }


# BacktestSpec's sizes (train_sessions, retrain_every, ..., cpcv_test_folds) as config fields
# with its names and defaults: they are declared once, in the spec
_BacktestSizes = pydantic.create_model("BacktestSizes", __base__=dg.Config, **_spec_sizes())


class BacktestConfig(_BacktestSizes):  # type: ignore[misc, valid-type]
    """Backtest parameters: every numeric field of
    :class:`~quant_assets.research.walk_forward.BacktestSpec` (sizes in sessions, same names
    and defaults) plus the ones below. ``start`` and ``end`` bound the stored history used (ISO
    dates, default all of it); ``methods`` overrides the policy's methods (empty = the
    policy's); the ``*_n_estimators`` / ``*_iterations`` / ``*_max_epochs`` sizes go to the
    models (None keeps the estimator's default), ``random_state`` seeds them all.
    ``scores_path``: a parquet of the walk-forward's out-of-sample scores computed with this
    very config (``date``, ``ticker``, one column per model and ``ensemble``:
    :func:`~quant_assets.research.walk_forward.model_scores`), backtested as given instead of
    retrained; ``quant-research`` passes the scores whose IC it has just measured."""

    start: str | None = None
    end: str | None = None
    models: list[str] = Field(default_factory=lambda: list(BacktestSpec.models))
    methods: list[str] = Field(default_factory=list)
    lightgbm_n_estimators: int | None = None
    catboost_iterations: int | None = None
    tft_max_epochs: int | None = None
    random_state: int = 0
    scores_path: str | None = None

    def spec(self) -> BacktestSpec:
        def given(**params: int | None) -> dict[str, int]:
            return {k: v for k, v in params.items() if v is not None}

        seed = self.random_state
        return BacktestSpec(
            models=tuple(self.models),
            training=TrainingSpec(
                models=tuple(self.models),
                lightgbm_params=given(n_estimators=self.lightgbm_n_estimators, random_state=seed),
                catboost_params=given(iterations=self.catboost_iterations, random_state=seed),
                tft_params=given(max_epochs=self.tft_max_epochs, random_state=seed),
            ),
            **{name: getattr(self, name) for name in _BacktestSizes.model_fields},
        )

    def policy(self, policy: PortfolioPolicy) -> PortfolioPolicy:
        """The portfolio policy with ``methods`` when given (its live method stays live when
        among them, else the first one is), checked."""
        if self.methods:
            live = policy.live_method if policy.live_method in self.methods else self.methods[0]
            policy = PortfolioPolicy(
                **{**policy.model_dump(), "methods": self.methods, "live_method": live}
            )
        policy.check_consistent()
        return policy


def stored_history(store: Store, config: BacktestConfig) -> tuple[pd.DataFrame, Market]:
    """Alpha158 on a (date, ticker) index and the market (labels, bars, sectors, benchmark) of
    the stored history in the config's range."""
    start = date.fromisoformat(config.start) if config.start else None
    end = date.fromisoformat(config.end) if config.end else None
    features = store.read("alpha158", start, end)
    if features.is_empty():
        raise dg.Failure("no alpha158 stored in the backtest range: materialize it first")
    realised = store.read("labels", start, end, columns=["ticker", "date", "label"])
    if realised.is_empty():
        first, last = (str(features["date"].min()), str(features["date"].max()))
        raise dg.Failure(
            f"no labels stored for {first}..{last} (the backtest range's alpha158): "
            "materialize labels first"
        )
    panel = (
        features.join(realised, on=["ticker", "date"], how="left")
        .to_pandas()
        .set_index(["date", "ticker"])
        .sort_index()
    )
    bars = store.read(
        "raw_bars",
        start,
        end,
        columns=[
            "ticker",
            "date",
            "adj_open",
            "adj_close",
            "adj_high",
            "adj_low",
            "close",
            "volume",
        ],
    )
    sectors, benchmark = sectors_and_benchmark(store)
    return panel[list(ALPHA158_NAMES)], Market(panel["label"], bars, sectors, benchmark)


def _given_scores(config: BacktestConfig, index: pd.Index) -> pd.DataFrame | None:
    """The config's ``scores_path`` on ``index`` (the backtest's panel), checked; None without
    one."""
    if not config.scores_path:
        return None
    frame = pl.read_parquet(config.scores_path).to_pandas().set_index(["date", "ticker"])
    expected = [*config.models, ENSEMBLE]
    missing = [name for name in expected if name not in frame.columns]
    if missing:
        raise dg.Failure(f"{config.scores_path} holds no scores of {missing}")
    return frame[expected].reindex(index)


def _check_long_enough(X: pd.DataFrame, spec: BacktestSpec) -> None:
    sessions = X.index.get_level_values("date").nunique()
    needed = spec.train_sessions + spec.retrain_every + 10
    if sessions < needed:
        raise dg.Failure(
            f"{sessions} stored sessions: a backtest with train_sessions={spec.train_sessions} "
            f"needs at least {needed}"
        )


def _cpcv_table(result: BacktestResult) -> pl.DataFrame:
    return pl.concat(
        [
            pl.from_pandas(frame).with_columns(pl.lit(model).alias("model"))
            for model, frame in result.cpcv_sharpes.items()
        ]
    )


def _plots(returns: pl.DataFrame, best: list[str]) -> dict[str, bytes]:
    """PNG equity curves and drawdowns of the ``best`` strategies (benchmarks included)."""
    wide = (
        returns.filter(pl.col("strategy").is_in(best))
        .pivot(on="strategy", index="date", values="net_return")
        .sort("date")
        .to_pandas()
        .set_index("date")
        .fillna(0.0)
    )
    equity = (1 + wide).cumprod()
    drawdowns = pd.DataFrame({c: -drawdown(wide[c]) for c in wide.columns}, index=wide.index)
    images = {}
    for name, frame, title in (
        ("equity", equity, "Equity (net of costs)"),
        ("drawdown", drawdowns, "Drawdown"),
    ):
        figure, axis = charts.figure(10, 4.5)
        for column in frame.columns:
            axis.plot(frame.index, frame[column], linewidth=1.0, label=str(column))
        charts.title(axis, title)
        charts.date_axis(axis)
        axis.legend(fontsize=charts.TICK_SIZE, loc="best")
        images[name] = charts.png(figure)
    return images


def _log_run(
    tracker: Any,
    config: BacktestConfig,
    policy: PortfolioPolicy,
    metrics: pl.DataFrame,
    plots: list[Path],
) -> Any:
    """Log the parameters, each strategy's headline metrics and the plots to the active MLflow
    run; returns the run."""
    try:
        tracker.log_params(
            {
                **{k: v for k, v in config.model_dump().items() if k not in ("models", "methods")},
                "models": ",".join(config.models),
                "methods": ",".join(policy.methods),
            }
        )
        for row in metrics.iter_rows(named=True):
            prefix = row["strategy"].replace("/", ".")
            tracker.log_metrics(
                {f"{prefix}.{k}": float(row[k]) for k in LOGGED_METRICS if row[k] is not None}
            )
        for path in plots:
            tracker.log_artifact(str(path))
        return tracker.active_run()
    except Exception:
        tracker.cleanup_on_error()
        raise


def _run_url(run: Any) -> dg.MetadataValue:
    return dg.MetadataValue.url(
        f"{mlflow.get_tracking_uri()}#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
    )


def _row_count(frame: pl.DataFrame) -> dict[str, dg.MetadataValue]:
    return {"dagster/row_count": dg.MetadataValue.int(frame.height)}


# the stored history it reads (keys: raw_bars is one of the ingest run's several assets)
_UPSTREAM = ["alpha158", "labels", "raw_bars", "universe"]
BACKTEST_SPECS = [
    dg.AssetSpec(
        "backtest",
        deps=_UPSTREAM,
        kinds={"mlflow"},
        description="The last walk-forward backtest: equity and drawdown plots, the best "
        "strategy, stage timings and its MLflow run.",
    ),
    dg.AssetSpec(
        "backtest_metrics",
        deps=_UPSTREAM,
        kinds={"polars"},
        description="Metrics of every strategy of the last backtest (CAGR, vol, Sharpe, "
        "Sortino, drawdown, Calmar, turnover, hit rate, IC, PSR, DSR).",
    ),
    dg.AssetSpec(
        "backtest_returns",
        deps=_UPSTREAM,
        kinds={"polars"},
        description="Daily gross and net returns, costs, turnover and exposure of every "
        "strategy of the last backtest.",
    ),
    dg.AssetSpec(
        "backtest_cpcv",
        deps=_UPSTREAM,
        kinds={"polars"},
        description="Sharpe ratio of each model's top-quantile portfolio on every CPCV path of "
        "the last backtest.",
    ),
]


@dg.multi_asset(
    name="backtest",
    group_name="portfolio",
    specs=BACKTEST_SPECS,
    required_resource_keys={"store", "mlflow", "portfolio_policy", "broker", "execution_policy"},
)
def backtest(
    context: dg.AssetExecutionContext, config: BacktestConfig
) -> Iterator[dg.MaterializeResult]:
    """Walk-forward backtest over the stored history: models retrained every
    ``retrain_every`` sessions; the live method's book replayed every session exactly as the
    live assets decide and trade it (whole lots, pre-trade checks, the simulated broker's fills
    at the next open: ``research/replay.py``); the other books re-optimised every
    ``reoptimise_every`` sessions and rebalanced daily, costs plus Corwin-Schultz half-spreads, the index and equal
    weight as benchmarks; CAGR, vol, Sharpe, Sortino, drawdown, Calmar, turnover, hit rate,
    IC, PSR and DSR (trials = every strategy), CPCV Sharpe distributions. Results replace the
    ``backtest_*`` tables and go to MLflow with the plots."""
    store: Store = context.resources.store
    policy = config.policy(context.resources.portfolio_policy)
    X, market = stored_history(store, config)
    spec = config.spec()
    _check_long_enough(X, spec)
    scores = _given_scores(config, X.index)
    execution = Execution(context.resources.execution_policy, context.resources.broker.fill_model())
    result = run_backtest(X, market, policy, spec, context.log.info, scores, execution)
    metrics, returns = strategy_tables(result)
    cpcv = _cpcv_table(result)
    store.replace_table("backtest_metrics", metrics)
    store.replace_table("backtest_returns", returns)
    store.replace_table("backtest_cpcv", cpcv)

    ranked = metrics.filter(pl.col("model") != "benchmark").sort("sharpe", descending=True)
    plots = _plots(returns, [*ranked["strategy"].head(PLOTTED).to_list(), INDEX, EQUAL_WEIGHT])
    reports = data_dir() / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    paths = {name: reports / f"backtest_{name}.png" for name in plots}
    for name, image in plots.items():
        paths[name].write_bytes(image)
    yearly_csv = reports / "backtest_yearly_returns.csv"
    yearly_returns(returns).join(costs_paid(returns), on="strategy").write_csv(yearly_csv)
    rules = reports / "backtest_rules.json"
    rule_days = _rule_days(metrics)
    rules.write_text(
        json.dumps(
            {
                "cadence": result.cadence,
                "drawdown_rule_days": rule_days["drawdown_rule_days"].value,
                "stop_loss_days": rule_days["stop_loss_days"],
                "seconds": result.seconds,
            },
            indent=2,
        )
    )
    artifacts = [*paths.values(), yearly_csv, rules]
    run = _log_run(context.resources.mlflow, config, policy, metrics, artifacts)
    top = ranked.row(0, named=True) if ranked.height else {}
    yield dg.MaterializeResult(
        asset_key="backtest",
        metadata={
            "strategies": metrics.height,
            **date_range_metadata(returns),
            "rebalance_days": len(result.rebalance_days),
            "cadence": dg.MetadataValue.json(result.cadence),
            **rule_days,
            "best_strategy": str(top.get("strategy", "n/a")),
            "best_sharpe": float(top.get("sharpe") or float("nan")),
            "best_dsr": float(top.get("dsr") or float("nan")),
            "seconds": dg.MetadataValue.json({k: round(v, 1) for k, v in result.seconds.items()}),
            "equity_curve": charts.png_metadata(plots["equity"], "equity"),
            "drawdown": charts.png_metadata(plots["drawdown"], "drawdown"),
            "equity_png": dg.MetadataValue.path(str(paths["equity"])),
            "mlflow_run": _run_url(run),
        },
    )
    yield _metrics_result(metrics)
    yield _returns_result(returns)
    yield _cpcv_result(cpcv, result)


def _rule_days(metrics: pl.DataFrame) -> dict[str, Any]:
    """How often the live rules fired in the simulated strategies (``backtest_metrics``'
    columns): the days each was past its maximum drawdown (only risk-reducing trades), and the
    days the stop-loss left names out of the books."""
    fired = metrics.filter(pl.col("drawdown_rule_days") > 0).sort("strategy")
    return {
        "drawdown_rule_days": dg.MetadataValue.json(
            dict(fired.select("strategy", "drawdown_rule_days").iter_rows())
        ),
        "stop_loss_days": int(metrics.select(pl.col("stop_loss_days").max()).item() or 0),
    }


def _metrics_result(metrics: pl.DataFrame) -> dg.MaterializeResult:
    return dg.MaterializeResult(
        asset_key="backtest_metrics",
        metadata={
            **_row_count(metrics),
            "n_trials": int(metrics.select(pl.col("n_trials").max()).item() or 0),
            "metrics": preview(
                metrics.sort("sharpe", descending=True).select("strategy", *SHOWN_METRICS),
                rows=metrics.height,
            ),
        },
    )


def _returns_result(returns: pl.DataFrame) -> dg.MaterializeResult:
    """The daily returns' row counts, and what a portfolio manager reads from them: each
    strategy's calendar-year net returns and the costs it paid."""
    by_year = yearly_returns(returns).join(costs_paid(returns), on="strategy")
    return dg.MaterializeResult(
        asset_key="backtest_returns",
        metadata={
            **_row_count(returns),
            **date_range_metadata(returns),
            "strategies": returns["strategy"].n_unique(),
            "yearly_net_returns_and_costs": preview(by_year, rows=by_year.height),
        },
    )


def _cpcv_result(cpcv: pl.DataFrame, result: BacktestResult) -> dg.MaterializeResult:
    distributions = {
        model: summarise_sharpe_distribution(frame) for model, frame in result.cpcv_sharpes.items()
    }
    return dg.MaterializeResult(
        asset_key="backtest_cpcv",
        metadata={
            **_row_count(cpcv),
            "cpcv_sharpe": dg.MetadataValue.json(
                {m: {k: round(v, 4) for k, v in d.items()} for m, d in distributions.items()}
            ),
        },
    )
