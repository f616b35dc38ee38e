"""Drift monitoring: PSI / KS / Jensen-Shannon against independent computations, the
block-calibrated test on an unchanged but dependent panel (against the textbook KS test), a
planted shift, what cannot be evaluated, explanation drift, the live book's rolling Sharpe by hand, a real ``drift_report`` materialization with its
checks on a DuckDB store of synthetic bars and features, and the retraining sensor."""

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest
from dagster._core.definitions.sensor_definition import SensorExecutionData
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp, spearmanr

from quant_assets.features.alpha158 import ALPHA158_NAMES
from quant_assets.features.assets import alpha158
from quant_assets.ingest.assets import raw_bars, universe
from quant_assets.models.assets import alpha_model
from quant_assets.monitoring import checks
from quant_assets.monitoring.assets import (
    DriftReferenceConfig,
    build_reference,
    drift_reference,
    drift_report,
)
from quant_assets.monitoring.drift import (
    DriftReference,
    DriftThresholds,
    Severity,
    bin_counts,
    block_stride,
    explanation_drift,
    feature_drift,
    js_distance,
    ks_statistic,
    prediction_drift,
    psi,
    quantile_edges,
    reference_frames,
    reference_from_frames,
    severity_name,
)
from quant_assets.monitoring.sensors import latest_complete_week, retraining_trigger
from quant_assets.partitions import next_trading_day, shift_sessions, trading_sessions
from quant_assets.reporting.assets import drift_table
from quant_core.metrics import trailing_sharpe
from resources.market_data.resource import MarketData
from resources.mlflow import mlflow_resource
from resources.storage import Store
from schedules import weekly_training

RANGE = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
FEATURES_12 = [f"f{j}" for j in range(12)]


def _panel(rng: np.random.Generator, sessions: int, tickers: int, features: int) -> pl.DataFrame:
    """An AR(1) panel: each feature follows a common factor (persistence 0.95, as a 20-session
    rolling feature would) plus independent noise per ticker: overlapping, cross-sectionally
    dependent windows like Alpha158's, with no change anywhere."""
    days = trading_sessions(date(2015, 1, 2), date(2030, 1, 1))[:sessions]
    factor = np.zeros((sessions, features))
    for t in range(1, sessions):
        factor[t] = 0.95 * factor[t - 1] + rng.normal(0.0, 0.05, size=features)
    values = factor[:, None, :] + rng.normal(size=(sessions, tickers, features))
    return pl.DataFrame(
        {
            "date": np.repeat(np.array(days, dtype="datetime64[D]"), tickers),
            **{f"f{j}": values[:, :, j].ravel() for j in range(features)},
        }
    ).with_columns(pl.col("date").cast(pl.Date))


def test_psi_ks_and_js_match_independent_computations():
    rng = np.random.default_rng(11)
    current = rng.integers(0, 50, size=(3, 20)).astype(float)
    reference = rng.integers(1, 50, size=(3, 20)).astype(float)
    current[0, 4] = 0  # an empty bin: PSI takes its share as 1e-4
    for c, r, got_psi, got_ks, got_js in zip(
        current,
        reference,
        psi(current, reference),
        ks_statistic(current, reference),
        js_distance(current, reference),
        strict=True,
    ):
        cs, rs = c / c.sum(), r / r.sum()
        cf, rf = np.where(cs == 0, 1e-4, cs), np.where(rs == 0, 1e-4, rs)
        assert got_psi == pytest.approx(np.sum((cf - rf) * np.log(cf / rf)), rel=1e-12)
        assert got_ks == pytest.approx(np.abs(np.cumsum(cs) - np.cumsum(rs)).max(), rel=1e-12)
        assert got_js == pytest.approx(jensenshannon(cs, rs), rel=1e-9)


def test_bins_are_the_reference_quantiles_and_counts_match_numpy():
    rng = np.random.default_rng(3)
    values = rng.normal(size=(4000, 2))
    values[:7, 1] = np.nan
    edges = quantile_edges(values, 10)
    counts = bin_counts(values, edges, np.zeros(4000, np.int64), 1)[0]
    assert counts[0].tolist() == [400] * 10
    assert counts[1].sum() == 3993
    expected = np.histogram(values[7:, 1], np.concatenate([[-np.inf], edges[1], [np.inf]]))[0]
    assert counts[1].tolist() == expected.tolist()


