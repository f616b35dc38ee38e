"""Explicit schemas of every stored table.

A table is declared once here; both backends create it from this declaration, and every write is
checked against it, so a column that changes type or goes missing fails loudly at the write.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from quant_core.features import ALPHA158_NAMES, FACTOR_NAMES


@dataclass(frozen=True)
class Column:
    name: str
    dtype: pl.DataType
    nullable: bool = False


@dataclass(frozen=True)
class TableSchema:
    """A stored table. ``time_column`` is the DATE column partitions replace windows of
    (None for tables that are replaced whole); ``key`` identifies a row (unique per write)."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    time_column: str | None = "date"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def polars_schema(self) -> pl.Schema:
        return pl.Schema({c.name: c.dtype for c in self.columns})


_PRICE = pl.Float64()

BAR_COLUMNS: tuple[Column, ...] = (
    Column("ticker", pl.String()),
    Column("date", pl.Date()),
    Column("open", _PRICE),
    Column("high", _PRICE),
    Column("low", _PRICE),
    Column("close", _PRICE),
    Column("volume", pl.Float64()),
    Column("adj_open", _PRICE),
    Column("adj_high", _PRICE),
    Column("adj_low", _PRICE),
    Column("adj_close", _PRICE),
    Column("vwap", _PRICE, nullable=True),
)

UNIVERSE = TableSchema(
    name="universe",
    columns=(
        Column("ticker", pl.String()),
        Column("name", pl.String(), nullable=True),
        Column("sector", pl.String()),
        Column("is_benchmark", pl.Boolean()),
    ),
    key=("ticker",),
    time_column=None,
)

RAW_BARS = TableSchema(name="raw_bars", columns=BAR_COLUMNS, key=("ticker", "date"))

RAW_BARS_QUARANTINE = TableSchema(
    name="raw_bars_quarantine",
    columns=(
        *(Column(c.name, c.dtype, nullable=c.name not in ("ticker", "date")) for c in BAR_COLUMNS),
        Column("reason", pl.String()),
    ),
    # one row can break several rules; each broken rule is its own quarantine row
    key=("ticker", "date", "reason"),
)

MACRO_SERIES = TableSchema(
    name="macro_series",
    columns=(
        Column("series_id", pl.String()),
        Column("date", pl.Date()),
        Column("value", pl.Float64()),
    ),
    key=("series_id", "date"),
)

# the research layer: features are float32 (see ARCHITECTURE.md), returns and scores float64
ALPHA158 = TableSchema(
    name="alpha158",
    columns=(
        Column("ticker", pl.String()),
        Column("date", pl.Date()),
        *(Column(name, pl.Float32(), nullable=True) for name in ALPHA158_NAMES),
    ),
    key=("ticker", "date"),
)

# the documented US equity factors and their sector-relative versions (features/factors.py)
FACTORS = TableSchema(
    name="factors",
    columns=(
        Column("ticker", pl.String()),
        Column("date", pl.Date()),
        *(Column(name, pl.Float32(), nullable=True) for name in FACTOR_NAMES),
    ),
    key=("ticker", "date"),
)

LABELS = TableSchema(
    name="labels",
    columns=(
        Column("ticker", pl.String()),
        Column("date", pl.Date()),
        # the session the 5-day holding period ends on: the label is known from then on
        Column("horizon_date", pl.Date()),
        Column("forward_return", pl.Float64()),
        Column("benchmark_return", pl.Float64()),
        Column("label", pl.Float64()),
    ),
    key=("ticker", "date"),
)

# the (ticker, session) pairs of a labels range that got no label, and why: a missing
# benchmark bar on the session or its horizon (one row, ticker = the benchmark, and no ticker of
# that session is labelled) or a ticker's own missing bar on one of the two
LABEL_GAPS = TableSchema(
    name="label_gaps",
    columns=(
        Column("ticker", pl.String()),
        Column("date", pl.Date()),
        Column("horizon_date", pl.Date()),
        Column("reason", pl.String()),
    ),
    key=("ticker", "date"),
)

