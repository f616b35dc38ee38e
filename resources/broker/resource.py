"""The ``broker`` resource: which paper broker the orders go to.

``simulated`` (the default) needs nothing outside the process; ``alpaca`` sends to Alpaca's
PAPER API with the account's keys and refuses a live endpoint; ``venue`` sends over FIX 4.4 to a
running venue (``make venue``, engine_rs/venue). There is no live trading.
"""

from __future__ import annotations

import dagster as dg

from resources.broker.base import BrokerClient
from resources.broker.simulated import FillModel, SimulatedBroker
from resources.settings import data_dir
from resources.storage import Store

BROKER_KINDS = ("simulated", "alpaca", "venue")


class Broker(dg.ConfigurableResource):
    """``kind`` picks the broker. ``initial_cash`` is the paper account's starting cash (the
    simulated broker starts with it; set it to the Alpaca paper account's when using Alpaca,
    since NAV is rebuilt from it and the journal). The simulated broker's book shape and fees
    are described in ``resources.broker.simulated``."""

    kind: str = "simulated"
    initial_cash: float = 1_000_000.0
    fee_bps: float = 0.5
    tick_size: float = 0.01
    depth_levels: int = 50
    level_volume_share: float = 0.001
    spread_vol_multiple: float = 0.05
    alpaca_api_key: str | None = None
    alpaca_secret_key: str | None = None
    alpaca_base_url: str | None = None
    # the venue's FIX acceptor and the platform's session on it (engine_rs/venue/venue.toml)
    venue_host: str = "127.0.0.1"
    venue_port: int = 9878
    venue_sender_comp_id: str = "QUANT"
    venue_target_comp_id: str = "VENUE"
    # QuickFIX's store (sequence numbers) and logs; relative paths are under QUANT_DATA_DIR
    venue_fix_dir: str = "fix"

    def fill_model(self) -> FillModel:
        """The simulated broker's fill model (the backtest fills its orders with it too)."""
        return FillModel(
            fee_bps=self.fee_bps,
            tick_size=self.tick_size,
            depth_levels=self.depth_levels,
            level_volume_share=self.level_volume_share,
            spread_vol_multiple=self.spread_vol_multiple,
        )

    def client(self, store: Store) -> BrokerClient:
        if self.kind == "simulated":
            fill = self.fill_model()
            return SimulatedBroker(store, initial_cash=self.initial_cash, **vars(fill))
        if self.kind == "alpaca":
            if not (self.alpaca_api_key and self.alpaca_secret_key):
                raise dg.Failure("broker kind 'alpaca' needs ALPACA_API_KEY and ALPACA_SECRET_KEY")
            from resources.broker.alpaca import AlpacaBroker

            return AlpacaBroker(
                self.alpaca_api_key, self.alpaca_secret_key, base_url=self.alpaca_base_url
            )
        if self.kind == "venue":
            from resources.broker.venue import VenueBroker

            return VenueBroker(
                store,
                self.venue_host,
                self.venue_port,
                data_dir() / self.venue_fix_dir,
                sender_comp_id=self.venue_sender_comp_id,
                target_comp_id=self.venue_target_comp_id,
                initial_cash=self.initial_cash,
                tick_size=self.tick_size,
            )
        raise dg.Failure(f"unknown broker kind {self.kind!r}; known: {BROKER_KINDS}")
