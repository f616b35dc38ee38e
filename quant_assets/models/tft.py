"""``TemporalFusionAlpha``: a Temporal Fusion Transformer (pytorch-forecasting) as a sklearn estimator.

Same interface as the gradient-boosted estimators, so the ensemble and the CPCV code treat every
model alike::

    model = TemporalFusionAlpha(sectors={"AAPL": "Tech", ...})  # ticker -> sector (static)
    model.fit(X, y)               # X: (date, ticker) MultiIndex x float features, y: raw label
    scores = model.predict(X_new) # aligned to X_new's rows, NaN = no score
    model.interpretation(), model.feature_importances_, model.save_interpretation(dir)
    model.save(path); TemporalFusionAlpha.load(path)

``fit(X, y)`` / ``predict(X)`` are all that :func:`quant_assets.models.validation.cpcv_evaluate`
calls, so the sector (the static covariate) is a constructor parameter, ``sectors`` (a mapping
ticker -> sector): ``sklearn.base.clone`` carries it to every CV split, and X stays a frame of
float features shared with the GBDTs. ``fit`` / ``predict`` also accept ``static`` (a frame
indexed by ticker with a ``sector`` column) which, when given, replaces the mapping for that
call (``predict`` otherwise uses the mapping fitted with). A ticker without a sector, or an
unclassified one (``quant_core.sectors``), gets the "unknown" category; ``sectors=None`` and no
``static`` in ``fit`` trains without the static covariate.

The sample layout (and why the model never looks ahead)
-------------------------------------------------------
Each ticker is one series; its time index is the position of the date among X's sorted dates.
For ``(date d, ticker)`` the prediction is the normalised label of ``d`` (the 5-day forward excess
return from ``d``, ranked across tickers per date) made from an encoder window of the features on
the ``max_encoder_length`` sessions ending at ``d`` inclusive. pytorch-forecasting predicts a
*decoder* step from the encoder steps strictly before it, and feeds time-varying *unknown* reals
to the encoder only, so every series is laid out shifted by one step: internal row ``t + 1``
carries the label of date ``t`` and (as a decoder step) only the known real
``relative_time_idx``; internal row ``t`` carries the features of date ``t``. One pseudo row after
each ticker's last date makes the last date scorable. Consequences:

- the features an encoder sees for the prediction at ``d`` are those of dates ``<= d``, which the
  caller computes from bars up to ``d``'s close;
- the label is never an input: it is only the decoder target (``time_varying_unknown_reals`` is
  exactly the feature columns) and its normaliser is the identity, fitted on nothing, so no
  target statistic enters a sample (``add_target_scales=False``) - the label of ``d``, realised
  only after ``d + 5``, is never seen by any prediction;
- everything fitted (fill values, clipping bounds, the feature scalers, the sector encoder) comes
  from the training data in ``fit`` and is frozen for ``predict``; NaN features are forward-filled
  per ticker (causal) and then replaced by the training median; nothing in ``predict`` is
  estimated from the rows being scored, so a score for ``d`` does not change when data after ``d``
  changes (``tests/test_models_tft.py`` checks this).

A row gets a score once its ticker has ``min_encoder_length`` sessions up to and including it
(shorter encoders at the start of a series); earlier rows get NaN. ``predict`` sees only the rows
it is given, so pass the ``max_encoder_length - 1`` sessions before the first date to be scored
as well (in CPCV, where a test fold arrives alone, the first ``min_encoder_length - 1`` dates of
each fold are NaN and the IC summary skips them). Date positions are those of X's own sorted
dates: a CPCV training set with a test block cut out is treated as contiguous, so an encoder may
span the cut (older features, never newer ones). In ``fit``, rows whose label is NaN (not yet
realised, or missing) are not training samples but their features still feed the encoders of
later rows.

Labels are normalised cross-sectionally per date with
:func:`quant_assets.models.cross_section.normalise_label` (rank-Gauss by default, as the GBDTs),
and the network is trained with an RMSE loss on that target.

Device: ``accelerator="auto"`` (the default) trains and predicts on a CUDA GPU when one is
present, otherwise on the CPU; the defaults are sized for a 2-core CPU (hidden size 16, 6 epochs
of at most 150 batches of 128). Training is deterministic on CPU for a fixed ``random_state`` (on
a GPU, cuDNN's LSTM kernels may differ in the last bits): the seeds are set with
``lightning.seed_everything`` inside a block that restores the process's Python, NumPy and torch
RNG states afterwards, and the shuffling data loader has its own seeded ``torch.Generator``.
Lightning writes nothing (no logger, no checkpoints, no progress bar; its root dir is a
temporary directory that is removed).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.base import BaseEstimator, RegressorMixin

from quant_assets import charts
from quant_assets.models.cross_section import NormaliseMethod, normalise_label
from quant_core.sectors import classified_only

if TYPE_CHECKING:  # torch itself is imported where it runs: ~4 s off every code-location load
    import torch

_GROUP = "__ticker"
_TIME = "__t"
_TARGET = "__target"
_SECTOR = "sector"
_RELATIVE_TIME = "relative_time_idx"
_UNKNOWN_SECTOR = "__unknown__"
_FORMAT_VERSION = 1
_QUIET_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_forecasting")


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """``lightning.seed_everything(seed)`` with the global RNG states restored on exit."""
    import lightning
    import torch

    py_state, np_state = random.getstate(), np.random.get_state()
    env = os.environ.get("PL_GLOBAL_SEED")
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    try:
        with torch.random.fork_rng(devices=devices):
            lightning.seed_everything(seed, workers=False, verbose=False)
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        if env is None:
            os.environ.pop("PL_GLOBAL_SEED", None)
        else:
            os.environ["PL_GLOBAL_SEED"] = env


@contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """``torch.set_num_threads(n)`` for the block, restored on exit (None = leave as is)."""
    import torch

    before = torch.get_num_threads()
    try:
        if n is not None:
            torch.set_num_threads(n)
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence Lightning / pytorch-forecasting info logs and warnings, restoring levels on exit."""
    loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _to_device(x: Any, device: torch.device) -> Any:
    import torch

    if isinstance(x, torch.Tensor):
        return x.to(device)
    if isinstance(x, dict):
        return {k: _to_device(v, device) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return type(x)(_to_device(v, device) for v in x)
    return x


def _normalised(s: pd.Series) -> pd.Series:
    total = float(s.sum())
    return s / total if total > 0 else s


class TemporalFusionAlpha(BaseEstimator, RegressorMixin):
    """Temporal Fusion Transformer scoring (date, ticker) rows by their expected normalised label.

    Parameters (CPU-sized defaults; see ``benches/bench_tft.py``):
        max_encoder_length: sessions of feature history per prediction (the encoder window).
        min_encoder_length: fewest sessions a row needs to be scored (start of a series).
        hidden_size, attention_head_size, hidden_continuous_size, lstm_layers, dropout: TFT size.
        learning_rate: Adam's initial learning rate (cosine-decayed per epoch to a tenth).
        max_epochs: training epochs.
        batch_size: training batch size (prediction uses ``predict_batch_size``).
        limit_train_batches: batches per epoch (an int; each epoch reshuffles, so a cap is a fresh
            random subsample of the training samples every epoch); None = all.
        gradient_clip_val: gradient norm clip.
        clip_quantile: features are clipped to the training [q, 1 - q] quantiles (0 = off).
        interpretation_samples: training samples used for ``interpretation_``.
        normalisation: the per-date label normalisation (``cross_section.normalise_label``).
        sectors: ticker -> sector, the static covariate (None: no static covariate unless
            ``static`` is passed to ``fit``).
        accelerator: Lightning accelerator ("auto" uses a GPU when one is present).
        num_threads: torch intra-op CPU threads while fitting / predicting (the process setting
            is restored afterwards); 1 is fastest for a network this small, and far faster on a
            CPU shared with other jobs (OpenMP threads waiting on each other); None = unchanged.
        random_state: seed of weights, dropout and shuffling.
    """

    # The suggested inputs (the estimator itself reads whatever float columns X has): the
    # session's OHLCV made scale-free (open/high/low over close, body and range, volume over its
    # 5-day mean and std) and an Alpha158 subset of returns, trend, volatility and volume-price
    # features, short and 20-day windows only since the encoder already sees 20 sessions.
    DEFAULT_FEATURES: ClassVar[tuple[str, ...]] = (
        "OPEN0", "HIGH0", "LOW0", "KMID", "KLEN", "VMA5", "VSTD5",
        "ROC5", "ROC20", "MA5", "MA20", "STD5", "STD20",
        "RSV5", "CORR5", "CNTD5", "SUMD5", "WVMA5",
    )  # fmt: skip

    sectors_: dict[str, str] | None  # the ticker -> sector map fitted with (None: no static)

    def __init__(
        self,
        *,
        max_encoder_length: int = 20,
        min_encoder_length: int = 5,
        hidden_size: int = 16,
        attention_head_size: int = 2,
        hidden_continuous_size: int = 8,
        lstm_layers: int = 1,
        dropout: float = 0.1,
        learning_rate: float = 3e-3,
        max_epochs: int = 6,
        batch_size: int = 128,
        limit_train_batches: int | None = 150,
        predict_batch_size: int = 1024,
        gradient_clip_val: float = 0.1,
        clip_quantile: float = 0.001,
        interpretation_samples: int = 2048,
        normalisation: NormaliseMethod = "rank_gauss",
        sectors: Mapping[str, str] | None = None,
        accelerator: str = "auto",
        num_threads: int | None = 1,
        random_state: int = 0,
    ) -> None:
        self.max_encoder_length = max_encoder_length
        self.min_encoder_length = min_encoder_length
        self.hidden_size = hidden_size
        self.attention_head_size = attention_head_size
        self.hidden_continuous_size = hidden_continuous_size
        self.lstm_layers = lstm_layers
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.limit_train_batches = limit_train_batches
        self.predict_batch_size = predict_batch_size
        self.gradient_clip_val = gradient_clip_val
        self.clip_quantile = clip_quantile
        self.interpretation_samples = interpretation_samples
        self.normalisation = normalisation
        self.sectors = sectors
        self.accelerator = accelerator
        self.num_threads = num_threads
        self.random_state = random_state

    # ------------------------------------------------------------------ data layout

    @staticmethod
    def _check_index(X: pd.DataFrame) -> None:
        if not isinstance(X.index, pd.MultiIndex) or X.index.nlevels != 2:
            raise ValueError("X must have a (date, ticker) MultiIndex")
        if not X.index.is_monotonic_increasing:
            raise ValueError("X must be sorted by date then ticker")
        if X.index.has_duplicates:
            raise ValueError("X has duplicate (date, ticker) rows")

    def _internal_names(self) -> dict[str, str]:
        """Feature name -> internal column name (pytorch-forecasting needs plain identifiers)."""
        return {name: f"f{i}" for i, name in enumerate(self.feature_names_in_)}

    def _panel(
        self, X: pd.DataFrame, sectors: Mapping[str, str] | None, target: pd.Series | None
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The shifted per-ticker panel and the (ticker, t) key of every X row.

        Row ``t`` of a ticker holds the features of date position ``t``; its ``_TARGET`` is the
        normalised label of date position ``t - 1`` (0 where there is none); an extra pseudo row
        follows each ticker's last date. Returns (panel, keys) with keys aligned to X's rows and
        ``keys[_TIME] + 1`` the decoder row that scores each X row. ``target`` (the normalised
        label) only fills ``_TARGET``, which the network reads as the decoder target, never as
        an input."""
        names = self._internal_names()
        dates = X.index.get_level_values(0)
        tickers = X.index.get_level_values(1).astype(str)
        _, t = np.unique(dates.to_numpy(), return_inverse=True)
        keys = pd.DataFrame({_GROUP: tickers, _TIME: t.astype(np.int64)})
        values = X.set_axis([str(c) for c in X.columns], axis=1)[self.feature_names_in_].to_numpy(
            dtype=np.float64, copy=True
        )
        values[~np.isfinite(values)] = np.nan
        rows = pd.concat([keys, pd.DataFrame(values, columns=list(names.values()))], axis=1)
        rows["__label"] = np.nan if target is None else target.to_numpy(dtype=np.float64)
        # complete each ticker's range, plus one pseudo row after its last date
        span = keys.groupby(_GROUP, sort=True)[_TIME].agg(["min", "max"])
        lengths = (span["max"] - span["min"] + 2).to_numpy()
        grid = pd.DataFrame(
            {
                _GROUP: np.repeat(span.index.to_numpy(), lengths),
                _TIME: np.concatenate(
                    [np.arange(a, b + 2) for a, b in zip(span["min"], span["max"], strict=True)]
                ),
            }
        )
        panel = grid.merge(rows, on=[_GROUP, _TIME], how="left", sort=False)
        feats = list(names.values())
        panel[feats] = panel.groupby(_GROUP, sort=False)[feats].ffill()
        panel[feats] = panel[feats].fillna(pd.Series(self.fill_values_, index=feats))
        panel[feats] = panel[feats].clip(
            lower=pd.Series(self.clip_low_, index=feats),
            upper=pd.Series(self.clip_high_, index=feats),
            axis=1,
        )
        label = panel.groupby(_GROUP, sort=False)["__label"].shift(1)
        panel["__has_label"] = label.notna()
        panel[_TARGET] = label.fillna(0.0).astype(np.float32)
        panel[feats] = panel[feats].astype(np.float32)
        panel = panel.drop(columns="__label")
        if self.has_static_:
            # an unclassified name's sector is missing, never a category of its own
            lookup = pd.Series(classified_only(sectors or {}), dtype=object)
            panel[_SECTOR] = panel[_GROUP].map(lookup).fillna(_UNKNOWN_SECTOR).astype(str)
        return panel, keys

    def _sector_map(self, static: pd.DataFrame | None) -> dict[str, str] | None:
        """ticker -> sector from ``static`` when given, else the fitted (or constructor) map."""
        if static is not None:
            if _SECTOR not in static.columns:
                raise ValueError(f"static needs a {_SECTOR!r} column indexed by ticker")
            column = static[_SECTOR]
            return {str(k): str(v) for k, v in column.items() if pd.notna(v)}
        fitted = getattr(self, "sectors_", None)
        if fitted is not None:
            return fitted
        if self.sectors is None:
            return None
        return {str(k): str(v) for k, v in self.sectors.items()}

    @staticmethod
    def _keys_in(index: pd.DataFrame, keys: pd.Index) -> np.ndarray:
        """Which samples of a dataset index decode the (ticker, time) rows in ``keys``."""
        decoded = pd.MultiIndex.from_arrays(
            [index[_GROUP].astype(str), index["time_idx_first_prediction"].astype(np.int64)]
        )
        return np.asarray(decoded.isin(keys))

    @staticmethod
    def _one_per_decoder(index: pd.DataFrame) -> np.ndarray:
        """Mask keeping, per (ticker, decoder step), the sample with the longest encoder."""
        longest = index.groupby([_GROUP, "time_idx_first_prediction"])["time_idx_first"]
        return (index["time_idx_first"] == longest.transform("min")).to_numpy()

    # ------------------------------------------------------------------ fit

    def fit(
        self, X: pd.DataFrame, y: pd.Series, static: pd.DataFrame | None = None
    ) -> TemporalFusionAlpha:
        """Train on (date, ticker) rows; ``y`` is the raw label (reindexed to X; NaN = unknown).

        ``static`` (ticker-indexed, a ``sector`` column) overrides the ``sectors`` parameter."""
        self._check_index(X)
        if not y.index.equals(X.index):
            y = y.reindex(X.index)
        if self.min_encoder_length < 1 or self.min_encoder_length > self.max_encoder_length:
            raise ValueError("need 1 <= min_encoder_length <= max_encoder_length")
        self._fit_preprocessing(X, static)
        panel, _ = self._panel(
            X, self.sectors_, normalise_label(y.astype(np.float64), self.normalisation)
        )
        dataset, train = self._training_samples(panel)
        self.dataset_parameters_ = dataset.get_parameters()
        self.n_train_samples_ = len(train)
        model = self._train_network(dataset, train).cpu().eval()
        self.model_ = model
        self.n_parameters_ = int(sum(p.numel() for p in model.parameters()))
        with _threads(self.num_threads):
            self.interpretation_ = self._interpret(train)
        return self

    def _fit_preprocessing(self, X: pd.DataFrame, static: pd.DataFrame | None) -> None:
        """Fit everything the panel is built with: the feature names, the sector map, each
        feature's fill value (training median) and clipping bounds (training quantiles)."""
        self.feature_names_in_ = [str(c) for c in X.columns]
        self.n_features_in_ = len(self.feature_names_in_)
        if hasattr(self, "sectors_"):
            del self.sectors_  # a re-fit resolves the sectors afresh
        self.sectors_ = self._sector_map(static)
        self.has_static_ = self.sectors_ is not None
        values = X.to_numpy(dtype=np.float64, copy=True)
        values[~np.isfinite(values)] = np.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
            self.fill_values_ = np.nan_to_num(np.nanmedian(values, axis=0))
            q = self.clip_quantile
            if q > 0:
                low, high = np.nanquantile(values, [q, 1.0 - q], axis=0)
            else:
                low = high = np.full(values.shape[1], np.nan)
        self.clip_low_ = np.where(np.isfinite(low), low, -np.inf)
        self.clip_high_ = np.where(np.isfinite(high), high, np.inf)

    def _training_samples(self, panel: pd.DataFrame) -> tuple[Any, Any]:
        """(the ``TimeSeriesDataSet`` of the training panel, its training samples: one per
        labelled decoder step, with the longest encoder)."""
        from pytorch_forecasting import TimeSeriesDataSet
        from pytorch_forecasting.data import NaNLabelEncoder, TorchNormalizer

        feats = list(self._internal_names().values())
        encoders: dict[str, Any] = {}
        if self.has_static_:
            encoders[_SECTOR] = NaNLabelEncoder(add_nan=True)
        with _quiet():
            dataset = TimeSeriesDataSet(
                panel,
                time_idx=_TIME,
                target=_TARGET,
                group_ids=[_GROUP],
                max_encoder_length=self.max_encoder_length,
                min_encoder_length=self.min_encoder_length,
                max_prediction_length=1,
                static_categoricals=[_SECTOR] if self.has_static_ else [],
                time_varying_unknown_reals=feats,
                target_normalizer=TorchNormalizer(method="identity", center=False),
                categorical_encoders=encoders,
                add_relative_time_idx=True,
                add_target_scales=False,
                add_encoder_length=False,
            )
        labelled = panel.loc[panel["__has_label"], [_GROUP, _TIME]]
        labelled_keys = pd.MultiIndex.from_arrays([labelled[_GROUP], labelled[_TIME]])

        def training_samples(index: pd.DataFrame) -> np.ndarray:
            return self._one_per_decoder(index) & self._keys_in(index, labelled_keys)

        return dataset, dataset.filter(training_samples)

    def _train_network(self, dataset: Any, train: Any) -> Any:
        """A TFT sized from ``dataset``, trained on ``train`` (seeded, quiet, nothing written)."""
        import torch
        from lightning.pytorch import Trainer
        from pytorch_forecasting import TemporalFusionTransformer
        from pytorch_forecasting.metrics import RMSE

        with (
            _seeded(self.random_state),
            _threads(self.num_threads),
            _quiet(),
            tempfile.TemporaryDirectory() as tmp,
        ):
            model = TemporalFusionTransformer.from_dataset(
                dataset,
                hidden_size=self.hidden_size,
                attention_head_size=self.attention_head_size,
                hidden_continuous_size=self.hidden_continuous_size,
                lstm_layers=self.lstm_layers,
                dropout=self.dropout,
                learning_rate=self._learning_rates(),
                loss=RMSE(),
                optimizer="adam",
                log_interval=-1,
                logging_metrics=torch.nn.ModuleList(),
            )
            loader = train.to_dataloader(
                train=True,
                batch_size=self.batch_size,
                num_workers=0,
                generator=torch.Generator().manual_seed(self.random_state),
            )
            trainer = Trainer(
                max_epochs=self.max_epochs,
                accelerator=self.accelerator,
                devices=1,
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
                default_root_dir=tmp,
                gradient_clip_val=self.gradient_clip_val,
                limit_train_batches=self.limit_train_batches,
                num_sanity_val_steps=0,
            )
            trainer.fit(model, train_dataloaders=loader)
        return model

    def _learning_rates(self) -> list[float]:
        """Per-epoch learning rates: a cosine decay from ``learning_rate`` to a tenth of it."""
        epochs = max(1, self.max_epochs)
        return [
            self.learning_rate * (0.1 + 0.45 * (1.0 + math.cos(math.pi * e / epochs)))
            for e in range(epochs)
        ]

    # ------------------------------------------------------------------ predict

    def _device(self) -> torch.device:
        import torch

        if self.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")

    def predict(self, X: pd.DataFrame, static: pd.DataFrame | None = None) -> np.ndarray:
        """Scores aligned to X's rows; NaN for rows with < ``min_encoder_length`` sessions.

        The score of a (date, ticker) row depends only on X's rows of that ticker up to that
        date. ``static`` overrides the fitted ticker -> sector map for this call."""
        self._check_fitted()
        self._check_index(X)
        missing = sorted(set(self.feature_names_in_) - {str(c) for c in X.columns})
        if missing:
            raise ValueError(f"X lacks the training features {missing}")
        if len(X) == 0:
            return np.full(0, np.nan)
        panel, keys = self._panel(X, self._sector_map(static), None)
        return self._score(panel, keys)

    def _score(self, panel: pd.DataFrame, keys: pd.DataFrame) -> np.ndarray:
        """Network output for each row of ``keys`` from a panel built by :meth:`_panel`."""
        import torch
        from pytorch_forecasting import TimeSeriesDataSet

        out = np.full(len(keys), np.nan)
        with _quiet():
            dataset = TimeSeriesDataSet.from_parameters(
                self.dataset_parameters_, panel, predict=False, stop_randomization=True
            )
        row_of = pd.Series(
            np.arange(len(keys)),
            index=pd.MultiIndex.from_arrays([keys[_GROUP], keys[_TIME] + 1]),
        )
        scored = row_of.index

        def scoring_samples(index: pd.DataFrame) -> np.ndarray:
            return self._one_per_decoder(index) & self._keys_in(index, scored)

        try:
            dataset = dataset.filter(scoring_samples)
        except ValueError:  # no row has a long enough history
            return out
        device = self._device()
        model = self.model_.to(device).eval()
        loader = dataset.to_dataloader(
            train=False, batch_size=self.predict_batch_size, num_workers=0
        )
        with _threads(self.num_threads), _quiet(), torch.no_grad():
            for x, _ in loader:
                prediction = model(_to_device(x, device))["prediction"][:, 0, 0].cpu().numpy()
                index = dataset.x_to_index(x)
                rows = row_of.loc[
                    pd.MultiIndex.from_arrays([index[_GROUP].astype(str), index[_TIME]])
                ].to_numpy()
                out[rows] = prediction
        self.model_ = model.cpu()
        return out

    # ------------------------------------------------------------------ interpretation

    def _interpret(self, dataset: Any) -> dict[str, pd.Series]:
        """Normalised ``interpret_output(reduction="sum")`` summed over a training sample."""
        import torch

        n = len(dataset)
        take = min(n, self.interpretation_samples)
        chosen = np.zeros(n, dtype=bool)
        chosen[np.random.default_rng(self.random_state).choice(n, size=take, replace=False)] = True
        subset = dataset.filter(lambda index: chosen, copy=True)
        loader = subset.to_dataloader(train=False, batch_size=self.predict_batch_size)
        model = self.model_
        totals: dict[str, torch.Tensor] = {}
        with _quiet(), torch.no_grad():
            for x, _ in loader:
                parts = model.interpret_output(model(x), reduction="sum")
                for key in ("attention", "static_variables", "encoder_variables"):
                    value = torch.nan_to_num(parts[key].detach().float())
                    totals[key] = totals[key] + value if key in totals else value
                dec = torch.nan_to_num(parts["decoder_variables"].detach().float())
                totals["decoder_variables"] = (
                    totals["decoder_variables"] + dec if "decoder_variables" in totals else dec
                )
        rename = {v: k for k, v in self._internal_names().items()}

        def series(key: str, names: Sequence[str]) -> pd.Series:
            values = totals[key].cpu().numpy() if key in totals else np.zeros(len(names))
            s = pd.Series(values[: len(names)], index=[rename.get(n, n) for n in names])
            return _normalised(s.astype(np.float64))

        attention = totals["attention"].cpu().numpy()
        positions = np.arange(-len(attention), 0) + 1  # 0 = the date being scored
        return {
            "encoder_variable_importance": series(
                "encoder_variables", model.encoder_variables
            ).sort_values(ascending=False),
            "decoder_variable_importance": series(
                "decoder_variables", model.decoder_variables
            ).sort_values(ascending=False),
            "static_variable_importance": series(
                "static_variables", model.static_variables
            ).sort_values(ascending=False),
            "attention": _normalised(
                pd.Series(attention, index=pd.Index(positions, name="encoder_position"))
            ),
        }

    @property
    def feature_importances_(self) -> pd.Series:
        """Encoder variable importance of the features, largest first (as the GBDTs' gain)."""
        self._check_fitted()
        importance = self.interpretation_["encoder_variable_importance"]
        return (
            importance.reindex(self.feature_names_in_)
            .fillna(0.0)
            .sort_values(ascending=False)
            .rename("encoder_importance")
        )

    def interpretation(self) -> dict[str, pd.DataFrame]:
        """``interpretation_`` as flat frames, ready for ``mlflow.log_table`` or a CSV artifact.

        ``{encoder,decoder,static}_variable_importance``: columns ``variable``, ``importance``
        (shares of the TFT's variable-selection weights over a training sample, summing to 1,
        largest first); ``attention``: columns ``encoder_position`` (0 = the scored date, -1 the
        session before, ...) and ``attention`` (share of the attention weight, summing to 1)."""
        self._check_fitted()
        frames: dict[str, pd.DataFrame] = {}
        for key, part in self.interpretation_.items():
            if key == "attention":
                index_name, value_name = "encoder_position", "attention"
            else:
                index_name, value_name = "variable", "importance"
            frames[key] = (
                part.astype(np.float64).rename(value_name).rename_axis(index_name).reset_index()
            )
        return frames

    def save_interpretation(self, directory: str | Path) -> list[Path]:
        """Write :meth:`interpretation` as JSON + one CSV per part + a PNG plot (a directory to
        hand to ``mlflow.log_artifacts``); returns the paths."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths: list[Path] = []
        as_json = {
            key: {str(k): float(v) for k, v in s.items()} for key, s in self.interpretation_.items()
        }
        json_path = directory / "tft_interpretation.json"
        json_path.write_text(json.dumps(as_json, indent=2))
        paths.append(json_path)
        for key, frame in self.interpretation().items():
            csv_path = directory / f"tft_{key}.csv"
            frame.to_csv(csv_path, index=False)
            paths.append(csv_path)
        paths.append(
            charts.save_png(self._interpretation_figure(), directory / "tft_interpretation.png")
        )
        return paths

    def _interpretation_figure(self) -> Figure:
        """Four panels: encoder, decoder and static variable importance, attention by position."""
        figure, axes = charts.figure(12, 8, rows=2, cols=2)
        panels = [
            ("encoder_variable_importance", "Encoder variable importance"),
            ("decoder_variable_importance", "Decoder variable importance"),
            ("static_variable_importance", "Static variable importance"),
        ]
        for axis, (key, title) in zip(axes.flat, panels, strict=False):
            s = self.interpretation_[key].sort_values()
            axis.barh([str(i) for i in s.index], s.to_numpy(), color=charts.BLUE)
            charts.title(axis, title)
        attention = self.interpretation_["attention"]
        axis = axes.flat[3]
        axis.plot(attention.index.to_numpy(), attention.to_numpy(), marker="o", color=charts.BLUE)
        charts.title(axis, "Mean attention by encoder position (0 = scored date)")
        axis.set_xlabel("session relative to the scored date", fontsize=charts.TICK_SIZE)
        return figure

    # ------------------------------------------------------------------ persistence

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise RuntimeError("TemporalFusionAlpha is not fitted")

    def save(self, path: str | Path) -> Path:
        """Save constructor params, fitted preprocessing, dataset parameters and weights."""
        import torch

        self._check_fitted()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "format_version": _FORMAT_VERSION,
            "params": self.get_params(),
            "feature_names_in": list(self.feature_names_in_),
            "has_static": self.has_static_,
            "sectors": self.sectors_,
            "fill_values": self.fill_values_,
            "clip_low": self.clip_low_,
            "clip_high": self.clip_high_,
            "n_train_samples": self.n_train_samples_,
            "dataset_parameters": self.dataset_parameters_,
            "model_hparams": dict(self.model_.hparams),
            "state_dict": self.model_.state_dict(),
            "interpretation": self.interpretation_,
        }
        torch.save(state, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> TemporalFusionAlpha:
        """Rebuild a model written by :meth:`save` (a trusted file: it is unpickled)."""
        import torch
        from pytorch_forecasting import TemporalFusionTransformer

        state = torch.load(Path(path), map_location="cpu", weights_only=False)
        if state.get("format_version") != _FORMAT_VERSION:
            raise ValueError(f"unsupported TemporalFusionAlpha file version in {path}")
        est = cls(**state["params"])
        est.feature_names_in_ = list(state["feature_names_in"])
        est.n_features_in_ = len(est.feature_names_in_)
        est.has_static_ = state["has_static"]
        est.sectors_ = state["sectors"]
        est.fill_values_ = state["fill_values"]
        est.clip_low_ = state["clip_low"]
        est.clip_high_ = state["clip_high"]
        est.n_train_samples_ = state["n_train_samples"]
        est.dataset_parameters_ = state["dataset_parameters"]
        with _quiet():
            model = TemporalFusionTransformer(**state["model_hparams"])
        model.load_state_dict(state["state_dict"])
        est.model_ = model.eval()
        est.n_parameters_ = int(sum(p.numel() for p in model.parameters()))
        est.interpretation_ = state["interpretation"]
        return est


__all__ = ["TemporalFusionAlpha"]