# one row per (training week, model, CPCV path): the validation distribution of every model
MODEL_VALIDATION = TableSchema(
    name="model_validation",
    columns=(
        Column("week", pl.Date()),
        Column("model", pl.String()),
        Column("path", pl.Int32()),
        Column("ic", pl.Float64(), nullable=True),
        Column("rank_ic", pl.Float64(), nullable=True),
        Column("icir", pl.Float64(), nullable=True),
        Column("rank_icir", pl.Float64(), nullable=True),
    ),
    key=("week", "model", "path"),
    time_column="week",
)

# per-feature mean |SHAP| of each boosted model, per training week (explanation drift reads it)
SHAP_SUMMARY = TableSchema(
    name="shap_summary",
    columns=(
        Column("week", pl.Date()),
        Column("model", pl.String()),
        Column("feature", pl.String()),
        Column("mean_abs_shap", pl.Float64()),
        Column("importance_rank", pl.Int32()),
    ),
    key=("week", "model", "feature"),
    time_column="week",
)

# what each weekly training produced and which registered version is champion after its gate
ALPHA_MODELS = TableSchema(
    name="alpha_models",
    columns=(
        Column("week", pl.Date()),
        Column("registered_model", pl.String()),
        Column("version", pl.String()),
        Column("alias", pl.String()),
        Column("champion_version", pl.String()),
        Column("champion_week", pl.Date()),
        Column("champion_training_end", pl.Date()),
        Column("training_start", pl.Date()),
        Column("training_end", pl.Date()),
        Column("mlflow_run_id", pl.String()),
        Column("gate_metric", pl.Float64(), nullable=True),
        Column("champion_gate_metric", pl.Float64(), nullable=True),
        Column("ensemble_weights", pl.String()),
    ),
    key=("week",),
    time_column="week",
)

# every configuration one model selection evaluated before its cutoff (models/selection.py):
# the chosen row (an ensemble) carries the validated ensemble weights; the weekly alpha_model
# trains the chosen row of the latest cutoff on or before its week
MODEL_SELECTION = TableSchema(
    name="model_selection",
    columns=(
        Column("cutoff", pl.Date()),
        Column("stage", pl.String()),
        Column("model", pl.String()),
        Column("choice", pl.String()),
        Column("rank_ic", pl.Float64(), nullable=True),
        Column("rank_icir", pl.Float64(), nullable=True),
        Column("spread_net", pl.Float64(), nullable=True),
        Column("turnover", pl.Float64(), nullable=True),
        Column("seconds", pl.Float64()),
        Column("chosen", pl.Boolean()),
        Column("weights", pl.String(), nullable=True),
    ),
    key=("cutoff", "stage", "model", "choice"),
    time_column="cutoff",
)

# each week's out-of-sample ensemble score (mean over the CPCV paths) with the realised label, on
# the window's last labelled sessions: the score -> return calibration history of ml_views
VALIDATION_SCORES = TableSchema(
    name="validation_scores",
    columns=(
        Column("week", pl.Date()),
        Column("ticker", pl.String()),
        Column("date", pl.Date()),
        Column("score_ensemble", pl.Float64(), nullable=True),
        Column("label", pl.Float64()),
    ),
    key=("week", "ticker", "date"),
    time_column="week",
)

# one absolute Black-Litterman view per (ticker, date), calibrated on the champion's own
# out-of-sample history; ``prior`` names the prior the values are meant for
ML_VIEWS = TableSchema(
    name="ml_views",
    columns=(
        Column("ticker", pl.String()),
        Column("date", pl.Date()),
        Column("score_ensemble", pl.Float64()),
        Column("expected_return_horizon", pl.Float64()),
        Column("expected_return_daily", pl.Float64()),
        Column("confidence", pl.Float64()),
        Column("slope", pl.Float64()),
        Column("calibration_dates", pl.Int32()),
        Column("model_week", pl.Date()),
        Column("prior", pl.String()),
    ),
    key=("ticker", "date"),
)

