"""``quant-reproduce --week W``: retrain a registered model version from the store and prove it.

For the version ``alpha_model`` registered for the training week ``W`` (a Monday; ``--version``
picks another): read its training window from the store exactly as the training did, compare
the window's SHA-256 with the one recorded at registration, retrain it with the recorded config
and model choice (nothing is logged or registered), and compare the retrained model's ensemble
scores with the registered version's on the window's last session. Prints the findings; the
exit status is 0 when the data hash matches and the scores agree within ``--tolerance``, 1
otherwise. See :mod:`quant_assets.models.provenance`.

    uv run quant-reproduce --week 2024-06-17
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date

import mlflow
import pandas as pd

from quant_assets.models import registry
from quant_assets.models.assets import (
    PREDICTION_LOOKBACK_SESSIONS,
    AlphaModelConfig,
    labelled_panel,
    sector_map,
)
from quant_assets.models.provenance import (
    CODE_TAG,
    DATA_TAG,
    Reproduction,
    code_version,
    compare_scores,
    recorded_training,
    recorded_window,
    training_data_hash,
    version_of_week,
)
from quant_assets.models.training import train_alpha
from quant_assets.partitions import shift_sessions
from resources.mlflow import ModelRegistry
from resources.storage import Store

# seeded LightGBM, CatBoost and TFT (on the CPU) retrained on the same rows give the same scores
# (measured: a difference of exactly 0, README); the tolerance leaves room for float rounding
# on other hardware
DEFAULT_TOLERANCE = 1e-6


def reproduce(
    store: Store,
    week: date,
    version: str | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> Reproduction:
    """Re-read, re-hash and retrain the version of ``week`` (or ``version``); see the module."""
    client = mlflow.MlflowClient()
    registered = (
        client.get_model_version(registry.REGISTERED_MODEL, version)
        if version
        else version_of_week(client, week)
    )
    window = recorded_window(registered)
    config_values, choice = recorded_training(client, registered)
    config = AlphaModelConfig(**config_values)
    X, y, y5, _ = labelled_panel(store, window, config.min_training_sessions, choice.horizon)
    data_hash = training_data_hash(X, y)
    outcome = train_alpha(
        X,
        y,
        sector_map(store),
        config.spec(choice),
        window.start,
        window.end,
        evaluation_label=y5,
    )
    # the last session, scored with its lookback (the TFT's encoder window)
    dates = X.index.get_level_values("date")
    history = X[dates >= pd.Timestamp(shift_sessions(window.end, PREDICTION_LOOKBACK_SESSIONS))]
    bundle = registry.load_bundle(str(registered.version))

    def last_session(scores: pd.DataFrame) -> pd.DataFrame:
        return scores[scores.index.get_level_values("date") == pd.Timestamp(window.end)]

    rows, difference, rank = compare_scores(
        last_session(bundle.predict(history)), last_session(outcome.bundle.predict(history))
    )
    return Reproduction(
        version=str(registered.version),
        week=window.week,
        recorded_hash=registered.tags.get(DATA_TAG),
        data_hash=data_hash,
        recorded_code=registered.tags.get(CODE_TAG),
        code=code_version(),
        scored_rows=rows,
        max_score_difference=difference,
        score_rank_correlation=rank,
        tolerance=tolerance,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--week", type=date.fromisoformat, required=True)
    parser.add_argument("--version", help="a registered version (default: the week's newest)")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE)
    args = parser.parse_args(argv)
    from resources.config import store_from_env

    ModelRegistry().activate()
    # OpenMP threads must not spin on a shared machine (see benches/bench_training.py)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    pd.set_option("display.width", 120)
    try:
        found = reproduce(store_from_env(reader=True), args.week, args.version, args.tolerance)
    except LookupError as error:
        print(f"quant-reproduce: {error}", file=sys.stderr)
        return 2
    print("\n".join(found.lines()))
    return 0 if found.reproduced else 1


if __name__ == "__main__":
    raise SystemExit(main())
