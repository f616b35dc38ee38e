"""GICS sectors of US-listed companies from data shipped inside installed packages (offline).

Source: ``pytickersymbols`` (pinned in pyproject.toml) ships the members of 20 stock indices
(S&P 500, S&P 600, S&P 100, NASDAQ 100, Dow Jones, FTSE 100, EURO STOXX 50, DAX, CAC 40, Nikkei
225, ...) in its wheel as a Python module, each company with a list of industry labels
(the GICS sector of Wikipedia's constituent tables, merged with other labels such as Refinitiv
TRBC sectors and industries). It reads nothing at run time: no file outside the package, no
network. US tickers are the ``symbol`` of US index members and the ``NYSE:`` / ``NASDAQ:``
listings of every member (ADRs such as BP, ASML or HSBC come from their home index).

Labels to sectors, by category name (never by ticker):
- the GICS hierarchy's names (sectors, industry groups, industries, sub-industries) as the
  ``gics`` package ships them, every published version, the 2023 one last so today's sector
  wins (REITs are Real Estate, media is Communication Services), each mapped to its sector;
- the TRBC economic sectors whose names differ from GICS (``_TRBC_SECTORS`` below).

A company's sector: the one GICS sector name among its labels; when its labels name several
sectors, the one that most of its mapped labels point to; when that is a tie (or no label
maps), the company is unclassified. A ticker that two companies use gets the labels of both.

Asset types (``ASSET_TYPES``): a company the package lists is a stock (ADRs included). A name
that says it is a fund (``_FUND_NAME_RULES``: ETF, ETN, SPDR, iShares, ProShares,
exchange-traded, Fund) marks a non-stock when no type is given; the committed universe list
names the funds it knows with ``asset_type``. Everything else is taken for a stock.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from functools import lru_cache

import polars as pl
from gics.gics import DEFINITIONS
from pytickersymbols import PyTickerSymbols

STOCK = "stock"
ASSET_TYPES: tuple[str, ...] = (STOCK, "etf", "etn", "fund", "index")

# Refinitiv TRBC economic sectors named differently from their GICS counterpart
_TRBC_SECTORS = {
    "technology": "45",
    "healthcare": "35",
    "basic materials": "15",
    "consumer cyclicals": "25",
    "consumer non-cyclicals": "30",
    "telecommunications services": "50",
}
# the exchanges of the package's Google symbols that are US listings
_US_EXCHANGES = ("NYSE:", "NASDAQ:")
# the package's US indices, whose ``symbol`` is the US ticker
_US_INDICES = ("S&P 500", "S&P 600", "S&P 100", "NASDAQ 100", "DOW JONES")
_FUND_NAME_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bETN\b", re.IGNORECASE), "etn"),
    (
        re.compile(r"\b(ETF|SPDR|iShares|ProShares|exchange[- ]traded)\b", re.IGNORECASE),
        "etf",
    ),
    (re.compile(r"\bFunds?\b", re.IGNORECASE), "fund"),
)


def ticker_key(ticker: str) -> str:
    """A ticker as the lookup compares it: upper case, share-class separators alike
    (``BRK-B``, ``BRK/B`` and ``BRK.B`` are one ticker)."""
    return re.sub(r"[-/.]", ".", ticker.strip().upper())


def _norm(label: str) -> str:
    return " ".join(label.split()).lower()


@lru_cache(maxsize=1)
def _label_sectors() -> dict[str, str]:
    """Category label (normalised) -> GICS sector name."""
    newest = DEFINITIONS[max(DEFINITIONS)]
    sector_names = {code: entry["name"] for code, entry in newest.items() if len(code) == 2}
    mapping: dict[str, str] = {}
    for version in sorted(DEFINITIONS):  # oldest first: the newest definition wins
        for code, entry in DEFINITIONS[version].items():
            mapping[_norm(entry["name"])] = sector_names[code[:2]]
    for label, code in _TRBC_SECTORS.items():
        mapping.setdefault(label, sector_names[code])
    return mapping


def _us_tickers(index: str, company: dict[str, object]) -> set[str]:
    tickers: set[str] = set()
    symbol = company.get("symbol")
    if index in _US_INDICES and isinstance(symbol, str):
        tickers.add(symbol)
    for listing in company.get("symbols") or []:  # type: ignore[attr-defined]
        google = str(listing.get("google") or "")
        if google.startswith(_US_EXCHANGES):
            tickers.add(google.split(":", 1)[1])
    return {ticker_key(t) for t in tickers if t.strip()}


@lru_cache(maxsize=1)
def _package_labels() -> dict[str, frozenset[str]]:
    """US ticker key -> every industry label the package gives its companies."""
    symbols = PyTickerSymbols()
    labels: defaultdict[str, set[str]] = defaultdict(set)
    for index in symbols.get_all_indices():
        for company in symbols.get_stocks_by_index(index):
            for ticker in _us_tickers(index, company):
                labels[ticker].update(str(x) for x in company.get("industries") or [])
    return {t: frozenset(ls) for t, ls in labels.items()}


def sector_from_labels(labels: Iterable[str]) -> str | None:
    """The GICS sector a company's labels point to; None when they name none or tie."""
    mapping = _label_sectors()
    sector_names = set(_gics_sector_names())
    votes: Counter[str] = Counter()
    named: set[str] = set()
    for label in labels:
        sector = mapping.get(_norm(label))
        if sector is None:
            continue
        votes[sector] += 1
        if label.strip() in sector_names:
            named.add(sector)
    candidates = {s: votes[s] for s in named} if named else dict(votes)
    if not candidates:
        return None
    best = max(candidates.values())
    top = [s for s, n in candidates.items() if n == best]
    return top[0] if len(top) == 1 else None


@lru_cache(maxsize=1)
def _gics_sector_names() -> tuple[str, ...]:
    newest = DEFINITIONS[max(DEFINITIONS)]
    return tuple(entry["name"] for code, entry in newest.items() if len(code) == 2)


@lru_cache(maxsize=1)
def package_classification() -> pl.DataFrame:
    """``ticker`` (lookup key), ``sector`` (null: the labels do not decide) of every US ticker
    the package lists."""
    rows = [(t, sector_from_labels(ls)) for t, ls in sorted(_package_labels().items())]
    return pl.DataFrame(rows, schema={"ticker": pl.String, "sector": pl.String}, orient="row")


def classify(tickers: Iterable[str]) -> pl.DataFrame:
    """``ticker``, ``listed`` (the package knows the company: a stock), ``sector`` (null when
    unknown or undecided) for each ticker, in input order."""
    names = list(tickers)
    frame = pl.DataFrame(
        {"ticker": names, "_key": [ticker_key(t) for t in names]},
        schema={"ticker": pl.String, "_key": pl.String},
    )
    known = package_classification().rename({"ticker": "_key"})
    return frame.join(
        known.with_columns(pl.lit(True).alias("listed")),
        on="_key",
        how="left",
        maintain_order="left",
    ).select("ticker", pl.col("listed").fill_null(False), "sector")


def asset_type_from_name(name: str | None) -> str | None:
    """The non-stock type a security's name declares (``_FUND_NAME_RULES``), else None."""
    if not name:
        return None
    for pattern, kind in _FUND_NAME_RULES:
        if pattern.search(name):
            return kind
    return None