PREDICTIONS = TableSchema(
    name="predictions",
    columns=(
        Column("ticker", pl.String()),
        Column("date", pl.Date()),
        Column("score_lightgbm", pl.Float64(), nullable=True),
        Column("score_catboost", pl.Float64(), nullable=True),
        Column("score_tft", pl.Float64(), nullable=True),
        Column("score_ensemble", pl.Float64()),
        Column("model_version", pl.String()),
        Column("model_week", pl.Date()),
        Column("training_end", pl.Date()),
    ),
    key=("ticker", "date"),
)

# the challenger's scores of each session it shadows (``predictions``' columns): never traded
SHADOW_PREDICTIONS = TableSchema(
    name="shadow_predictions",
    columns=PREDICTIONS.columns,
    key=("ticker", "date"),
)

# the challenger's book of each session it shadows (the live method through the live decision
# code, on its own views and its own previous book): never sent to a broker
SHADOW_WEIGHTS = TableSchema(
    name="shadow_weights",
    columns=(
        Column("date", pl.Date()),
        Column("ticker", pl.String()),
        Column("weight", pl.Float64()),
        Column("model_version", pl.String()),
    ),
    key=("date", "ticker"),
)

# who scores each session (models/deployment.py): the champion, the challenger in shadow or
# canary, the canary's share of the live book and the shadow record's test
MODEL_DEPLOYMENTS = TableSchema(
    name="model_deployments",
    columns=(
        Column("date", pl.Date()),
        Column("champion_version", pl.String()),
        Column("challenger_version", pl.String(), nullable=True),
        Column("stage", pl.String()),
        Column("canary_step", pl.Int32()),
        Column("canary_fraction", pl.Float64()),
        Column("stage_start", pl.Date(), nullable=True),
        Column("shadow_start", pl.Date(), nullable=True),
        Column("canary_start", pl.Date(), nullable=True),
        Column("sessions_in_stage", pl.Int32()),
        Column("last_week", pl.Date(), nullable=True),
        Column("test_sessions", pl.Int32(), nullable=True),
        Column("ic_difference", pl.Float64(), nullable=True),
        Column("ic_difference_t", pl.Float64(), nullable=True),
        Column("ic_difference_p", pl.Float64(), nullable=True),
    ),
    key=("date",),
)

# every step of a version's deployment (challenger, replaced, held, canary_<pct>, promoted,
# retired, rolled_back), also set on the registered version as aliases and tags
MODEL_EVENTS = TableSchema(
    name="model_events",
    columns=(
        Column("date", pl.Date()),
        Column("version", pl.String()),
        Column("event", pl.String()),
        Column("reason", pl.String()),
    ),
    key=("date", "version", "event"),
)

# the live record of the pair deployed on each session: the Rank IC of the day whose label
# realised by the previous close, and each book's return earned on the session after costs
SHADOW_RECORD = TableSchema(
    name="shadow_record",
    columns=(
        Column("date", pl.Date()),
        Column("champion_version", pl.String()),
        Column("challenger_version", pl.String()),
        Column("ic_date", pl.Date()),
        Column("ic_champion", pl.Float64(), nullable=True),
        Column("ic_challenger", pl.Float64(), nullable=True),
        Column("return_champion", pl.Float64(), nullable=True),
        Column("return_challenger", pl.Float64(), nullable=True),
    ),
    key=("date",),
)

# one row per (date, method, ticker) with a non-zero weight: every method, every day
TARGET_WEIGHTS = TableSchema(
    name="target_weights",
    columns=(
        Column("date", pl.Date()),
        Column("method", pl.String()),
        Column("ticker", pl.String()),
        Column("weight", pl.Float64()),
        Column("is_live", pl.Boolean()),
    ),
    key=("date", "method", "ticker"),
)