def test_unchanged_dependent_panel_rarely_alarms_where_iid_ks_always_does():
    """Twenty windows of an unchanged but persistent, cross-sectionally dependent panel: the
    block-calibrated family-wise test alarms on at most one of them, while the textbook KS test
    on the same rows rejects for most features (its rows are not independent)."""
    rng = np.random.default_rng(0)
    panel = _panel(rng, sessions=756 + 20 * 21, tickers=40, features=12)
    days = panel["date"].unique().sort()
    reference = DriftReference.build(panel.filter(pl.col("date") < days[756]), FEATURES_12, 21)
    alarms, iid_rejections = 0, []
    for k in range(20):
        window = panel.filter(pl.col("date").is_between(days[756 + 21 * k], days[776 + 21 * k]))
        alarms += bool(feature_drift(window, reference).alarm)
        old = panel.filter(pl.col("date") < days[756])
        iid_rejections.append(
            np.mean([ks_2samp(window[f], old[f]).pvalue <= 0.05 for f in FEATURES_12])
        )
    assert alarms <= 1
    assert np.mean(iid_rejections) >= 0.5


def test_a_planted_shift_is_flagged_and_unshifted_features_are_not():
    rng = np.random.default_rng(1)
    panel = _panel(rng, sessions=800, tickers=40, features=12)
    days = panel["date"].unique().sort()
    reference = DriftReference.build(panel.filter(pl.col("date") < days[756]), FEATURES_12, 21)
    window = panel.filter(pl.col("date").is_between(days[770], days[790]))
    sd = float(panel["f3"].std())  # type: ignore[arg-type]
    moved = window.with_columns(pl.col("f3") + 1.0 * sd)
    result = feature_drift(moved, reference)
    rows = {r["feature"]: r for r in result.table.iter_rows(named=True)}
    assert rows["f3"]["drifted"] and rows["f3"]["p_adjusted"] <= 1e-4, rows["f3"]
    assert result.drifted == 1 and result.alarm is True
    assert result.tested == 12
    assert DriftThresholds().feature_severity(result.drifted, result.tested) is Severity.WARN


def test_blocks_overlapping_the_window_are_left_out_of_its_null():
    rng = np.random.default_rng(2)
    panel = _panel(rng, sessions=600, tickers=20, features=3)
    days = panel["date"].unique().sort()
    reference = DriftReference.build(panel, ["f0", "f1", "f2"], 21)
    assert reference.overlap == pytest.approx(21 / block_stride(600, 21, 200), abs=1.0)
    # the reference's last window is itself the current window: its blocks are not its null
    late = panel.filter(pl.col("date") >= days[-21])
    full = feature_drift(late, reference).table
    assert full["p_value"].is_not_null().all()
    assert not full["drifted"].any()


def test_a_reference_too_short_for_19_windows_is_not_evaluated():
    rng = np.random.default_rng(4)
    panel = _panel(rng, sessions=300, tickers=20, features=3)
    reference = DriftReference.build(panel, ["f0", "f1", "f2"], 21)
    result = feature_drift(panel.tail(21 * 20), reference)
    assert result.table.height == 3
    assert result.table["p_adjusted"].is_null().all()
    assert result.tested == 0 and result.alarm is None
    assert DriftThresholds().feature_severity(result.drifted, result.tested) is None


def test_prediction_drift_grades_the_score_psi():
    rng = np.random.default_rng(2)
    reference = rng.uniform(-0.5, 0.5, size=3000)
    same = prediction_drift(rng.uniform(-0.5, 0.5, size=1000), reference)
    squeezed = prediction_drift(rng.normal(0.0, 0.08, size=1000), reference)
    thresholds = DriftThresholds()
    assert thresholds.prediction_severity(same["psi"]) is Severity.OK
    assert thresholds.prediction_severity(squeezed["psi"]) is Severity.ERROR
    assert squeezed["ks_pvalue"] < 1e-6 < same["ks_pvalue"]
    assert all(math.isnan(v) for v in prediction_drift(reference[:10], reference).values())


