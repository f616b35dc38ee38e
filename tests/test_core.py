"""quant_core: the shared metrics (one definition each, NaN on empty input), and the layering
that keeps it and the resources below the asset packages."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from quant_core.conventions import TRADING_DAYS
from quant_core.metrics import (
    current_drawdown,
    ex_ante_volatility,
    max_drawdown,
    nav_drawdown,
    risk_increasing,
    rolling_sharpe,
    trailing_sharpe,
    turnover,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "metric", [max_drawdown, current_drawdown], ids=["max_drawdown", "current_drawdown"]
)
def test_an_empty_history_is_not_evaluated_rather_than_no_drawdown(metric):
    assert math.isnan(metric([]))
    assert math.isnan(metric(np.array([np.nan])))
    assert metric([0.01, 0.02]) == 0.0


def test_an_empty_book_has_no_ex_ante_volatility():
    assert math.isnan(ex_ante_volatility([], np.zeros((0, 0))))
    cov = np.array([[0.0004, 0.0], [0.0, 0.0001]])
    expected = math.sqrt(TRADING_DAYS * (0.25 * 0.0004 + 0.25 * 0.0001))
    assert ex_ante_volatility([0.5, 0.5], cov) == pytest.approx(expected)


def test_a_short_history_has_no_trailing_sharpe():
    sharpe = trailing_sharpe(np.full(29, 0.001), windows=(30,))
    assert math.isnan(sharpe[30])
    r = np.random.default_rng(0).normal(0.001, 0.01, 30)
    assert trailing_sharpe(r, windows=(30,))[30] == pytest.approx(
        r.mean() / r.std(ddof=1) * math.sqrt(TRADING_DAYS)
    )
    assert rolling_sharpe(r, windows=(30,))["sharpe_30"].null_count() == 29


def test_nav_drawdown_is_the_returns_drawdown_of_the_same_wealth():
    returns = np.array([0.1, -0.5, 0.2, 1.0, -0.1])
    nav = np.concatenate([[1.0], np.cumprod(1.0 + returns)])
    from_nav = pl.DataFrame({"nav": nav}).select(nav_drawdown(pl.col("nav")).alias("dd"))["dd"]
    assert from_nav.max() == pytest.approx(max_drawdown(returns))
    assert from_nav[-1] == pytest.approx(current_drawdown(returns))


def test_turnover_counts_the_names_sold_out_of_the_book():
    before = pd.Series({"A": 0.5, "B": 0.5})
    after = pd.Series({"A": 0.4, "C": 0.1})
    assert turnover(after, before) == pytest.approx(0.1 + 0.5 + 0.1)
    assert turnover(after, None) == pytest.approx(0.5)


def test_the_risk_increasing_rule_is_the_same_on_arrays_series_and_polars():
    now = np.array([0.2, 0.1, -0.1, 0.0, 0.3])
    then = np.array([0.1, 0.2, 0.1, 0.1, 0.3])
    expected = [True, False, True, False, False]  # grew, shrank, flipped, closed, unchanged
    assert risk_increasing(now, then).tolist() == expected
    assert risk_increasing(pd.Series(now), pd.Series(then)).tolist() == expected
    frame = pl.DataFrame({"now": now, "then": then})
    assert frame.select(risk_increasing(pl.col("now"), pl.col("then")))["now"].to_list() == (
        expected
    )


def _imported_modules(package: str) -> set[tuple[str, str]]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add((str(path.relative_to(ROOT)), node.module))
            elif isinstance(node, ast.Import):
                found.update((str(path.relative_to(ROOT)), a.name) for a in node.names)
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("quant_core", ("quant_assets", "resources", "schedules", "apps")),
        ("resources", ("quant_assets", "schedules", "apps")),
        ("quant_assets", ("apps",)),
    ],
)
def test_lower_layers_import_nothing_from_the_layers_above(package, forbidden):
    offending = sorted(
        (path, module)
        for path, module in _imported_modules(package)
        if module.split(".")[0] in forbidden
    )
    assert offending == []