# one row per (date, method): how the optimisation went, infeasible ones included
ALLOCATION_STATUS = TableSchema(
    name="allocation_status",
    columns=(
        Column("date", pl.Date()),
        Column("method", pl.String()),
        Column("is_live", pl.Boolean()),
        Column("feasible", pl.Boolean()),
        Column("status", pl.String()),
        Column("names", pl.Int32()),
        Column("invested", pl.Float64(), nullable=True),
        Column("turnover", pl.Float64(), nullable=True),
        Column("ex_ante_vol", pl.Float64(), nullable=True),
        Column("seconds", pl.Float64()),
        # names left out of the day's books because they hit their stop-loss
        Column("stopped", pl.Int32()),
        # the live book past its maximum drawdown: only trades that shrink positions
        Column("risk_reducing", pl.Boolean()),
    ),
    key=("date", "method"),
)

# long format: every scalar risk figure of every book, one row per (date, method, metric)
RISK_METRICS = TableSchema(
    name="risk_metrics",
    columns=(
        Column("date", pl.Date()),
        Column("method", pl.String()),
        Column("is_live", pl.Boolean()),
        Column("metric", pl.String()),
        Column("value", pl.Float64(), nullable=True),
    ),
    key=("date", "method", "metric"),
)

# weight and Euler volatility contribution of each ticker and each sector of every book
RISK_CONTRIBUTIONS = TableSchema(
    name="risk_contributions",
    columns=(
        Column("date", pl.Date()),
        Column("method", pl.String()),
        Column("level", pl.String()),
        Column("name", pl.String()),
        Column("weight", pl.Float64()),
        Column("risk_contribution", pl.Float64()),
    ),
    key=("date", "method", "level", "name"),
)

# the last backtest, replaced whole by each run: one row per strategy (model x method, benchmarks)
BACKTEST_METRICS = TableSchema(
    name="backtest_metrics",
    columns=(
        Column("strategy", pl.String()),
        Column("model", pl.String()),
        Column("method", pl.String()),
        Column("cagr", pl.Float64(), nullable=True),
        Column("volatility", pl.Float64(), nullable=True),
        Column("sharpe", pl.Float64(), nullable=True),
        Column("sortino", pl.Float64(), nullable=True),
        Column("max_drawdown", pl.Float64(), nullable=True),
        Column("calmar", pl.Float64(), nullable=True),
        Column("hit_rate", pl.Float64(), nullable=True),
        Column("mean_turnover", pl.Float64(), nullable=True),
        Column("psr", pl.Float64(), nullable=True),
        Column("dsr", pl.Float64(), nullable=True),
        Column("n_obs", pl.Int64()),
        Column("n_trials", pl.Int64()),
        Column("mean_ic", pl.Float64(), nullable=True),
        Column("first_date", pl.Date()),
        Column("last_date", pl.Date()),
        # how often it was re-decided; the days the drawdown rule and the stop-loss fired
        Column("cadence", pl.String(), nullable=True),
        Column("drawdown_rule_days", pl.Int64()),
        Column("stop_loss_days", pl.Int64()),
    ),
    key=("strategy",),
    time_column=None,
)

# each strategy's simulated daily P&L in the last backtest
BACKTEST_RETURNS = TableSchema(
    name="backtest_returns",
    columns=(
        Column("strategy", pl.String()),
        Column("date", pl.Date()),
        Column("gross_return", pl.Float64()),
        Column("cost", pl.Float64()),
        Column("net_return", pl.Float64()),
        Column("turnover", pl.Float64()),
        Column("gross_exposure", pl.Float64()),
    ),
    key=("strategy", "date"),
    time_column=None,
)

# the Sharpe ratio of every CPCV path of each model's signal portfolio in the last backtest
BACKTEST_CPCV = TableSchema(
    name="backtest_cpcv",
    columns=(
        Column("model", pl.String()),
        Column("path", pl.Int64()),
        Column("sharpe", pl.Float64(), nullable=True),
        Column("n_obs", pl.Int64()),
    ),
    key=("model", "path"),
    time_column=None,
)

