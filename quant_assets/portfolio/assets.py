"""Portfolio assets: ``ml_views`` (model scores -> calibrated Black-Litterman views)."""

import dagster as dg
import polars as pl

from quant_assets.metadata import date_range_metadata, preview
from quant_assets.models.assets import alpha_model, predictions
from quant_assets.partitions import daily_partitions, partition_dates
from quant_assets.portfolio.views import InsufficientHistoryError, ScoreCalibrator
from resources.storage import Store

# the calibrated values are 1-session returns in excess of the benchmark (the label's definition)
VIEW_PRIOR = "benchmark_excess_daily"


class MLViewsConfig(dg.Config):
    """Calibration parameters (see ``quant_assets.portfolio.views``)."""

    min_dates: int = 60
    min_names: int = 10
    full_confidence_ic: float = 0.10


@dg.asset(
    group_name="portfolio",
    kinds={"polars"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[predictions, alpha_model],
)
def ml_views(
    context: dg.AssetExecutionContext, config: MLViewsConfig, store: Store
) -> dg.MaterializeResult:
    """Each stock's expected daily return in excess of the benchmark and the view's confidence,
    from the day's ensemble score mapped through the champion's own out-of-sample history
    (``validation_scores`` of the week that trained it): the per-date slope of realised label
    on score, and an Idzorek confidence from its Rank IC and ICIR."""
    start, end = partition_dates(context)
    scores = store.read(
        "predictions", start, end, columns=["ticker", "date", "score_ensemble", "model_week"]
    )
    if scores.is_empty():
        raise dg.Failure(
            f"no predictions stored in [{start}, {end}): materialize predictions first"
        )
    frames = []
    calibrators: dict[object, ScoreCalibrator] = {}
    for week in scores["model_week"].unique().sort().to_list():
        history = store.read("validation_scores", where={"week": [week]})
        try:
            calibrators[week] = ScoreCalibrator(
                min_dates=config.min_dates,
                min_names=config.min_names,
                full_confidence_ic=config.full_confidence_ic,
            ).fit(history.rename({"score_ensemble": "score"}))
        except InsufficientHistoryError as exc:
            raise dg.Failure(f"model week {week}: {exc}") from exc
    # a handful of sessions per run; each session's cross-section is one vectorised call
    for (day, week), rows in scores.group_by(["date", "model_week"], maintain_order=True):
        calibrator = calibrators[week]
        day_views = calibrator.predict(
            rows.select("ticker", pl.col("score_ensemble").alias("score"))
        )
        frames.append(
            day_views.rename({"score": "score_ensemble"}).with_columns(
                pl.lit(day).alias("date"),
                pl.lit(calibrator.slope_).alias("slope"),
                pl.lit(calibrator.n_dates_, dtype=pl.Int32).alias("calibration_dates"),
                pl.lit(week).alias("model_week"),
                pl.lit(VIEW_PRIOR).alias("prior"),
            )
        )
    views = pl.concat(frames)
    written = store.write_partition("ml_views", views, start, end)
    return dg.MaterializeResult(
        metadata={
            "rows": written,
            "tickers": views["ticker"].n_unique(),
            "prior": VIEW_PRIOR,
            "slope": float(views.select(pl.col("slope").mean()).item()),
            "confidence": float(views.select(pl.col("confidence").mean()).item()),
            "calibration_dates": int(views.select(pl.col("calibration_dates").max()).item()),
            **date_range_metadata(views),
            "preview": preview(views.sort("expected_return_daily", descending=True)),
        }
    )
