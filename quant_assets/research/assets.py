"""The ``backtest`` asset: the walk-forward backtest of every model x method over the stored
history (see :mod:`quant_assets.research.walk_forward`), to the store, MLflow and plots."""

import base64
import io
from datetime import date

import dagster as dg
import mlflow
import pandas as pd
import polars as pl
from matplotlib.figure import Figure
from pydantic import Field

from quant_assets.features.assets import alpha158, labels
from quant_assets.ingest.assets import raw_bars, universe
from quant_assets.metadata import preview
from quant_assets.models.assets import sector_map
from quant_assets.models.training import TrainingSpec
from quant_assets.queries import benchmark_ticker
from quant_assets.research.backtest import summarise_sharpe_distribution
from quant_assets.research.walk_forward import (
    EQUAL_WEIGHT,
    INDEX,
    BacktestSpec,
    run_backtest,
    strategy_tables,
)
from quant_core.features import ALPHA158_NAMES
from resources.portfolio_policy import PortfolioPolicy
from resources.settings import data_dir
from resources.storage import Store


class BacktestConfig(dg.Config):
    """Backtest parameters (sizes in sessions; None keeps the estimator's default). ``start``
    and ``end`` bound the stored history used (ISO dates, default all of it); ``methods``
    overrides the policy's methods (empty = the policy's)."""

    start: str | None = None
    end: str | None = None
    models: list[str] = Field(default_factory=lambda: ["lightgbm", "catboost"])
    methods: list[str] = Field(default_factory=list)
    train_sessions: int = 504
    retrain_every: int = 20
    reoptimise_every: int = 20
    lookback_sessions: int = 252
    cost_bps: float = 5.0
    calibration_sessions: int = 252
    min_calibration_dates: int = 20
    signal_quantile: float = 0.2
    cpcv_folds: int = 6
    cpcv_test_folds: int = 2
    lightgbm_n_estimators: int | None = None
    catboost_iterations: int | None = None
    tft_max_epochs: int | None = None
    random_state: int = 0

    def spec(self) -> BacktestSpec:
        def given(**params: int | None) -> dict[str, int]:
            return {k: v for k, v in params.items() if v is not None}

        seed = self.random_state
        return BacktestSpec(
            models=tuple(self.models),
            train_sessions=self.train_sessions,
            retrain_every=self.retrain_every,
            reoptimise_every=self.reoptimise_every,
            lookback_sessions=self.lookback_sessions,
            cost_bps=self.cost_bps,
            calibration_sessions=self.calibration_sessions,
            min_calibration_dates=self.min_calibration_dates,
            signal_quantile=self.signal_quantile,
            cpcv_folds=self.cpcv_folds,
            cpcv_test_folds=self.cpcv_test_folds,
            training=TrainingSpec(
                models=tuple(self.models),
                lightgbm_params=given(n_estimators=self.lightgbm_n_estimators, random_state=seed),
                catboost_params=given(iterations=self.catboost_iterations, random_state=seed),
                tft_params=given(max_epochs=self.tft_max_epochs, random_state=seed),
            ),
        )


def _history(
    store: Store, start: date | None, end: date | None
) -> tuple[pd.DataFrame, pd.Series, pl.DataFrame]:
    features = store.read("alpha158", start, end)
    if features.is_empty():
        raise dg.Failure("no alpha158 stored in the backtest range: materialize it first")
    realised = store.read("labels", start, end, columns=["ticker", "date", "label"])
    panel = (
        features.join(realised, on=["ticker", "date"], how="left")
        .to_pandas()
        .set_index(["date", "ticker"])
        .sort_index()
    )
    bars = store.read(
        "raw_bars", start, end, columns=["ticker", "date", "adj_close", "adj_high", "adj_low"]
    )
    return panel[list(ALPHA158_NAMES)], panel["label"], bars


def _plot(returns: pl.DataFrame, best: list[str]) -> tuple[bytes, bytes]:
    """PNG equity curves and drawdowns of ``best`` strategies and the benchmarks."""
    wide = (
        returns.filter(pl.col("strategy").is_in(best))
        .pivot(on="strategy", index="date", values="net_return")
        .sort("date")
        .to_pandas()
        .set_index("date")
        .fillna(0.0)
    )
    equity = (1 + wide).cumprod()
    drawdown = equity / equity.cummax() - 1
    images = []
    for frame, title in ((equity, "Equity (net of costs)"), (drawdown, "Drawdown")):
        # the object API, not pyplot: no global figure state, no display backend needed
        figure = Figure(figsize=(10, 4.5))
        axis = figure.subplots()
        for column in frame.columns:
            axis.plot(frame.index, frame[column], linewidth=1.0, label=str(column))
        axis.set_title(title)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, loc="best")
        buffer = io.BytesIO()
        figure.tight_layout()
        figure.savefig(buffer, format="png", dpi=90)
        images.append(buffer.getvalue())
    return images[0], images[1]


def _image_md(png: bytes, alt: str) -> dg.MetadataValue:
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")