# the platform's side of every paper order: written NEW before the broker hears of it, then
# updated in place (Store.upsert) as the broker reports; pre-trade rejections never leave
ORDER_JOURNAL = TableSchema(
    name="order_journal",
    columns=(
        Column("date", pl.Date()),
        Column("client_order_id", pl.String()),
        Column("broker", pl.String()),
        Column("strategy", pl.String()),
        Column("ticker", pl.String()),
        Column("side", pl.String()),
        Column("qty", pl.Int64()),
        Column("reference_price", pl.Float64()),
        Column("limit_price", pl.Float64(), nullable=True),
        Column("status", pl.String()),
        Column("filled_qty", pl.Int64()),
        Column("avg_fill_price", pl.Float64(), nullable=True),
        Column("fees", pl.Float64()),
        Column("reason", pl.String(), nullable=True),
        Column("broker_order_id", pl.String(), nullable=True),
        # ISO-8601 UTC of the last change
        Column("updated_at", pl.String()),
    ),
    key=("client_order_id",),
)

# the simulated broker's own books (its side of the reconciliation): one row per order it
# accepted, with the fills' totals; fill_date is the session the order executed in
SIMULATED_BROKER_ORDERS = TableSchema(
    name="simulated_broker_orders",
    columns=(
        Column("date", pl.Date()),
        Column("client_order_id", pl.String()),
        Column("broker_order_id", pl.String()),
        Column("ticker", pl.String()),
        Column("side", pl.String()),
        Column("qty", pl.Int64()),
        Column("limit_price", pl.Float64(), nullable=True),
        # what the order told the broker: the close it was sized on and the name's liquidity
        Column("reference_price", pl.Float64()),
        Column("daily_volatility", pl.Float64()),
        Column("average_volume", pl.Float64()),
        # the session it trades in; the open of that session once its bars are stored
        Column("fill_date", pl.Date()),
        Column("arrival_price", pl.Float64(), nullable=True),
        Column("filled_qty", pl.Int64()),
        Column("avg_fill_price", pl.Float64(), nullable=True),
        Column("fees", pl.Float64()),
        Column("child_orders", pl.Int32()),
        Column("status", pl.String()),
        Column("reason", pl.String(), nullable=True),
    ),
    key=("client_order_id",),
)

# the venue broker's record of what the venue reported (its side of the reconciliation): one
# row per order sent over FIX, updated from execution reports and order status answers
VENUE_BROKER_ORDERS = TableSchema(
    name="venue_broker_orders",
    columns=(
        Column("date", pl.Date()),
        Column("client_order_id", pl.String()),
        Column("broker_order_id", pl.String(), nullable=True),
        Column("ticker", pl.String()),
        Column("side", pl.String()),
        Column("qty", pl.Int64()),
        Column("limit_price", pl.Float64(), nullable=True),
        Column("status", pl.String()),
        Column("filled_qty", pl.Int64()),
        Column("avg_fill_price", pl.Float64(), nullable=True),
        Column("reason", pl.String(), nullable=True),
        # ISO-8601 UTC of the last report
        Column("updated_at", pl.String()),
    ),
    key=("client_order_id",),
)

# holdings at each session's close (fills of the orders decided on earlier sessions)
POSITIONS = TableSchema(
    name="positions",
    columns=(
        Column("date", pl.Date()),
        Column("ticker", pl.String()),
        Column("qty", pl.Int64()),
        Column("close", pl.Float64()),
        Column("market_value", pl.Float64()),
        Column("weight", pl.Float64()),
    ),
    key=("date", "ticker"),
)