def test_explanation_drift_is_the_spearman_correlation_of_shap():
    features = [f"f{i}" for i in range(20)]
    rng = np.random.default_rng(4)
    training_shap = rng.uniform(0.0, 1.0, size=20)
    noisy = training_shap + rng.normal(0.0, 0.3, size=20)

    def frame(model: str, values: np.ndarray) -> pl.DataFrame:
        return pl.DataFrame({"model": model, "feature": features, "mean_abs_shap": values})

    training = pl.concat([frame("lightgbm", training_shap), frame("catboost", training_shap)])
    current = pl.concat([frame("lightgbm", noisy), frame("catboost", -training_shap)])
    result = {r["model"]: r for r in explanation_drift(current, training).iter_rows(named=True)}
    assert result["lightgbm"]["rank_corr"] == pytest.approx(spearmanr(noisy, training_shap)[0])
    assert result["catboost"]["rank_corr"] == pytest.approx(-1.0)
    assert result["lightgbm"]["features"] == 20
    assert explanation_drift(training, training)["rank_corr"].to_list() == [1.0, 1.0]


def test_live_sharpe_by_hand():
    rng = np.random.default_rng(9)
    returns = rng.normal(4e-4, 0.01, size=100)
    sharpe = trailing_sharpe(returns)
    for window in (30, 60, 90):
        tail = returns[-window:]
        assert sharpe[window] == pytest.approx(tail.mean() / tail.std(ddof=1) * math.sqrt(252))
    short = trailing_sharpe(returns[:45])
    assert math.isnan(short[60]) and math.isnan(short[90]) and math.isfinite(short[30])
    assert all(math.isnan(v) for v in trailing_sharpe(np.zeros(0)).values())


def test_thresholds_are_validated_and_graded():
    thresholds = DriftThresholds()
    assert thresholds.feature_severity(0, 158) is Severity.OK
    assert thresholds.feature_severity(1, 158) is Severity.WARN
    assert thresholds.feature_severity(40, 158) is Severity.ERROR
    assert thresholds.prediction_severity(0.1) is Severity.WARN
    # what cannot be measured has no severity: never OK
    assert thresholds.prediction_severity(math.nan) is None
    assert thresholds.feature_severity(0, 0) is None
    assert thresholds.explanation_severity(math.nan) is None
    assert thresholds.sharpe_breached(-1.5) and thresholds.sharpe_breached(math.nan) is None
    assert severity_name(math.nan) == severity_name(None) == "NOT EVALUATED"
    assert [severity_name(float(s)) for s in Severity] == ["OK", "WARN", "ERROR"]
    with pytest.raises(ValueError):
        DriftThresholds(alarm_pvalue=0.0)


# --- drift_report through Dagster -------------------------------------------------------------

FIRST_BAR, LAST_BAR = "2021-06-01", "2024-03-15"
WEEK = date(2024, 2, 5)  # the champion's training week
LATEST_WEEK = date(2024, 3, 4)  # the latest trained week before the report day's week
# 2.3 years: the shortest reference that holds 19 drift windows is 399 sessions
TRAINING_START, TRAINING_END = date(2021, 11, 1), date(2024, 2, 9)
DAY = date(2024, 3, 13)  # a Wednesday
LIVE_SINCE = date(2023, 10, 2)
TICKERS = 12
# a third of Alpha158: the family-wise test runs on a monitored subset
MONITORED = list(ALPHA158_NAMES[::3])
CHECKS = [
    checks.features_not_drifted,
    checks.predictions_not_drifted,
    checks.explanations_not_drifted,
]


def _resources(store: Store) -> dict:
    return {"store": store, "market_data": MarketData(n_tickers=TICKERS)}


def _week_rows(store: Store, table: str, frame: pl.DataFrame, week: date) -> None:
    store.write_partition(table, frame, week, week + timedelta(days=7))


def _seed_alpha_models(store: Store) -> None:
    _week_rows(
        store,
        "alpha_models",
        pl.DataFrame(
            {
                "week": [WEEK],
                "registered_model": ["alpha_ensemble"],
                "version": ["1"],
                "alias": ["champion"],
                "champion_version": ["1"],
                "champion_week": [WEEK],
                "champion_training_end": [TRAINING_END],
                "training_start": [TRAINING_START],
                "training_end": [TRAINING_END],
                "mlflow_run_id": ["run"],
                "gate_metric": [None],
                "champion_gate_metric": [None],
                "ensemble_weights": ['{"lightgbm": 1.0}'],
            }
        ),
        WEEK,
    )


