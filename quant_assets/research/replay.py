"""The live book replayed every session: the backtest's account of one strategy.

Each session ``d`` the replay does what the live assets do, with the same functions
(:func:`~quant_assets.portfolio.decision.decide_session`):

1. values the account at the close of ``d`` (whole shares and cash) and reads its NAV drawdown;
2. decides the live method's book against the book the account holds (the turnover limit is
   against what is held, after fills, lots and the ADV cap), with every construction limit of
   the policy and the day's stop-loss exclusions; past the maximum drawdown it only shrinks
   positions, and only orders that shrink a position pass;
3. sizes the orders in whole lots of the NAV at ``d``'s close, drops trades below the minimum,
   rejects what a pre-trade check rejects (notional, share of volume, collar);
4. fills the orders at the open of the next session through the simulated broker's fill model
   (:class:`~resources.broker.simulated.FillModel` on ``engine_rs``): the same book shape,
   fees and price collar as the paper broker, so live and backtest pay one cost model.

No look-ahead: the decision of ``d`` sees the market up to ``d``'s close; its orders trade in
``d + 1``. The account is kept in ADJUSTED prices (``adj_open``, ``adj_close`` and volume scaled
to the same dollar volume), so splits and dividends neither create nor destroy value; lots are
whole adjusted shares. A session without a benchmark return is no decision day (the book is
held); a day on which a held name has no bar cannot be valued for sizing, so nothing is traded
(the live ``paper_orders`` refuses such a day too).

Per session the replay reports, as :func:`~quant_assets.research.backtest.simulate_book` does:
``net_return`` (NAV to NAV), ``cost`` (fees plus the fills' impact against their arrival
price, over the previous NAV), ``gross_return`` (``net_return + cost``), ``turnover`` (filled
notional over the previous NAV), ``gross_exposure`` and ``n_names`` at the close.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import pandas as pd
import polars as pl

from quant_assets.execution.orders import market_snapshot
from quant_assets.portfolio.books import DayInputs, InsufficientReturnsError
from quant_assets.portfolio.decision import HOLDINGS_SCHEMA, Decision, Holdings, decide_session
from quant_assets.research.backtest import BOOK_COLUMNS
from resources.broker.base import OrderRequest
from resources.broker.simulated import FillModel
from resources.execution_policy import ExecutionPolicy
from resources.portfolio_policy import PortfolioPolicy

# the live method of one day: its inputs (None = no decision that day)
InputsOf = Callable[[date], DayInputs | None]


def account_bars(bars: pl.DataFrame) -> pl.DataFrame:
    """``ticker, date, open, close, adj_close, volume`` in adjusted units (module docstring)
    from bars with ``adj_open, adj_close, close, volume``, sorted by date."""
    return bars.select(
        "ticker",
        "date",
        pl.col("adj_open").alias("open"),
        pl.col("adj_close").alias("close"),
        "adj_close",
        (pl.col("volume") * pl.col("close") / pl.col("adj_close")).alias("volume"),
    ).sort("date", "ticker")


@dataclass
class Replay:
    """One strategy's replayed account (module docstring): the decisions, the orders and the
    fills of every session, and the per-session figures (:meth:`book`)."""

    name: str
    model: str
    portfolio_policy: PortfolioPolicy
    execution_policy: ExecutionPolicy
    fill_model: FillModel
    initial_cash: float = 1_000_000.0
    decisions: dict[date, pd.Series] = field(default_factory=dict)
    # the book held at each decision's close and the decision's orders (REJECTED included)
    held: dict[date, pd.Series] = field(default_factory=dict)
    orders: dict[date, pl.DataFrame] = field(default_factory=dict)
    statuses: list[pl.DataFrame] = field(default_factory=list)
    fills: list[dict] = field(default_factory=list)
    _rows: list[dict] = field(default_factory=list)
    _last_close: dict[str, float] = field(default_factory=dict)

    def decide(
        self, inputs: DayInputs, holdings: Holdings, snapshot: pl.DataFrame, drawdown: float
    ) -> Decision:
        """The live method's decision of one session: exactly the live assets' decision
        (``target_weights`` + ``paper_orders``) on the same inputs."""
        return decide_session(
            inputs,
            holdings,
            snapshot,
            drawdown,
            self.portfolio_policy,
            self.execution_policy,
            methods=[self.portfolio_policy.live_method],
        )

    def run(self, bars: pl.DataFrame, sessions: list[date], inputs_of: InputsOf) -> pd.DataFrame:
        """Replay ``sessions`` (consecutive stored sessions) on ``bars``
        (:func:`account_bars`); returns :meth:`book`."""
        holdings = Holdings(pl.DataFrame(schema=HOLDINGS_SCHEMA), self.initial_cash)
        dates = bars["date"]
        # the drawdown rule reads the NAV of the policy's window, as live reads its stored nav
        navs: deque[float] = deque(maxlen=self.portfolio_policy.lookback_sessions + 1)
        pending: list[OrderRequest] = []
        for i, day in enumerate(sessions):
            window = bars.filter(dates.is_between(_back(sessions, i, self._liquidity), day))
            holdings, traded = self._fill(holdings, pending, window, day)
            snapshot = market_snapshot(window, day, self.execution_policy.liquidity_sessions)
            self._last_close.update(
                window.filter(pl.col("date") == day).select("ticker", "close").iter_rows()
            )
            nav = self._nav(holdings)
            navs.append(nav)
            self._record(day, nav, holdings, traded)
            inputs = inputs_of(day) if i + 1 < len(sessions) else None
            pending = self._orders(inputs, holdings, snapshot, 1.0 - nav / max(navs), day)
        return self.book()

    @property
    def _liquidity(self) -> int:
        return self.execution_policy.liquidity_sessions + 1

    def _orders(
        self,
        inputs: DayInputs | None,
        holdings: Holdings,
        snapshot: pl.DataFrame,
        drawdown: float,
        day: date,
    ) -> list[OrderRequest]:
        """The session's orders to send (none when there is no decision, the live book is
        infeasible or a held name cannot be valued on this session's bars)."""
        if inputs is None:
            return []
        try:
            decision = self.decide(inputs, holdings, snapshot, drawdown)
        except (InsufficientReturnsError, ValueError):
            return []
        self.statuses.append(decision.books.status.with_columns(pl.lit(self.model).alias("model")))
        live = decision.live_weights
        if not bool(decision.books.status["feasible"].all()):
            return []
        self.decisions[day] = pd.Series(live["weight"].to_numpy(), index=live["ticker"].to_list())
        self.held[day] = holdings.weights(snapshot)
        self.orders[day] = decision.orders
        new = decision.orders.filter(pl.col("status") == "NEW")
        return [
            OrderRequest.from_row(row, f"{self.name}-{day.isoformat()}-{row['ticker']}", day)
            for row in new.iter_rows(named=True)
        ]

    def _fill(
        self, holdings: Holdings, orders: list[OrderRequest], window: pl.DataFrame, day: date
    ) -> tuple[Holdings, dict[str, float]]:
        """``orders`` traded at ``day``'s open (a name without a bar that day does not
        trade); the holdings after them and what the trading cost."""
        opens = dict(window.filter(pl.col("date") == day).select("ticker", "open").iter_rows())
        tradable = [o for o in orders if opens.get(o.ticker) is not None]
        records = self.fill_model.execute_many(tradable, [opens[o.ticker] for o in tradable], day)
        filled = [r for r in records if r["filled_qty"] > 0]
        self.fills.extend(filled)
        if not filled:
            return holdings, {"fees": 0.0, "impact": 0.0, "notional": 0.0}
        fills = pl.DataFrame(filled).select(
            "ticker",
            (pl.when(pl.col("side") == "buy").then(1).otherwise(-1) * pl.col("filled_qty"))
            .cast(pl.Int64)
            .alias("qty"),
            "avg_fill_price",
            "arrival_price",
            "fees",
        )
        totals = fills.select(
            (pl.col("qty") * pl.col("avg_fill_price")).sum().alias("spent"),
            pl.col("fees").sum(),
            (pl.col("qty") * (pl.col("avg_fill_price") - pl.col("arrival_price")))
            .sum()
            .alias("impact"),
            (pl.col("qty").abs() * pl.col("avg_fill_price")).sum().alias("notional"),
        ).row(0, named=True)
        shares = (
            pl.concat([holdings.shares, fills.select("ticker", "qty")])
            .group_by("ticker")
            .agg(pl.col("qty").sum())
            .filter(pl.col("qty") != 0)
            .sort("ticker")
        )
        traded = {k: float(totals[k]) for k in ("fees", "impact", "notional")}
        return Holdings(shares, holdings.cash - float(totals["spent"]) - traded["fees"]), traded

    def _record(
        self,
        day: date,
        nav: float,
        holdings: Holdings,
        traded: dict[str, float],
    ) -> None:
        invested = nav - holdings.cash
        self._rows.append(
            {
                "date": day,
                "nav": nav,
                "cost": traded["fees"] + traded["impact"],
                "traded": traded["notional"],
                "gross_exposure": abs(invested) / nav if nav else 0.0,
                "n_names": float(holdings.shares.height),
            }
        )

    def _nav(self, holdings: Holdings) -> float:
        """The account at the close, each held name at its last close (a name without a bar
        that session keeps its last price, as in the book simulation)."""
        value = sum(float(q) * self._last_close[str(t)] for t, q in holdings.shares.iter_rows())
        return holdings.cash + value

    def book(self) -> pd.DataFrame:
        """Per session: the module docstring's columns (0 on the first, which only decides),
        plus ``nav``."""
        rows = pd.DataFrame(self._rows).set_index("date")
        rows.index = pd.DatetimeIndex(rows.index)
        before = rows["nav"].shift(1)
        out = pd.DataFrame(index=rows.index)
        out["net_return"] = rows["nav"] / before - 1.0
        out["cost"] = rows["cost"] / before
        out["gross_return"] = out["net_return"] + out["cost"]
        out["turnover"] = rows["traded"] / before
        out["gross_exposure"] = rows["gross_exposure"]
        out["n_names"] = rows["n_names"]
        out["nav"] = rows["nav"]
        # the first session only decides (all cash, nothing earned yet), as a simulated book's
        for column in ("net_return", "cost", "gross_return", "turnover"):
            out.loc[out.index[0], column] = 0.0
        return out[[*BOOK_COLUMNS, "nav"]]


def _back(sessions: list[date], i: int, count: int) -> date:
    return sessions[max(0, i - count)]
