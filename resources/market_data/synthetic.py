"""``SyntheticMarket``: the offline default provider, a seeded equity market with known properties.

The model (daily, one step per NYSE session counted from the process origin ``start``)
----------------------------------------------------------------------------------------
For ticker ``i`` in sector ``s(i)`` on session ``t`` the log return is::

    r[i,t] = mu[i] + beta[i] * m[t] + gamma[i] * f[s(i),t] + e[i,t] + a[i,t]

- ``m[t] = MARKET_DRIFT + sqrt(hm[t]) * zm[t]``: the market factor, GARCH(1,1)
  (``GARCH_ALPHA`` 0.08, ``GARCH_BETA`` 0.90) with long-run vol ``MARKET_VOL`` (16% a year);
- ``f[s,t] = SECTOR_VOL * sqrt(hm[t] / MARKET_VOL**2) * zs[s,t]``: one factor per sector
  (``SECTORS``, 11 GICS-like names), sharing the market's volatility regime;
- ``e[i,t] = sqrt(h[i,t]) * z[i,t]``: idiosyncratic, its own GARCH(1,1) per ticker
  (same alpha/beta), long-run vol lognormal around ``IDIO_VOL_MEDIAN`` (22% a year);
- every innovation ``zm, zs, z`` is Student-t with ``T_DF`` = 5 degrees of freedom scaled to unit
  variance: fat tails (kurtosis well above 3) and volatility clustering (|r| autocorrelated);
- ``beta ~ N(1, 0.2)``, ``gamma ~ N(1, 0.25)`` (both clipped), ``mu ~ N(0, 2%/year)``; the
  average pairwise correlation of daily returns is about 0.28;
- ``a[i,t] = -(REVERSAL / SIGNAL_LOOKBACK) * (u[i,t-1] + ... + u[i,t-5])`` with
  ``u = e + a`` the stock-specific return: the PLANTED SIGNAL, a weak short-term reversal
  (``REVERSAL`` = 0.1 of a stock's own 5-session move is expected back over the next 5
  sessions, a return autocorrelation of about -0.02 at lags 1-5). It acts per ticker (no
  cross-sectional step), so a ticker's path does not depend on the universe size, and it
  leaves the factors, hence the index, without planted predictability.

The planted signal is observable from bars alone: :func:`planted_signal` computes
``-(close[t] / close[t-5] - 1)`` (the total 5-session return stands in for its stock-specific
part); its mean daily cross-sectional Spearman rank IC against the next 5-session return in
excess of the index is ``EXPECTED_IC`` ~= 0.045 (measured: 0.047 over 2015-2017 for the default
market; 0.041-0.048 over 2005-2014 for 500 tickers and seeds 1, 2, 3, 7; a 3-year, 100-ticker
window varies by about +-0.01 with the seed).

Bars are built from the close path: open = previous close times ``exp(0.25 r + 0.2 sigma n)``
(a small gap), high/low extend ``max/min(open, close)`` by half-normal moves of ``0.5 sigma``
(sigma = the ticker's total conditional daily vol), vwap = (high + low + close) / 3, volume = shares
outstanding x a lognormal turnover (~0.7%/day) rising with ``|r| / sigma`` (so volume and |r|
are positively correlated). Start prices are log-uniform in [10, 500]; caps lognormal (median
$8B); there are no splits or dividends, so adjusted prices equal raw ones.

The benchmark ``SYNIDX`` is the cap-weighted index of all members: its close is
``100 * sum_i shares[i] * close[i,t] / sum_i shares[i] * close[i,origin-1]``, i.e. its daily
return is the cap-weighted mean of member returns with weights = the previous close's caps
(:meth:`SyntheticMarket.shares_outstanding` gives the share counts).

Determinism: every random draw comes from a PCG64 stream seeded by
``SeedSequence([seed, stream, block, ticker_chunk])`` (blocks of ``_BLOCK`` sessions, chunks of
``_CHUNK`` tickers), so a (seed, ticker, date) row is identical whatever range or ticker
subset is asked for, and a member's own path does not depend on the universe size (the index,
being the universe's cap-weighted mean, does). The path is generated from ``start`` up to the
requested end and cached in memory per (seed, n_tickers, n_sectors, start); dates before
``start`` return nothing. Fault injection (``missing_day_rate``, ``decimal_shift_rate``) draws from
its own streams and never touches the benchmark: a dropped (ticker, session) row is simply
absent; a decimal-shifted print has open/high/low/close/vwap (and the adj_ copies) multiplied by
10, 100, 0.1 or 0.01 for that one session (volume untouched), so it jumps and reverts the next
session. Sessions come from exchange_calendars' XNYS up to 2099.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import exchange_calendars as xcals
import numpy as np
import polars as pl

from quant_core.conventions import TRADING_DAYS
from resources.market_data.base import BAR_SCHEMA, GICS_SECTORS, UNIVERSE_SCHEMA, conform_bars

SECTORS = GICS_SECTORS
# share of tickers per sector (roughly the S&P 500's constituent counts)
_SECTOR_WEIGHTS = np.array([0.05, 0.10, 0.07, 0.05, 0.14, 0.12, 0.15, 0.14, 0.05, 0.06, 0.06])

T_DF = 5.0
GARCH_ALPHA = 0.08
GARCH_BETA = 0.90
MARKET_VOL = 0.16 / np.sqrt(TRADING_DAYS)
MARKET_DRIFT = 0.07 / TRADING_DAYS
SECTOR_VOL = 0.10 / np.sqrt(TRADING_DAYS)
IDIO_VOL_MEDIAN = 0.22 / np.sqrt(TRADING_DAYS)
SIGNAL_LOOKBACK = 5
SIGNAL_HORIZON = 5
REVERSAL = 0.1
EXPECTED_IC = 0.045
INDEX_BASE = 100.0

_BLOCK = 256  # sessions per generation block
_CHUNK = 64  # tickers per random stream
_PIECE = 4 * _CHUNK  # tickers per frame piece built by fetch_bars
_CALENDAR_END = "2099-12-31"
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_H_FLOOR, _H_CAP = 0.1, 25.0  # conditional variance clipped to this range x its long-run level
_STREAM_PARAMS, _STREAM_FACTORS, _STREAM_IDIO, _STREAM_BARS, _STREAM_INDEX_BARS = 1, 2, 3, 4, 5
_STREAM_FAULTS = 6
_BAR_FIELDS = ("open", "high", "low", "close", "volume", "vwap")


def _rng(*keys: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(list(keys))))


def _std_t(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Student-t draws scaled to unit variance."""
    return rng.standard_t(T_DF, size=shape) * np.sqrt((T_DF - 2.0) / T_DF)


