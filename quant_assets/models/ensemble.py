"""Rank ensemble of alpha models, weighted by their validation Rank ICIR.

Each model's scores are turned into within-date ranks scaled to [-0.5, 0.5]
(:func:`~quant_assets.models.cross_section.cs_rank`) before averaging, because the models'
outputs live on different scales (and a TFT's quantile output on yet another): only their
cross-sectional ordering is comparable. A row a model did not score is averaged over the
models that did (weights renormalised on that row).

Weights come from each model's validation Rank ICIR: a negative or NaN ICIR gets weight 0 (a
model that ranks backwards out-of-sample is not trusted to be flipped), the rest are
proportional to the ICIR and sum to 1; if every model gets 0 the weights are equal.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from quant_assets.models.cross_section import cs_rank
from quant_assets.models.validation import CPCVResult, result_from_predictions


class RankEnsemble:
    """Weighted average of per-date cross-sectional ranks; ``weights`` are normalised to 1."""

    def __init__(self, weights: Mapping[str, float]) -> None:
        if not weights:
            raise ValueError("an ensemble needs at least one model")
        if any(not math.isfinite(w) or w < 0 for w in weights.values()):
            raise ValueError(f"weights must be finite and non-negative: {dict(weights)}")
        total = sum(weights.values())
        if total <= 0:
            raise ValueError("weights must not all be zero")
        self.weights: dict[str, float] = {name: w / total for name, w in weights.items()}

    @classmethod
    def from_validation(cls, rank_icir: Mapping[str, float]) -> RankEnsemble:
        """Weights proportional to max(Rank ICIR, 0) (NaN -> 0); all zero -> equal weights."""
        clipped = {
            name: value if math.isfinite(value) and value > 0 else 0.0
            for name, value in rank_icir.items()
        }
        if sum(clipped.values()) <= 0:
            clipped = dict.fromkeys(rank_icir, 1.0)
        return cls(clipped)

    def __repr__(self) -> str:
        return f"RankEnsemble({self.weights!r})"

    def combine(self, scores: Mapping[str, pd.Series]) -> pd.Series:
        """Ensemble score per row: the weighted mean of the models' cs ranks, in [-0.5, 0.5].

        ``scores`` maps each model name to a score Series on the panel index; models with
        weight 0 may be absent, the others must be present. Rows are the union of the inputs.
        """
        active = {name: w for name, w in self.weights.items() if w > 0}
        missing = set(active) - set(scores)
        if missing:
            raise KeyError(f"no scores for weighted models: {sorted(missing)}")
        ranks = pd.concat({name: cs_rank(scores[name]) for name in active}, axis=1)
        weights = pd.Series(active)
        present = ranks.notna()
        weighted = ranks.fillna(0.0).mul(weights, axis=1).sum(axis=1)
        total = present.mul(weights, axis=1).sum(axis=1)
        return (weighted / total.where(total > 0)).rename("ensemble")


def ensemble_cpcv(
    results: Mapping[str, CPCVResult], ensemble: RankEnsemble | None = None
) -> CPCVResult:
    """Evaluate a rank ensemble on the same CPCV paths as its members.

    Path ``p`` of the ensemble combines path ``p`` of every model, so each path stays
    out-of-sample. Without ``ensemble`` the weights come from each model's mean path Rank ICIR
    on these very paths, which makes the result optimistic (weights chosen on the evaluation
    data); pass weights from another validation window for an unbiased figure.
    """
    if not results:
        raise ValueError("no results to ensemble")
    first = next(iter(results.values()))
    for name, result in results.items():
        if not result.predictions.index.equals(first.predictions.index) or list(
            result.predictions.columns
        ) != list(first.predictions.columns):
            raise ValueError(f"{name} was not evaluated on the same rows and paths")
    if ensemble is None:
        ensemble = RankEnsemble.from_validation({n: r.rank_icir for n, r in results.items()})
    combined = pd.DataFrame(
        {
            path: ensemble.combine({n: r.predictions[path] for n, r in results.items()})
            for path in first.predictions.columns
        },
        index=first.predictions.index,
    )
    combined.columns.name = first.predictions.columns.name
    return result_from_predictions(combined, first.label, first.splits)