def _seed_validation_scores(store: Store, tickers: list[str], rng: np.random.Generator) -> None:
    labelled = trading_sessions(date(2023, 11, 1), TRAINING_END)
    _week_rows(
        store,
        "validation_scores",
        pl.DataFrame(
            {
                "ticker": tickers * len(labelled),
                "date": [d for d in labelled for _ in tickers],
                "score_ensemble": rng.uniform(-0.5, 0.5, size=len(labelled) * len(tickers)),
                "label": rng.normal(0.0, 0.02, size=len(labelled) * len(tickers)),
            }
        ).with_columns(pl.lit(WEEK).alias("week")),
        WEEK,
    )


def _seed_shap(store: Store, rng: np.random.Generator) -> None:
    importance = rng.uniform(0.0, 1.0, size=len(ALPHA158_NAMES))
    # the latest week ranks the features in the opposite order
    reversed_order = importance.max() + importance.min() - importance
    for week, values in ((WEEK, importance), (LATEST_WEEK, reversed_order)):
        _week_rows(
            store,
            "shap_summary",
            pl.DataFrame(
                {
                    "model": "lightgbm",
                    "feature": list(ALPHA158_NAMES),
                    "mean_abs_shap": values,
                    "importance_rank": np.argsort(np.argsort(-values)).astype(np.int32) + 1,
                }
            ).with_columns(pl.lit(week).alias("week")),
            week,
        )


def _seed_predictions(
    store: Store, tickers: list[str], rng: np.random.Generator, squeeze_live_scores: bool
) -> None:
    scored = trading_sessions(date(2024, 2, 12), next_trading_day(DAY))
    n = len(scored) * len(tickers)
    scores = rng.normal(0.0, 0.05, size=n) if squeeze_live_scores else rng.uniform(-0.5, 0.5, n)
    store.write_partition(
        "predictions",
        pl.DataFrame(
            {
                "ticker": tickers * len(scored),
                "date": [d for d in scored for _ in tickers],
                "score_lightgbm": scores,
                "score_catboost": None,
                "score_tft": None,
                "score_ensemble": scores,
                "model_version": "1",
                "model_week": WEEK,
                "training_end": TRAINING_END,
            },
            schema_overrides={"score_catboost": pl.Float64, "score_tft": pl.Float64},
        ),
        scored[0],
        next_trading_day(scored[-1]),
    )


def _seed_live_book(store: Store, tickers: list[str]) -> None:
    live = trading_sessions(LIVE_SINCE, next_trading_day(DAY))
    store.write_partition(
        "target_weights",
        pl.DataFrame(
            {
                "date": [d for d in live for _ in tickers],
                "method": "hrp",
                "ticker": tickers * len(live),
                "weight": 1.0 / len(tickers),
                "is_live": True,
            }
        ),
        live[0],
        next_trading_day(live[-1]),
    )


def _seed_model(store: Store, squeeze_live_scores: bool) -> None:
    """The champion of WEEK as alpha_model would store it, its out-of-sample scores, SHAP of
    two weeks, daily predictions, and an equal-weight live book every session since LIVE_SINCE."""
    tickers = store.read("alpha158", DAY, next_trading_day(DAY))["ticker"].to_list()
    rng = np.random.default_rng(1)  # drawn in this order: scores, SHAP, predictions
    _seed_alpha_models(store)
    _seed_validation_scores(store, tickers, rng)
    _seed_shap(store, rng)
    _seed_predictions(store, tickers, rng, squeeze_live_scores)
    _seed_live_book(store, tickers)


@dataclass
class Monitored:
    store: Store
    instance: dg.DagsterInstance
    result: dg.ExecuteInProcessResult


@pytest.fixture(scope="module")
def monitored(tmp_path_factory) -> Iterator[Monitored]:
    """Synthetic bars and real Alpha158, a champion whose live scores are far narrower than its
    out-of-sample scores (severe prediction drift), then drift_report and its checks for DAY."""
    root = tmp_path_factory.mktemp("monitoring")
    monkey = pytest.MonkeyPatch()
    monkey.setenv("QUANT_DATA_DIR", str(root / "data"))
    store = Store(url=str(root / "quant.duckdb"))
    instance = dg.DagsterInstance.ephemeral()
    ingest = dg.materialize(
        [universe, raw_bars, alpha158],
        resources=_resources(store),
        tags=dict(zip(RANGE, (FIRST_BAR, LAST_BAR), strict=True)),
    )
    assert ingest.success
    _seed_model(store, squeeze_live_scores=True)
    weekly = dg.materialize(
        [drift_reference], resources=_resources(store), partition_key=WEEK.isoformat()
    )
    assert weekly.success
    result = dg.materialize(
        [drift_report, *CHECKS],
        resources=_resources(store),
        partition_key=DAY.isoformat(),
        instance=instance,
        run_config={"ops": {"drift_report": {"config": {"features": MONITORED}}}},
    )
    yield Monitored(store, instance, result)
    monkey.undo()


