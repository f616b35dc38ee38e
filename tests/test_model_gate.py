"""The weekly evaluation gate: the first version is champion, a later one that beats the champion
is the challenger (shadowed), the others are rejected."""

from __future__ import annotations

import pytest

from quant_assets.models.registry import CHALLENGER, CHAMPION, REJECTED, gate


def test_the_first_version_is_champion():
    assert gate(0.01, None, has_champion=False).alias == CHAMPION


@pytest.mark.parametrize(
    ("candidate", "champion", "margin", "alias"),
    [
        (0.031, 0.030, 0.0, CHALLENGER),  # passing never makes a champion directly
        (0.030, 0.030, 0.0, REJECTED),  # a tie keeps the incumbent unchallenged
        (0.029, 0.030, 0.0, REJECTED),
        (0.031, 0.030, 0.005, REJECTED),  # better, but not by the required margin
        (0.036, 0.030, 0.005, CHALLENGER),
    ],
)
def test_a_new_version_must_beat_the_champion_on_the_same_rows(candidate, champion, margin, alias):
    decision = gate(candidate, champion, has_champion=True, min_improvement=margin)
    assert decision.alias == alias
    assert decision.passed == (alias == CHALLENGER)
    assert (decision.candidate_metric, decision.champion_metric) == (candidate, champion)


def test_without_common_rows_the_version_is_rejected():
    decision = gate(None, None, has_champion=True)
    assert decision.alias == REJECTED and "not shadowed" in decision.reason


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
