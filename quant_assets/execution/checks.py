"""Checks on the paper account, named for what they guarantee."""

import dagster as dg
import polars as pl

from quant_assets.execution.accounting import holdings
from quant_assets.execution.assets import positions
from quant_assets.execution.journal import JOURNAL
from resources.broker.resource import Broker
from resources.storage import Store


@dg.asset_check(
    asset=positions,
    blocking=True,
    description="The broker's positions equal the holdings rebuilt from the order journal's "
    "fills, name by name (a fill the journal missed, or one the broker never made, fails it).",
)
def positions_match_the_broker(store: Store, broker: Broker) -> dg.AssetCheckResult:
    journal = holdings(store.read(JOURNAL)).rename({"qty": "journal_qty"})
    held = broker.client(store).positions()
    reported = pl.DataFrame(
        {"ticker": list(held), "broker_qty": list(held.values())},
        schema={"ticker": pl.String, "broker_qty": pl.Int64},
    )
    both = journal.join(reported, on="ticker", how="full", coalesce=True).with_columns(
        pl.col("journal_qty", "broker_qty").fill_null(0)
    )
    breaks = both.filter(pl.col("journal_qty") != pl.col("broker_qty")).sort("ticker")
    return dg.AssetCheckResult(
        passed=breaks.is_empty(),
        metadata={
            "names": both.height,
            "breaks": breaks.height,
            "differences": dg.MetadataValue.json(breaks.head(50).to_dicts()),
        },
    )