def test_drift_report_stores_every_measure_and_links_its_html(monitored: Monitored):
    assert monitored.result.success
    stored = monitored.store.read("feature_drift")
    assert stored["date"].unique().to_list() == [DAY]
    # features constant or missing over the window or the reference are left out
    assert 0.8 * len(MONITORED) <= stored.height <= len(MONITORED)
    assert set(stored["feature"]) <= set(MONITORED)
    assert stored["p_adjusted"].is_between(0.0, 1.0).all()
    assert stored["p_value"].is_between(0.0, 1.0).all()
    assert stored["ks_statistic"].is_between(0.0, 1.0).all()
    assert (stored["psi"] >= 0).all()
    assert stored["js_distance"].is_between(0.0, math.sqrt(math.log(2)) + 1e-12).all()
    summary = dict(monitored.store.read("drift_summary").select("metric", "value").iter_rows())
    assert summary["drifted_share"] == pytest.approx(stored["drifted"].mean())
    assert summary["tested_features"] == stored.height
    assert summary["min_p_adjusted"] == pytest.approx(stored["p_adjusted"].min())
    assert summary["reference_blocks"] >= 19
    assert summary["max_psi"] == pytest.approx(stored["psi"].max())
    assert summary["prediction_psi"] >= 0.25
    assert summary["prediction_severity"] == Severity.ERROR
    # the latest week's SHAP ranking is the training week's reversed
    assert summary["shap_rank_corr"] == pytest.approx(-1.0)
    assert summary["explanation_severity"] == Severity.WARN
    event = monitored.result.asset_materializations_for_node("drift_report")[0]
    metadata = {k: v.value for k, v in event.metadata.items()}
    assert Path(str(metadata["report"])).name == f"{DAY.isoformat()}.html"
    assert Path(str(metadata["report"])).stat().st_size > 10_000
    for key in ("drifted_share", "max_psi", "prediction_psi", "shap_rank_corr", "sharpe_30"):
        assert isinstance(event.metadata[key], dg.FloatMetadataValue), key
    assert metadata["severe_drift"] is True
    assert metadata["model_week"] == WEEK.isoformat()


def test_each_drift_table_is_materialized_with_its_metadata(monitored: Monitored):
    events = {
        e.asset_key.to_user_string(): {k: v.value for k, v in e.metadata.items()}
        for e in monitored.result.asset_materializations_for_node("drift_report")
    }
    assert set(events) == {"drift_report", "feature_drift", "drift_summary"}
    stored = monitored.store.read("feature_drift")
    assert events["feature_drift"]["rows"] == stored.height
    assert events["feature_drift"]["drifted_features"] == stored["drifted"].sum()
    assert events["feature_drift"]["first_date"] == DAY.isoformat()
    summary = monitored.store.read("drift_summary")
    assert events["drift_summary"]["rows"] == summary.height
    assert events["drift_summary"]["worst_prediction_severity"] == "ERROR"
    assert events["drift_summary"]["worst_explanation_severity"] == "WARN"
    # the checks judge the table they read
    judged = {e.asset_key for e in monitored.result.get_asset_check_evaluations()}
    assert judged == {dg.AssetKey("drift_summary")}


def test_the_weekly_reference_is_what_drift_report_would_build_from_the_training_window(
    monitored: Monitored,
):
    store = monitored.store
    bins, null = store.read("drift_reference"), store.read("drift_null")
    assert bins["week"].unique().to_list() == [WEEK] == null["week"].unique().to_list()
    model = store.read("alpha_models").row(0, named=True)
    built = build_reference(store, model, list(ALPHA158_NAMES), DriftReferenceConfig())
    stored = reference_from_frames(bins, null, TRAINING_START, TRAINING_END)
    assert sorted(stored.features) == sorted(built.features)
    stored = stored.select(built.features)
    assert np.array_equal(stored.counts, built.counts)
    assert np.allclose(stored.null_psi, built.null_psi, equal_nan=True)
    assert stored.block_ends[-1] <= TRAINING_END and stored.window_sessions == 21
    # the day's stored table is the test against that reference, on the monitored subset
    window = store.read("alpha158", shift_sessions(DAY, 20), next_trading_day(DAY))
    again = feature_drift(window, stored.select(MONITORED)).table
    table = store.read("feature_drift").drop("date").sort("feature")
    assert again.sort("feature").equals(table)


