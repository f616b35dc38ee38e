"""A deterministic offline stand-in for FRED: plausible macro series without a key or network.

Every series is simulated from a fixed origin (1990-01-01) with a random stream seeded by
``(seed, series)``, then sliced to the requested window, so a value depends only on
(seed, series, date), never on the window asked for.

- ``DGS10``: mean-reverting (Ornstein-Uhlenbeck) level around 3.5%, mostly within 2-5%.
- ``DGS2``: ``DGS10`` minus a mean-reverting spread around 0.9pp (inversions happen), >= 0.05%.
- ``T10Y2Y``: exactly ``DGS10 - DGS2`` of the rounded yields (all three in 2 decimals, as FRED).
- ``VIXCLS``: mean-reverting log process around 18, mostly within 12-40 (clipped to 9-80).
- ``UNRATE``: monthly, 0.1pp steps mean-reverting to 5.5%, within 3.4-10%; dated the first day
  of each month, as FRED dates it (the reference month).

Daily series are on business days (Monday-Friday; exchange holidays are not modelled).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from datetime import date

import numpy as np
import polars as pl

from resources.macro.base import MACRO_SERIES_IDS, conform_macro, empty_macro
from resources.market_data.base import ProviderError

ORIGIN = date(1990, 1, 1)
DAILY = ("DGS10", "DGS2", "T10Y2Y", "VIXCLS")
MONTHLY = ("UNRATE",)


class OfflineMacroProvider:
    """``MacroProvider`` producing the five ``MACRO_SERIES_IDS`` deterministically."""

    name = "offline"

    def __init__(self, seed: int = 7) -> None:
        self.seed = int(seed)
        self._daily: pl.DataFrame | None = None
        self._monthly: pl.DataFrame | None = None
        self._horizon: date | None = None

    def fetch(self, series_ids: Sequence[str], start: date, end: date) -> pl.DataFrame:
        ids = list(dict.fromkeys(series_ids))
        unknown = [s for s in ids if s not in MACRO_SERIES_IDS]
        if unknown:
            raise ProviderError(
                f"offline macro provider has no series {unknown}; it serves {MACRO_SERIES_IDS}"
            )
        if not ids or start >= end or end <= ORIGIN:
            return empty_macro()
        daily, monthly = self._simulate(end)
        frame = pl.concat([daily, monthly], how="vertical").filter(
            pl.col("series_id").is_in(ids) & (pl.col("date") >= start) & (pl.col("date") < end)
        )
        return conform_macro(frame)

    # ------------------------------------------------------------------ simulation

    def _simulate(self, end: date) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Series from ORIGIN up to at least ``end``; extended (by whole years) when needed.
        Paths are prefix-stable: a longer simulation starts with the shorter one."""
        if self._horizon is None or end > self._horizon:
            horizon = date(max(end.year + 1, 2030), 1, 1)
            self._daily = self._simulate_daily(horizon)
            self._monthly = self._simulate_monthly(horizon)
            self._horizon = horizon
        assert self._daily is not None and self._monthly is not None
        return self._daily, self._monthly

    def _normals(self, series: str, n: int) -> np.ndarray:
        key = zlib.crc32(series.encode())
        return np.random.default_rng(np.random.SeedSequence([self.seed, key])).standard_normal(n)

    def _simulate_daily(self, horizon: date) -> pl.DataFrame:
        days = pl.date_range(ORIGIN, horizon, interval="1d", closed="left", eager=True)
        days = days.filter(days.dt.weekday() <= 5)
        n = days.len()

        dgs10 = _ou(self._normals("DGS10", n), x0=3.5, mean=3.5, speed=0.002, vol=0.045)
        dgs10 = np.clip(dgs10, 0.5, 9.0)
        spread = _ou(self._normals("T10Y2Y", n), x0=0.9, mean=0.9, speed=0.004, vol=0.03)
        dgs2 = np.clip(dgs10 - spread, 0.05, None)
        dgs10 = np.round(dgs10, 2)
        dgs2 = np.round(dgs2, 2)
        t10y2y = np.round(dgs10 - dgs2, 2)
        log_vix = _ou(
            self._normals("VIXCLS", n), x0=np.log(18.0), mean=np.log(18.0), speed=0.03, vol=0.07
        )
        vix = np.round(np.clip(np.exp(log_vix), 9.0, 80.0), 2)

        return pl.concat(
            [
                pl.DataFrame({"series_id": sid, "date": days, "value": values})
                for sid, values in (
                    ("DGS10", dgs10),
                    ("DGS2", dgs2),
                    ("T10Y2Y", t10y2y),
                    ("VIXCLS", vix),
                )
            ]
        )

    def _simulate_monthly(self, horizon: date) -> pl.DataFrame:
        months = pl.date_range(ORIGIN, horizon, interval="1mo", closed="left", eager=True)
        shocks = self._normals("UNRATE", months.len())
        rate = np.empty(months.len())
        level = 5.5
        for i, shock in enumerate(shocks):  # ~500 months: a short recurrence
            step = np.round(0.03 * (5.5 - level) + 0.15 * shock, 1)
            level = float(np.clip(np.round(level + step, 1), 3.4, 10.0))
            rate[i] = level
        return pl.DataFrame({"series_id": "UNRATE", "date": months, "value": rate})


def _ou(
    shocks: np.ndarray, *, x0: float, mean: float, speed: float, vol: float, block: int = 512
) -> np.ndarray:
    """Discrete Ornstein-Uhlenbeck path ``x[t] = x[t-1] + speed*(mean - x[t-1]) + vol*shock[t]``
    (``x[-1] = x0``), vectorised per block: with ``phi = 1 - speed`` and ``p[t] = phi**(t+1)``,
    ``x[t] - mean = p[t] * (x0 - mean + cumsum(vol*shock / p)[t])``. Blocks keep ``1/p`` small."""
    phi = 1.0 - speed
    out = np.empty(shocks.shape[0])
    deviation = x0 - mean
    for begin in range(0, shocks.shape[0], block):
        scaled = vol * shocks[begin : begin + block]
        powers = phi ** np.arange(1, scaled.shape[0] + 1)
        path = powers * (deviation + np.cumsum(scaled / powers))
        out[begin : begin + scaled.shape[0]] = path
        deviation = path[-1]
    return out + mean