@dg.asset(
    group_name="portfolio",
    kinds={"polars", "mlflow"},
    deps=[alpha158, labels, raw_bars, universe],
    required_resource_keys={"store", "mlflow", "portfolio_policy"},
)
def backtest(context: dg.AssetExecutionContext, config: BacktestConfig) -> dg.MaterializeResult:
    """Walk-forward backtest over the stored history: models retrained every
    ``retrain_every`` sessions, books of every method re-optimised every ``reoptimise_every``
    sessions and rebalanced daily, costs plus Corwin-Schultz half-spreads, the index and equal
    weight as benchmarks; CAGR, vol, Sharpe, Sortino, drawdown, Calmar, turnover, hit rate,
    IC, PSR and DSR (trials = every strategy), CPCV Sharpe distributions. Results replace the
    ``backtest_*`` tables and go to MLflow with the plots."""
    store: Store = context.resources.store
    policy: PortfolioPolicy = context.resources.portfolio_policy
    tracker = context.resources.mlflow
    if config.methods:
        policy = PortfolioPolicy(
            **{**policy.model_dump(), "methods": config.methods, "live_method": config.methods[0]}
        )
    policy.check_consistent()
    start = date.fromisoformat(config.start) if config.start else None
    end = date.fromisoformat(config.end) if config.end else None
    X, y, bars = _history(store, start, end)
    sessions = X.index.get_level_values("date").nunique()
    spec = config.spec()
    if sessions < spec.train_sessions + spec.retrain_every + 10:
        raise dg.Failure(
            f"{sessions} stored sessions: a backtest with train_sessions={spec.train_sessions} "
            f"needs at least {spec.train_sessions + spec.retrain_every + 10}"
        )
    result = run_backtest(
        X, y, bars, sector_map(store), benchmark_ticker(store), policy, spec, context.log.info
    )
    metrics, returns = strategy_tables(result)
    cpcv = pl.concat(
        [
            pl.from_pandas(frame).with_columns(pl.lit(model).alias("model"))
            for model, frame in result.cpcv_sharpes.items()
        ]
    )
    store.replace_table("backtest_metrics", metrics)
    store.replace_table("backtest_returns", returns)
    store.replace_table("backtest_cpcv", cpcv)

    ranked = metrics.filter(pl.col("model") != "benchmark").sort("sharpe", descending=True)
    best = [*ranked["strategy"].head(5).to_list(), INDEX, EQUAL_WEIGHT]
    equity_png, drawdown_png = _plot(returns, best)
    reports = data_dir() / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "backtest_equity.png").write_bytes(equity_png)
    (reports / "backtest_drawdown.png").write_bytes(drawdown_png)
    distributions = {
        model: summarise_sharpe_distribution(frame) for model, frame in result.cpcv_sharpes.items()
    }
    try:
        tracker.log_params(
            {
                **{k: v for k, v in config.model_dump().items() if k not in ("models", "methods")},
                "models": ",".join(spec.models),
                "methods": ",".join(policy.methods),
            }
        )
        for row in metrics.iter_rows(named=True):
            prefix = row["strategy"].replace("/", ".")
            tracker.log_metrics(
                {
                    f"{prefix}.{k}": float(row[k])
                    for k in ("sharpe", "cagr", "max_drawdown", "psr", "dsr")
                    if row[k] is not None
                }
            )
        tracker.log_artifact(str(reports / "backtest_equity.png"))
        tracker.log_artifact(str(reports / "backtest_drawdown.png"))
        run = tracker.active_run()
    except Exception:
        tracker.cleanup_on_error()
        raise
    top = ranked.row(0, named=True) if ranked.height else {}
    return dg.MaterializeResult(
        metadata={
            "strategies": metrics.height,
            "first_date": str(metrics["first_date"][0]),
            "last_date": str(metrics["last_date"][0]),
            "rebalance_days": len(result.rebalance_days),
            "best_strategy": str(top.get("strategy", "n/a")),
            "best_sharpe": float(top.get("sharpe") or float("nan")),
            "best_dsr": float(top.get("dsr") or float("nan")),
            "metrics": preview(
                metrics.sort("sharpe", descending=True).select(
                    "strategy",
                    "cagr",
                    "volatility",
                    "sharpe",
                    "max_drawdown",
                    "mean_turnover",
                    "psr",
                    "dsr",
                    "mean_ic",
                ),
                rows=metrics.height,
            ),
            "cpcv_sharpe": dg.MetadataValue.json(
                {m: {k: round(v, 4) for k, v in d.items()} for m, d in distributions.items()}
            ),
            "seconds": dg.MetadataValue.json({k: round(v, 1) for k, v in result.seconds.items()}),
            "equity_curve": _image_md(equity_png, "equity"),
            "drawdown": _image_md(drawdown_png, "drawdown"),
            "equity_png": dg.MetadataValue.path(str(reports / "backtest_equity.png")),
            "mlflow_run": dg.MetadataValue.url(
                f"{mlflow.get_tracking_uri()}#/experiments/{run.info.experiment_id}"
                f"/runs/{run.info.run_id}"
            ),
        }
    )