def test_a_reference_round_trips_through_its_tables():
    panel = _panel(np.random.default_rng(0), 500, 10, 3)
    reference = DriftReference.build(panel, ["f0", "f1", "f2"], 21)
    bins, null = reference_frames(reference, date(2020, 1, 6))
    again = reference_from_frames(bins, null, reference.start, reference.end)
    for field in ("edges", "counts", "null_psi"):
        assert np.array_equal(getattr(again, field), getattr(reference, field), equal_nan=True)
    assert (again.block_starts, again.block_ends) == (reference.block_starts, reference.block_ends)
    assert again.features == reference.features and again.window_sessions == 21


def test_drift_report_rolling_sharpe_is_the_live_book_by_hand(monitored: Monitored):
    """The equal-weight live book earns the mean of its names' next-session returns."""
    held = monitored.store.read("target_weights", DAY, next_trading_day(DAY))["ticker"]
    bars = monitored.store.read(
        "raw_bars", shift_sessions(DAY, 100), next_trading_day(DAY), tickers=held.to_list()
    )
    returns = (
        bars.sort("date")
        .with_columns(
            (pl.col("adj_close") / pl.col("adj_close").shift(1) - 1).over("ticker").alias("r")
        )
        .filter(pl.col("date") > LIVE_SINCE)
        .group_by("date")
        .agg(pl.col("r").mean())
        .sort("date")["r"]
        .to_numpy()
    )
    summary = dict(monitored.store.read("drift_summary").select("metric", "value").iter_rows())
    for window in (30, 60, 90):
        tail = returns[-window:]
        expected = tail.mean() / tail.std(ddof=1) * math.sqrt(252)
        assert summary[f"sharpe_{window}"] == pytest.approx(expected, rel=1e-9), window
    assert summary["live_sessions"] == 90


def test_drift_checks_warn_or_fail_by_severity(monitored: Monitored):
    evaluations = {e.check_name: e for e in monitored.result.get_asset_check_evaluations()}
    predictions = evaluations["predictions_not_drifted"]
    assert not predictions.passed
    assert predictions.severity == dg.AssetCheckSeverity.ERROR
    explanations = evaluations["explanations_not_drifted"]
    assert not explanations.passed
    assert explanations.severity == dg.AssetCheckSeverity.WARN
    features = evaluations["features_not_drifted"]
    summary = dict(monitored.store.read("drift_summary").select("metric", "value").iter_rows())
    expected = DriftThresholds().feature_severity(
        int(summary["drifted_features"]), int(summary["tested_features"])
    )
    assert features.passed == (expected is Severity.OK)


def test_a_drift_check_that_cannot_measure_is_not_evaluated_never_ok(monitored: Monitored):
    store = monitored.store
    # only the champion's own training week has SHAP values, and no live book is stored
    store.write_partition("shap_summary", store.read("shap_summary").clear(), LATEST_WEEK, DAY)
    live = store.read("target_weights")
    store.write_partition("target_weights", live.clear(), LIVE_SINCE, next_trading_day(DAY))
    try:
        result = dg.materialize(
            [drift_report, *CHECKS],
            resources=_resources(store),
            partition_key=DAY.isoformat(),
            run_config={"ops": {"drift_report": {"config": {"features": MONITORED}}}},
        )
        summary = store.read("drift_summary").select("metric", "value")
        values = dict(summary.iter_rows())
        for metric in ("explanation_severity", "sharpe_60", "sharpe_below_floor"):
            assert values[metric] is None or math.isnan(values[metric]), metric
        explanations = next(
            e
            for e in result.get_asset_check_evaluations()
            if e.check_name == "explanations_not_drifted"
        )
        assert not explanations.passed
        assert explanations.severity == dg.AssetCheckSeverity.WARN
        assert explanations.metadata["status"].value == "NOT EVALUATED"
        # the PDF's drift table says the same word, with the history the Sharpe lacks
        table = {r["measure"]: r for r in drift_table(summary).iter_rows(named=True)}
        assert table["SHAP rank correlation"]["status"] == "NOT EVALUATED"
        floor = table["Sharpe below floor (60 sessions)"]
        assert floor["status"] == "NOT EVALUATED" and floor["value"].startswith("n/a: 0 of 60")
        event = result.asset_materializations_for_node("drift_report")[0]
        assert event.metadata["sharpe_below_floor"].value == "NOT EVALUATED"
    finally:
        _seed_shap(store, np.random.default_rng(1))
        store.write_partition("target_weights", live, LIVE_SINCE, next_trading_day(DAY))


