"""Gradient-boosted tree alpha models with a scikit-learn interface: LightGBM and CatBoost.

Both estimators take the panel ``X`` (DataFrame on a (date, ticker) MultiIndex, float features,
NaN allowed) and the raw label ``y`` (5-day forward excess return). ``fit`` normalises ``y``
within each date (:func:`quant_assets.models.cross_section.normalise_label`), drops rows whose
label is NaN and trains an L2 regressor on the normalised target; ``predict`` returns scores
whose cross-sectional ordering is the signal (their scale is the normalised label's, not a
return).

Defaults are CPU-sized: a weekly CPCV run (15 splits + 1 final fit per model) on 500 tickers x
756 sessions x 158 features must finish in minutes on 2 cores (benches/bench_training.py), so the
trees are small (LightGBM 15 leaves, CatBoost depth 6), features and rows are subsampled per tree
and features are binned coarsely (31 LightGBM bins from a 50,000-row sample, 32 CatBoost
borders: returns-based features carry far less than 5 bits of signal per split). On the
synthetic market these defaults were both faster and better out-of-sample than the previous
ones (31 leaves, 200 trees, 63 bins: LightGBM CPCV rank IC 0.0296 vs 0.0213), the larger trees
fitting noise; see the figures in benches/bench_training.py. These are the defaults before any
selection; on real data the stored model selection chooses among them and other presets
(``quant_assets.models.selection.PARAMS``), and on the shared real sample it chose the slower
learning rate with fewer features per tree for every evaluation year (README, "Model quality on
real US equities").

Options chosen by the model selection on real data (``quant_assets.models.selection``), off by
default: ``feature_normalisation`` maps each feature within each date to its gaussianised rank or
winsorised robust z-score (at ``feature_clip``) before fitting and predicting
(:func:`~quant_assets.models.cross_section.normalise_features`); ``recency_half_life`` weights
each training row by ``0.5 ** (age / half_life)``, ``age`` the number of the window's sessions
after the row's.

Early stopping (off by default) holds out a time-ordered tail of the TRAINING dates, separated
from the fitting dates by ``label_horizon`` sessions so no fitting label overlaps a validation
label; the test fold of a CV split is never seen. The returned model is the one trained on the
head of the dates, stopped at the best iteration on the tail.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin

from quant_assets.models.cross_section import (
    FeatureNormalisation,
    NormaliseMethod,
    normalise_features,
    normalise_label,
)
from quant_core.conventions import LABEL_HORIZON_SESSIONS


def _threads(n_jobs: int) -> int:
    # -1 (or any non-positive value) means every core the process may use
    if n_jobs > 0:
        return n_jobs
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _check_panel(X: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(X, pd.DataFrame) or not isinstance(X.index, pd.MultiIndex):
        raise TypeError("X must be a DataFrame on a (date, ticker) MultiIndex")
    return X


def _time_tail_split(dates: pd.Index, fraction: float, gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Row masks (fit, valid): the last ``fraction`` of unique dates validate, ``gap`` dates
    before them are dropped so no fitting label window reaches into the validation ones."""
    unique = np.unique(dates.to_numpy())
    n_valid = max(1, round(len(unique) * fraction))
    if len(unique) - n_valid - gap < 1:
        raise ValueError("too few training dates for the early-stopping tail")
    valid_start = unique[len(unique) - n_valid]
    fit_end = unique[len(unique) - n_valid - gap - 1]
    values = dates.to_numpy()
    return values <= fit_end, values >= valid_start


def recency_weights(dates: pd.Index, half_life: float | None) -> np.ndarray | None:
    """``0.5 ** (age / half_life)`` per row, ``age`` = the number of distinct dates after the
    row's; None without a half-life (equal weights)."""
    if half_life is None:
        return None
    unique, codes = np.unique(dates.to_numpy(), return_inverse=True)
    age = (len(unique) - 1 - codes).astype(np.float64)
    return np.power(0.5, age / half_life)


