"""The champion/challenger evaluation gate."""

from __future__ import annotations

import pytest

from quant_assets.models.registry import CHALLENGER, CHAMPION, gate


def test_the_first_version_is_champion():
    assert gate(0.01, None, has_champion=False).alias == CHAMPION


@pytest.mark.parametrize(
    ("candidate", "champion", "margin", "alias"),
    [
        (0.031, 0.030, 0.0, CHAMPION),
        (0.030, 0.030, 0.0, CHALLENGER),  # a tie keeps the incumbent
        (0.029, 0.030, 0.0, CHALLENGER),
        (0.031, 0.030, 0.005, CHALLENGER),  # better, but not by the required margin
        (0.036, 0.030, 0.005, CHAMPION),
    ],
)
def test_a_new_version_must_beat_the_champion_on_the_same_rows(candidate, champion, margin, alias):
    decision = gate(candidate, champion, has_champion=True, min_improvement=margin)
    assert decision.alias == alias
    assert (decision.candidate_metric, decision.champion_metric) == (candidate, champion)


def test_without_common_rows_the_champion_stays():
    decision = gate(None, None, has_champion=True)
    assert decision.alias == CHALLENGER and "champion stays" in decision.reason


def test_the_weekly_training_is_one_asset_per_table_it_writes():
    from quant_assets.models.assets import alpha_model

    # alpha_model stands for the registered model and its alpha_models row
    assert {k.to_user_string() for k in alpha_model.keys} == {
        "alpha_model",
        "model_validation",
        "shap_summary",
        "validation_scores",
    }
    assert alpha_model.op.name == "alpha_model"  # run config and job selections keep the name
    assert set(alpha_model.group_names_by_key.values()) == {"models"}
    assert not alpha_model.can_subset  # one training writes the four tables together