@lru_cache(maxsize=4)
def _sessions(origin_ordinal: int) -> np.ndarray:
    """NYSE sessions from the origin on, as int32 days since 1970-01-01 (sorted)."""
    origin = date.fromordinal(origin_ordinal)
    calendar = xcals.get_calendar("XNYS", start=origin.isoformat(), end=_CALENDAR_END)
    sessions = calendar.sessions_in_range(origin.isoformat(), _CALENDAR_END)
    ordinals = np.array([d.toordinal() for d in sessions.date], dtype=np.int64)
    return (ordinals - _EPOCH_ORDINAL).astype(np.int32)


@dataclass(frozen=True)
class _TickerParams:
    sector: np.ndarray  # int, index into SECTORS
    beta: np.ndarray
    gamma: np.ndarray
    long_run_var: np.ndarray  # idiosyncratic daily variance
    mu: np.ndarray  # idiosyncratic daily log drift
    price0: np.ndarray
    shares: np.ndarray
    base_volume: np.ndarray


def _ticker_params(seed: int, n: int, n_sectors: int) -> _TickerParams:
    """Per-ticker parameters, drawn per chunk of ``_CHUNK`` tickers (independent of ``n``)."""
    chunks = -(-n // _CHUNK)
    u = np.empty((chunks * _CHUNK, 4))
    g = np.empty((chunks * _CHUNK, 6))
    for c in range(chunks):
        rng = _rng(seed, _STREAM_PARAMS, c)
        u[c * _CHUNK : (c + 1) * _CHUNK] = rng.random((_CHUNK, 4))
        g[c * _CHUNK : (c + 1) * _CHUNK] = rng.standard_normal((_CHUNK, 6))
    u, g = u[:n], g[:n]
    weights = _SECTOR_WEIGHTS[:n_sectors] / _SECTOR_WEIGHTS[:n_sectors].sum()
    sector = np.minimum(np.searchsorted(np.cumsum(weights), u[:, 0]), n_sectors - 1)
    price0 = np.exp(np.log(10.0) + u[:, 1] * (np.log(500.0) - np.log(10.0)))
    cap = np.exp(np.log(8e9) + 1.1 * g[:, 4])
    shares = np.round(cap / price0)
    turnover = np.exp(np.log(0.007) + 0.4 * g[:, 5])
    idio_vol = np.clip(
        IDIO_VOL_MEDIAN * np.exp(0.3 * g[:, 2]), 0.4 * IDIO_VOL_MEDIAN, 3.0 * IDIO_VOL_MEDIAN
    )
    return _TickerParams(
        sector=sector.astype(np.int64),
        beta=np.clip(1.0 + 0.2 * g[:, 0], 0.4, 1.7),
        gamma=np.clip(1.0 + 0.25 * g[:, 1], 0.3, 1.7),
        long_run_var=idio_vol**2,
        mu=0.02 / TRADING_DAYS * g[:, 3],
        price0=price0,
        shares=shares,
        base_volume=shares * turnover,
    )


class _Panel:
    """The generated market of one (seed, n_tickers, n_sectors, origin), grown block by block.

    Column ``n`` of ``close``/``sigma`` is the index. The recursion state is carried from block
    to block, so the path is the same however many blocks have been generated."""

    def __init__(self, seed: int, n: int, n_sectors: int) -> None:
        self.seed, self.n, self.n_sectors = seed, n, n_sectors
        self.params = _ticker_params(seed, n, n_sectors)
        p = self.params
        self.close: list[np.ndarray] = []  # (n + 1, B) float64 per block
        self.sigma: list[np.ndarray] = []  # (n + 1, B) float32 per block: conditional daily vol
        self.prev_close: list[np.ndarray] = []  # (n + 1,) close before each block
        self._last_close = np.append(p.price0, INDEX_BASE)
        self._log_close = np.log(p.price0)
        self._cap0 = float((p.shares * p.price0).sum())
        self._h = p.long_run_var.copy()
        self._e = np.zeros(n)
        self._ring = np.zeros((SIGNAL_LOOKBACK, n))
        self._hm = MARKET_VOL**2
        self._em = 0.0
        self._lock = threading.Lock()

    def ensure(self, n_sessions: int) -> None:
        with self._lock:
            while len(self.close) * _BLOCK < n_sessions:
                self._grow()

    def _grow(self) -> None:
        b, n, p = len(self.close), self.n, self.params
        # market and sector factors
        rng = _rng(self.seed, _STREAM_FACTORS, b)
        zm = _std_t(rng, (_BLOCK,))
        zs = _std_t(rng, (_BLOCK, len(SECTORS)))
        hm = np.empty(_BLOCK)
        hm_prev, em, long_m = self._hm, self._em, MARKET_VOL**2
        omega_m = long_m * (1.0 - GARCH_ALPHA - GARCH_BETA)
        for t in range(_BLOCK):  # scalar recursion, _BLOCK steps
            hm_prev = min(
                max(omega_m + GARCH_ALPHA * em * em + GARCH_BETA * hm_prev, _H_FLOOR * long_m),
                _H_CAP * long_m,
            )
            hm[t] = hm_prev
            em = float(np.sqrt(hm_prev) * zm[t])
        self._hm, self._em = hm_prev, em
        regime = np.sqrt(hm / long_m)
        market = MARKET_DRIFT + np.sqrt(hm) * zm
        sector = SECTOR_VOL * regime[:, None] * zs[:, : self.n_sectors]
        base = p.mu + p.beta * market[:, None] + p.gamma * sector[:, p.sector]

        # idiosyncratic GARCH and the planted reversal, a step per session across all tickers
        chunks = -(-n // _CHUNK)
        z = np.concatenate(
            [_std_t(_rng(self.seed, _STREAM_IDIO, b, c), (_BLOCK, _CHUNK)) for c in range(chunks)],
            axis=1,
        )[:, :n]
        omega = p.long_run_var * (1.0 - GARCH_ALPHA - GARCH_BETA)
        h_lo, h_hi = _H_FLOOR * p.long_run_var, _H_CAP * p.long_run_var
        h, e, ring = self._h, self._e, self._ring
        pull = REVERSAL / SIGNAL_LOOKBACK
        r = np.empty((_BLOCK, n))
        sig = np.empty((_BLOCK, n))
        offset = b * _BLOCK
        for t in range(_BLOCK):
            h = omega + GARCH_ALPHA * (e * e) + GARCH_BETA * h
            np.minimum(np.maximum(h, h_lo, out=h), h_hi, out=h)
            s = np.sqrt(h, out=sig[t])
            e = s * z[t]
            # the stock-specific return: innovation plus the pull against its last 5 values
            u = ring[(offset + t) % SIGNAL_LOOKBACK]  # the oldest of the 5, replaced in place
            np.subtract(e, pull * np.add.reduce(ring, axis=0), out=u)
            np.add(base[t], u, out=r[t])
        self._h, self._e = h, e

        log_close = self._log_close + np.cumsum(r, axis=0)
        self._log_close = log_close[-1].copy()
        close = np.empty((n + 1, _BLOCK))  # stored (column, session): bars gather rows
        close[:n] = np.exp(log_close.T)
        # a plain row-by-row sum (not BLAS): the same result whatever the thread count
        close[n] = INDEX_BASE * (close[:n] * p.shares[:, None]).sum(axis=0) / self._cap0
        total_var = sig * sig + (p.beta**2 + (p.gamma * SECTOR_VOL / MARKET_VOL) ** 2) * hm[:, None]
        sigma = np.empty((n + 1, _BLOCK), dtype=np.float32)
        sigma[:n] = np.sqrt(total_var.T)
        sigma[n] = np.sqrt(hm)
        self.prev_close.append(self._last_close)
        self.close.append(close)
        self.sigma.append(sigma)
        self._last_close = close[:, -1].copy()

    def _noise(self, stream: int, b: int, cols: np.ndarray, k: int, normal: bool) -> np.ndarray:
        """``k`` draws per (member column in sorted ``cols``, session of block ``b``), each chunk
        of ``_CHUNK`` tickers from its own stream: shape (k, len(cols), _BLOCK)."""
        out = np.empty((k, cols.size, _BLOCK))
        if cols.size == 0:
            return out
        chunk_of = cols // _CHUNK
        chunks, starts = np.unique(chunk_of, return_index=True)
        stops = np.append(starts[1:], cols.size)
        for c, lo, hi in zip(chunks.tolist(), starts.tolist(), stops.tolist(), strict=True):
            rng = _rng(self.seed, stream, b, c)
            shape = (k, _CHUNK, _BLOCK)
            draws = rng.standard_normal(shape) if normal else rng.random(shape)
            local = cols[lo:hi] - c * _CHUNK
            if hi - lo == _CHUNK:  # the whole chunk, in order
                out[:, lo:hi] = draws
            else:
                out[:, lo:hi] = draws[:, local]
        return out

    def bars(self, b: int, cols: np.ndarray) -> dict[str, np.ndarray]:
        """OHLCV of block ``b`` for sorted ``cols`` (members, ``n`` = the index), each
        (len(cols), _BLOCK)."""
        n = self.n
        members = cols[cols < n]
        noise = np.empty((4, cols.size, _BLOCK))
        noise[:, : members.size] = self._noise(_STREAM_BARS, b, members, 4, normal=True)
        if members.size < cols.size:  # the index, last since cols are sorted
            rng = _rng(self.seed, _STREAM_INDEX_BARS, b)
            noise[:, members.size :] = rng.standard_normal((4, 1, _BLOCK))
        close = self.close[b][cols]
        prev = np.empty_like(close)
        prev[:, 0] = self.prev_close[b][cols]
        prev[:, 1:] = close[:, :-1]
        sigma = self.sigma[b][cols].astype(np.float64)
        r = np.log(close / prev)
        open_ = prev * np.exp(0.25 * r + 0.2 * sigma * noise[0])
        high = np.maximum(open_, close) * np.exp(0.5 * sigma * np.abs(noise[1]))
        low = np.minimum(open_, close) * np.exp(-0.5 * sigma * np.abs(noise[2]))
        base_volume = np.append(self.params.base_volume, self.params.base_volume.sum())[cols]
        surprise = np.abs(r) / sigma
        volume = base_volume[:, None] * np.exp(0.4 * (surprise - 0.8) + 0.35 * noise[3])
        return {
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": np.maximum(np.round(volume), 1.0),
            "vwap": np.clip((high + low + close) / 3.0, low, high),
        }

    def faults(self, b: int, cols: np.ndarray) -> np.ndarray:
        """Uniforms (missing, shift, shift size) for sorted member ``cols``: (3, len(cols), B)."""
        return self._noise(_STREAM_FAULTS, b, cols, 3, normal=False)


@lru_cache(maxsize=4)
def _panel(seed: int, n: int, n_sectors: int, origin_ordinal: int) -> _Panel:
    return _Panel(seed, n, n_sectors)


def planted_signal(bars: pl.DataFrame) -> pl.DataFrame:
    """The documented predictive feature: ``-(close[t] / close[t-5] - 1)`` per ticker.

    Returns (ticker, date, signal) for rows with 5 earlier rows of the same ticker (rows, not
    sessions: a missing day stretches the window). Higher = expected to outperform the index
    over the next 5 sessions (mean daily rank IC ~ ``EXPECTED_IC``)."""
    close = pl.col("close")
    return (
        bars.sort("ticker", "date")
        .select(
            "ticker",
            "date",
            (1.0 - close / close.shift(SIGNAL_LOOKBACK).over("ticker")).alias("signal"),
        )
        .drop_nulls("signal")
    )


class SyntheticMarket:
    """Seeded synthetic equity market (see the module docstring for the model)."""

    name = "synthetic"
    benchmark_ticker = "SYNIDX"

    def __init__(
        self,
        seed: int = 7,
        n_tickers: int = 100,
        n_sectors: int = 11,
        start: date = date(2000, 1, 3),
        missing_day_rate: float = 0.0,
        decimal_shift_rate: float = 0.0,
    ) -> None:
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        if n_tickers < 1:
            raise ValueError(f"n_tickers must be >= 1, got {n_tickers}")
        if not 1 <= n_sectors <= len(SECTORS):
            raise ValueError(f"n_sectors must be in 1..{len(SECTORS)}, got {n_sectors}")
        for label, rate in (
            ("missing_day_rate", missing_day_rate),
            ("decimal_shift_rate", decimal_shift_rate),
        ):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{label} must be in [0, 1], got {rate}")
        self.seed, self.n_tickers, self.n_sectors, self.start = seed, n_tickers, n_sectors, start
        self.missing_day_rate = missing_day_rate
        self.decimal_shift_rate = decimal_shift_rate
        width = max(4, len(str(n_tickers)))
        self._tickers = pl.select(
            pl.format("SYN{}", (pl.int_range(n_tickers) + 1).cast(pl.String).str.zfill(width))
        ).to_series()

    def _panel(self) -> _Panel:
        return _panel(self.seed, self.n_tickers, self.n_sectors, self.start.toordinal())

    def universe(self) -> pl.DataFrame:
        """``n_tickers`` members over the sectors, plus the benchmark (sector ``Index``)."""
        params = self._panel().params
        n = self.n_tickers
        stems = pl.Series(
            ["Ar", "Bel", "Cor", "Dal", "Ever", "Fen", "Gal", "Hal", "Ion", "Jun", "Kel", "Lum",
             "Mar", "Nor", "Or", "Pax", "Quin", "Ros", "Sol", "Tor", "Ul", "Ven", "Wes", "Xan",
             "Yor", "Zen"]
        )  # fmt: skip
        endings = pl.Series(
            ["ex", "ica", "on", "ara", "ium", "ent", "is", "o", "yn", "ar", "ix", "ova", "eon",
             "ant", "ia", "us"]
        )  # fmt: skip
        kinds = pl.Series(["Holdings", "Corp", "Inc", "Group", "Industries", "Systems", "Partners"])
        i = np.arange(n)
        combos = stems.len() * endings.len()
        members = pl.DataFrame(
            {
                "ticker": self._tickers,
                "stem": stems.gather(i % stems.len()),
                "ending": endings.gather((i // stems.len()) % endings.len()),
                "kind": kinds.gather((i // combos + i) % kinds.len()),
                "sector": pl.Series(SECTORS).gather(params.sector),
            }
        ).select(
            "ticker",
            pl.format("{}{} {}", "stem", "ending", "kind").alias("name"),
            "sector",
            pl.lit(False).alias("is_benchmark"),
            pl.lit("stock").alias("asset_type"),
        )
        index = pl.DataFrame(
            {
                "ticker": [self.benchmark_ticker],
                "name": ["Synthetic Cap-Weighted Index"],
                "sector": ["Index"],
                "is_benchmark": [True],
                "asset_type": ["index"],
            }
        )
        return pl.concat([members, index]).select(
            [pl.col(c).cast(t) for c, t in UNIVERSE_SCHEMA.items()]
        )

    def shares_outstanding(self) -> pl.DataFrame:
        """(ticker, shares): the constant share counts behind the index's cap weights."""
        return pl.DataFrame({"ticker": self._tickers, "shares": self._panel().params.shares})

    def _columns(self, tickers: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """Sorted panel columns of the known requested tickers (``n_tickers`` = the index)."""
        known = pl.DataFrame(
            {
                "ticker": pl.concat([self._tickers, pl.Series([self.benchmark_ticker])]),
                "col": np.arange(self.n_tickers + 1),
            }
        )
        asked = pl.DataFrame({"ticker": pl.Series(list(tickers), dtype=pl.String)}).unique()
        found = known.join(asked, on="ticker", how="semi").sort("col")
        return found["col"].to_numpy(), found["ticker"].to_list()

    def fetch_bars(self, tickers: Sequence[str], start: date, end: date) -> pl.DataFrame:
        """Bars on the NYSE sessions in ``[start, end)`` for the known ``tickers``.

        Built and conformed ``_PIECE`` tickers at a time (pieces in ticker order, so their
        concatenation is sorted), which keeps the transient memory to one piece."""
        cols, names = self._columns(tickers)
        sessions = _sessions(self.start.toordinal())
        first, stop = np.searchsorted(
            sessions, [start.toordinal() - _EPOCH_ORDINAL, end.toordinal() - _EPOCH_ORDINAL]
        )
        first, stop = int(first), int(stop)
        if cols.size == 0 or first >= stop:
            return pl.DataFrame(schema=BAR_SCHEMA)
        panel = self._panel()
        panel.ensure(stop)
        _, starts = np.unique(cols // _PIECE, return_index=True)
        stops = np.append(starts[1:], cols.size)
        pieces = [
            self._piece(panel, cols[lo:hi], names[lo:hi], sessions[first:stop], first)
            for lo, hi in zip(starts.tolist(), stops.tolist(), strict=True)
        ]
        return pl.concat(pieces, how="vertical", rechunk=False)

    def _piece(
        self, panel: _Panel, cols: np.ndarray, names: list[str], days: np.ndarray, first: int
    ) -> pl.DataFrame:
        """Conformed bars of the sorted panel columns ``cols`` on sessions ``first`` onwards."""
        n_days, n_cols = days.size, cols.size
        stop = first + n_days
        out = {field: np.empty((n_cols, n_days)) for field in _BAR_FIELDS}
        inject = self.missing_day_rate > 0 or self.decimal_shift_rate > 0
        members = cols[cols < self.n_tickers]
        uniforms = np.ones((3, n_cols, n_days)) if inject else None
        for b in range(first // _BLOCK, (stop - 1) // _BLOCK + 1):
            lo, hi = max(first, b * _BLOCK), min(stop, (b + 1) * _BLOCK)
            rows = slice(lo - b * _BLOCK, hi - b * _BLOCK)
            fields = panel.bars(b, cols)
            for field in _BAR_FIELDS:
                out[field][:, lo - first : hi - first] = fields[field][:, rows]
            if uniforms is not None and members.size:
                drawn = panel.faults(b, members)
                uniforms[:, : members.size, lo - first : hi - first] = drawn[:, :, rows]
        keep = None
        if uniforms is not None:
            shifted = uniforms[1] < self.decimal_shift_rate
            factor = np.choose(
                np.minimum((uniforms[2] * 4).astype(np.int64), 3), [10.0, 100.0, 0.1, 0.01]
            )
            scale = np.where(shifted, factor, 1.0)
            for field in ("open", "high", "low", "close", "vwap"):
                out[field] *= scale
            keep = (uniforms[0] >= self.missing_day_rate).reshape(-1)
        frame = pl.DataFrame(
            {
                "ticker": pl.Series(names).gather(np.repeat(np.arange(n_cols), n_days)),
                "date": pl.Series(np.tile(days, n_cols)).cast(pl.Date),
                **{field: out[field].reshape(-1) for field in _BAR_FIELDS},
            }
        )
        if keep is not None:
            frame = frame.filter(pl.Series(keep))
        return conform_bars(frame)