# --- the retraining sensor --------------------------------------------------------------------


# the sensor's partitioned run requests are resolved against the definitions holding its job
SENSOR_DEFS = dg.Definitions(
    assets=[alpha_model, drift_reference],
    jobs=[weekly_training],
    sensors=[retraining_trigger],
    resources={"store": Store(url="unused.duckdb"), "mlflow": mlflow_resource},
)


def _evaluate(instance: dg.DagsterInstance, cursor: str | None = None) -> SensorExecutionData:
    context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=SENSOR_DEFS)
    return retraining_trigger.evaluate_tick(context)


def _report(instance: dg.DagsterInstance, day: date, severe: bool, sharpe_60: float) -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=dg.AssetKey("drift_report"),
            partition=day.isoformat(),
            metadata={
                "severe_drift": severe,
                "sharpe_below_floor": sharpe_60 < DriftThresholds().sharpe_floor,
                "sharpe_60": sharpe_60,
            },
        )
    )


def test_latest_complete_week():
    assert latest_complete_week(date(2024, 3, 13)) == date(2024, 3, 4)  # a Wednesday
    assert latest_complete_week(date(2024, 3, 15)) == date(2024, 3, 11)  # the week's Friday
    assert latest_complete_week(date(2024, 3, 28)) == date(2024, 3, 25)  # Good Friday closed


def test_sensor_requests_retraining_on_the_materialized_severe_drift(monitored: Monitored):
    tick = _evaluate(monitored.instance)
    assert [r.partition_key for r in tick.run_requests] == [LATEST_WEEK.isoformat()]
    assert tick.run_requests[0].run_key == f"retraining_trigger:{LATEST_WEEK.isoformat()}"
    assert json.loads(tick.cursor)["requested_week"] == "2024-03-11"
    # the same week again, even on a later report: nothing more
    again = _evaluate(monitored.instance, tick.cursor)
    assert not again.run_requests and again.skip_message


def test_sensor_skips_when_fine_and_fires_once_per_week():
    instance = dg.DagsterInstance.ephemeral()
    assert "no drift_report" in (_evaluate(instance).skip_message or "")
    _report(instance, date(2024, 3, 12), severe=False, sharpe_60=0.8)
    fine = _evaluate(instance)
    assert not fine.run_requests and "no severe drift" in (fine.skip_message or "")
    # the Sharpe floor alone triggers
    _report(instance, date(2024, 3, 13), severe=False, sharpe_60=-2.0)
    first = _evaluate(instance, fine.cursor)
    assert [r.partition_key for r in first.run_requests] == ["2024-03-04"]
    assert first.run_requests[0].tags["quant/retrain_reason"] == "sharpe_below_floor"
    _report(instance, date(2024, 3, 14), severe=True, sharpe_60=-2.0)
    second = _evaluate(instance, first.cursor)
    assert not second.run_requests and "already requested" in (second.skip_message or "")
    # next week's Friday: that week is complete, so its model is the one to train
    _report(instance, date(2024, 3, 22), severe=True, sharpe_60=0.5)
    later = _evaluate(instance, second.cursor or first.cursor)
    assert [r.partition_key for r in later.run_requests] == ["2024-03-18"]


def test_sensor_skips_a_week_whose_model_is_already_trained():
    instance = dg.DagsterInstance.ephemeral()
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key=dg.AssetKey("alpha_model"), partition="2024-03-04")
    )
    _report(instance, date(2024, 3, 13), severe=True, sharpe_60=0.5)
    tick = _evaluate(instance)
    assert not tick.run_requests and "already trained" in (tick.skip_message or "")