class _GBDTAlpha(BaseEstimator, RegressorMixin):
    """Shared fit/predict plumbing; subclasses define their constructor and the library calls."""

    normalisation: NormaliseMethod
    feature_normalisation: FeatureNormalisation
    feature_clip: float
    recency_half_life: float | None
    early_stopping_rounds: int | None
    validation_fraction: float
    label_horizon: int

    feature_names_in_: list[str]
    feature_importances_: pd.Series
    expected_value_: float

    def fit(self, X: pd.DataFrame, y: pd.Series) -> _GBDTAlpha:
        X = _check_panel(X)
        if not X.index.equals(y.index):
            y = y.reindex(X.index)
        target = normalise_label(y, self.normalisation)
        keep = target.notna().to_numpy()
        X, target = X[keep], target[keep]
        self.feature_names_in_ = [str(c) for c in X.columns]
        features = self._normalised(X)
        values = target.to_numpy(dtype=np.float64)
        weights = recency_weights(X.index.get_level_values(0), self.recency_half_life)
        if self.early_stopping_rounds:
            fit_rows, valid_rows = _time_tail_split(
                X.index.get_level_values(0), self.validation_fraction, self.label_horizon
            )
            self._fit_library(
                features[fit_rows],
                values[fit_rows],
                (features[valid_rows], values[valid_rows]),
                None if weights is None else weights[fit_rows],
            )
        else:
            self._fit_library(features, values, None, weights)
        self.feature_importances_ = pd.Series(
            self._gain(), index=self.feature_names_in_, name="gain"
        ).sort_values(ascending=False)
        # the SHAP bias term is the same for every row: take it from one row once
        self.expected_value_ = float(self._contributions(features[:1])[0, -1])
        return self

    def _features(self, X: pd.DataFrame) -> np.ndarray:
        X = _check_panel(X)
        missing = set(self.feature_names_in_) - {str(c) for c in X.columns}
        if missing:
            raise ValueError(f"X lacks fitted features: {sorted(missing)[:5]}")
        return self._normalised(X[self.feature_names_in_])

    def _normalised(self, X: pd.DataFrame) -> np.ndarray:
        # a bundle pickled before the option existed has no attribute: it never normalised
        method: FeatureNormalisation = getattr(self, "feature_normalisation", "none")
        return normalise_features(X, method, getattr(self, "feature_clip", 3.0)).to_numpy(
            dtype=np.float32
        )

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Scores, one per row of ``X`` (higher = expected to outperform within the date)."""
        return self._predict(self._features(X))

    def shap_values(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per-row, per-feature SHAP contributions (TreeSHAP, on the model's output scale).

        Each row plus ``expected_value_`` sums to ``predict`` of that row.
        """
        contrib = self._contributions(self._features(X))
        return pd.DataFrame(contrib[:, :-1], index=X.index, columns=self.feature_names_in_)

    def shap_summary(self, X: pd.DataFrame) -> pd.Series:
        """Mean |SHAP| per feature over the rows of ``X``, largest first."""
        return self.shap_values(X).abs().mean().sort_values(ascending=False).rename("mean_abs_shap")

    def _fit_library(
        self,
        features: np.ndarray,
        target: np.ndarray,
        valid: tuple[np.ndarray, np.ndarray] | None,
        weights: np.ndarray | None,
    ) -> None:
        raise NotImplementedError

    def _predict(self, features: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _contributions(self, features: np.ndarray) -> np.ndarray:
        """(n_rows, n_features + 1): per-feature contributions, last column the bias."""
        raise NotImplementedError

    def _gain(self) -> np.ndarray:
        raise NotImplementedError


class LightGBMAlpha(_GBDTAlpha):
    """LightGBM regressor on the cross-sectionally normalised label.

    ``n_jobs=-1`` uses every available core. ``feature_fraction`` / ``bagging_fraction`` are
    per-tree column / row subsampling; ``min_child_samples`` is large because a leaf of a few
    rows on a noisy panel is pure noise. ``bin_sample`` is the number of rows LightGBM samples
    to place its bin edges (``bin_construct_sample_cnt``): 31 quantile edges are well placed
    from 50,000 rows, and sampling 200,000 (LightGBM's default) costs seconds per fit on the
    weekly panel. Importances are total split gain.
    """

    def __init__(
        self,
        n_estimators: int = 150,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        max_depth: int = -1,
        min_child_samples: int = 500,
        feature_fraction: float = 0.3,
        bagging_fraction: float = 0.5,
        lambda_l2: float = 10.0,
        max_bin: int = 31,
        bin_sample: int = 50_000,
        normalisation: NormaliseMethod = "rank_gauss",
        feature_normalisation: FeatureNormalisation = "none",
        feature_clip: float = 3.0,
        recency_half_life: float | None = None,
        early_stopping_rounds: int | None = None,
        validation_fraction: float = 0.2,
        label_horizon: int = LABEL_HORIZON_SESSIONS,
        n_jobs: int = -1,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.max_depth = max_depth
        self.min_child_samples = min_child_samples
        self.feature_fraction = feature_fraction
        self.bagging_fraction = bagging_fraction
        self.lambda_l2 = lambda_l2
        self.max_bin = max_bin
        self.bin_sample = bin_sample
        self.normalisation = normalisation
        self.feature_normalisation = feature_normalisation
        self.feature_clip = feature_clip
        self.recency_half_life = recency_half_life
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.label_horizon = label_horizon
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _params(self) -> dict[str, Any]:
        return {
            "objective": "regression",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "max_depth": self.max_depth,
            "min_data_in_leaf": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1 if self.bagging_fraction < 1.0 else 0,
            "lambda_l2": self.lambda_l2,
            "max_bin": self.max_bin,
            "bin_construct_sample_cnt": self.bin_sample,
            "num_threads": _threads(self.n_jobs),
            "seed": self.random_state,
            # bit-for-bit reproducible for a fixed seed and thread count
            "deterministic": True,
            "force_col_wise": True,
            "verbosity": -1,
        }

    def _fit_library(
        self,
        features: np.ndarray,
        target: np.ndarray,
        valid: tuple[np.ndarray, np.ndarray] | None,
        weights: np.ndarray | None,
    ) -> None:
        import lightgbm as lgb

        params = self._params()
        train = lgb.Dataset(
            features,
            target,
            weight=weights,
            feature_name=self.feature_names_in_,
            params={"max_bin": self.max_bin, "bin_construct_sample_cnt": self.bin_sample},
        )
        callbacks: list[Callable[..., Any]] = []
        valid_sets: list[lgb.Dataset] = []
        if valid is not None and self.early_stopping_rounds:
            valid_sets = [lgb.Dataset(valid[0], valid[1], reference=train)]
            callbacks = [lgb.early_stopping(self.early_stopping_rounds, verbose=False)]
        self.booster_ = lgb.train(
            params,
            train,
            num_boost_round=self.n_estimators,
            valid_sets=valid_sets,
            callbacks=callbacks,
        )
        best = self.booster_.best_iteration
        self.best_iteration_ = int(best) if best and best > 0 else self.n_estimators

    def _predict(self, features: np.ndarray) -> np.ndarray:
        out = self.booster_.predict(
            features, num_iteration=self.best_iteration_, num_threads=_threads(self.n_jobs)
        )
        return np.asarray(out, dtype=np.float64)

    def _contributions(self, features: np.ndarray) -> np.ndarray:
        out = self.booster_.predict(
            features,
            num_iteration=self.best_iteration_,
            pred_contrib=True,
            num_threads=_threads(self.n_jobs),
        )
        return np.asarray(out, dtype=np.float64)

    def _gain(self) -> np.ndarray:
        return np.asarray(
            self.booster_.feature_importance(
                importance_type="gain", iteration=self.best_iteration_
            ),
            dtype=np.float64,
        )


class CatBoostAlpha(_GBDTAlpha):
    """CatBoost regressor (oblivious trees) on the cross-sectionally normalised label.

    ``n_jobs`` is CatBoost's ``thread_count`` (-1: every core). ``rsm`` is the per-split
    feature subsample, ``subsample`` the Bernoulli row subsample per tree. Importances are
    ``PredictionValuesChange``, CatBoost's gain-like measure (how much the prediction moves
    on average when the feature's splits change), normalised to sum to 100.
    """

    def __init__(
        self,
        iterations: int = 150,
        learning_rate: float = 0.1,
        depth: int = 6,
        l2_leaf_reg: float = 10.0,
        rsm: float = 0.3,
        subsample: float = 0.3,
        border_count: int = 32,
        normalisation: NormaliseMethod = "rank_gauss",
        feature_normalisation: FeatureNormalisation = "none",
        feature_clip: float = 3.0,
        recency_half_life: float | None = None,
        early_stopping_rounds: int | None = None,
        validation_fraction: float = 0.2,
        label_horizon: int = LABEL_HORIZON_SESSIONS,
        n_jobs: int = -1,
        random_state: int = 0,
    ) -> None:
        self.iterations = iterations
        self.learning_rate = learning_rate
        self.depth = depth
        self.l2_leaf_reg = l2_leaf_reg
        self.rsm = rsm
        self.subsample = subsample
        self.border_count = border_count
        self.normalisation = normalisation
        self.feature_normalisation = feature_normalisation
        self.feature_clip = feature_clip
        self.recency_half_life = recency_half_life
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.label_horizon = label_horizon
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _fit_library(
        self,
        features: np.ndarray,
        target: np.ndarray,
        valid: tuple[np.ndarray, np.ndarray] | None,
        weights: np.ndarray | None,
    ) -> None:
        from catboost import CatBoostRegressor, Pool

        model = CatBoostRegressor(
            iterations=self.iterations,
            learning_rate=self.learning_rate,
            depth=self.depth,
            l2_leaf_reg=self.l2_leaf_reg,
            rsm=self.rsm,
            bootstrap_type="Bernoulli",
            subsample=self.subsample,
            border_count=self.border_count,
            loss_function="RMSE",
            thread_count=_threads(self.n_jobs),
            random_seed=self.random_state,
            verbose=False,
            allow_writing_files=False,
        )
        train = Pool(features, target, weight=weights, feature_names=self.feature_names_in_)
        eval_set = None
        if valid is not None and self.early_stopping_rounds:
            eval_set = Pool(valid[0], valid[1], feature_names=self.feature_names_in_)
        model.fit(
            train,
            eval_set=eval_set,
            early_stopping_rounds=self.early_stopping_rounds if eval_set is not None else None,
            use_best_model=eval_set is not None,
        )
        self.model_ = model
        self.best_iteration_ = int(model.tree_count_)

    def _pool(self, features: np.ndarray) -> Any:
        from catboost import Pool

        return Pool(features, feature_names=self.feature_names_in_)

    def _predict(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(
            self.model_.predict(self._pool(features), thread_count=_threads(self.n_jobs)),
            dtype=np.float64,
        )

    def _contributions(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(
            self.model_.get_feature_importance(
                self._pool(features), type="ShapValues", thread_count=_threads(self.n_jobs)
            ),
            dtype=np.float64,
        )

    def _gain(self) -> np.ndarray:
        return np.asarray(
            self.model_.get_feature_importance(type="PredictionValuesChange"), dtype=np.float64
        )