# the paper account each session: NAV at the close and what changed it
NAV = TableSchema(
    name="nav",
    columns=(
        Column("date", pl.Date()),
        Column("cash", pl.Float64()),
        Column("positions_value", pl.Float64()),
        Column("nav", pl.Float64()),
        Column("pnl", pl.Float64()),
        Column("gross_pnl", pl.Float64()),
        Column("cumulative_pnl", pl.Float64()),
        Column("fees", pl.Float64()),
        Column("traded_notional", pl.Float64()),
        Column("turnover", pl.Float64()),
        Column("implementation_shortfall", pl.Float64()),
        Column("names", pl.Int32()),
    ),
    key=("date",),
)

# drift of each live-day window against the champion's training reference (drift_report): one row
# per (date, feature) with PSI, binned KS distance, Jensen-Shannon distance, the p-value against
# the training window's blocks and the family-wise adjusted one (null when not evaluated)
FEATURE_DRIFT = TableSchema(
    name="feature_drift",
    columns=(
        Column("date", pl.Date()),
        Column("feature", pl.String()),
        Column("psi", pl.Float64(), nullable=True),
        Column("ks_statistic", pl.Float64(), nullable=True),
        Column("js_distance", pl.Float64(), nullable=True),
        Column("p_value", pl.Float64(), nullable=True),
        Column("p_adjusted", pl.Float64(), nullable=True),
        Column("drifted", pl.Boolean()),
    ),
    key=("date", "feature"),
)

# a training week's drift reference (drift_reference): per Alpha158 feature, the bins cut at the
# quantiles of the model's training window (the upper edge; null for the last) and their counts
DRIFT_REFERENCE = TableSchema(
    name="drift_reference",
    columns=(
        Column("week", pl.Date()),
        Column("feature", pl.String()),
        Column("bin", pl.Int16()),
        Column("upper_edge", pl.Float64(), nullable=True),
        Column("count", pl.Int64()),
    ),
    key=("week", "feature", "bin"),
    time_column="week",
)

# the null of that week's drift tests: per block of the training window (window_sessions
# sessions) and feature, the block's PSI against the rest of the window
DRIFT_NULL = TableSchema(
    name="drift_null",
    columns=(
        Column("week", pl.Date()),
        Column("block_start", pl.Date()),
        Column("block_end", pl.Date()),
        Column("block_sessions", pl.Int16()),
        Column("feature", pl.String()),
        Column("psi", pl.Float64(), nullable=True),
    ),
    key=("week", "block_start", "feature"),
    time_column="week",
)

# long format: every scalar of the day's drift report (shares, prediction drift, SHAP rank
# correlation, the live book's rolling Sharpe, severities 0/1/2), one row per (date, metric)
DRIFT_SUMMARY = TableSchema(
    name="drift_summary",
    columns=(
        Column("date", pl.Date()),
        Column("metric", pl.String()),
        Column("value", pl.Float64(), nullable=True),
    ),
    key=("date", "metric"),
)

TABLES: dict[str, TableSchema] = {
    t.name: t
    for t in (
        UNIVERSE,
        RAW_BARS,
        RAW_BARS_QUARANTINE,
        MACRO_SERIES,
        ALPHA158,
        FACTORS,
        LABELS,
        LABEL_GAPS,
        MODEL_VALIDATION,
        SHAP_SUMMARY,
        ALPHA_MODELS,
        MODEL_SELECTION,
        VALIDATION_SCORES,
        PREDICTIONS,
        SHADOW_PREDICTIONS,
        SHADOW_WEIGHTS,
        MODEL_DEPLOYMENTS,
        MODEL_EVENTS,
        SHADOW_RECORD,
        ML_VIEWS,
        TARGET_WEIGHTS,
        ALLOCATION_STATUS,
        RISK_METRICS,
        RISK_CONTRIBUTIONS,
        BACKTEST_METRICS,
        BACKTEST_RETURNS,
        BACKTEST_CPCV,
        ORDER_JOURNAL,
        SIMULATED_BROKER_ORDERS,
        VENUE_BROKER_ORDERS,
        POSITIONS,
        NAV,
        FEATURE_DRIFT,
        DRIFT_REFERENCE,
        DRIFT_NULL,
        DRIFT_SUMMARY,
    )
}
