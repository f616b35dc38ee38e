"""Resources as configured by environment variables (see the README's configuration table).

Secrets are passed as ``dagster.EnvVar`` so their values never show in the UI or run config.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from resources.broker.resource import Broker
from resources.deployment_policy import DeploymentPolicy
from resources.execution_policy import ExecutionPolicy
from resources.macro.resource import MacroData
from resources.market_data.resource import MarketData
from resources.mlflow import ModelRegistry, mlflow_resource
from resources.portfolio_policy import PortfolioPolicy
from resources.settings import default_store_url
from resources.storage import Store


def _secret(name: str) -> Any:
    return dg.EnvVar(name) if os.environ.get(name) else None


def store_from_env(reader: bool = False) -> Store:
    """The configured store; ``reader`` for the API and the dashboard (``Store.reader``)."""
    # a PostgreSQL URL carries a password: keep it out of the run config
    cache = os.environ.get("QUANT_REDIS_URL") or None
    if os.environ.get("QUANT_STORE_URL", "").startswith(("postgresql://", "postgres://")):
        return Store(url=dg.EnvVar("QUANT_STORE_URL"), reader=reader, cache_url=cache)
    return Store(url=default_store_url(), reader=reader, cache_url=cache)


def market_data_from_env() -> MarketData:
    env = os.environ.get
    return MarketData(
        provider=env("QUANT_MARKET_DATA_PROVIDER") or "synthetic",
        seed=int(env("QUANT_SYNTHETIC_SEED") or 7),
        n_tickers=int(env("QUANT_SYNTHETIC_TICKERS") or 100),
        files_path=env("QUANT_FILES_PATH") or None,
        universe_path=env("QUANT_UNIVERSE_PATH") or None,
        include_etfs=env("QUANT_UNIVERSE_INCLUDE_ETFS") == "1",
        alpaca_api_key=_secret("ALPACA_API_KEY"),
        alpaca_secret_key=_secret("ALPACA_SECRET_KEY"),
        alpaca_feed=env("ALPACA_FEED") or "iex",
        retry_attempts=int(env("QUANT_PROVIDER_ATTEMPTS") or 3),
    )


def macro_data_from_env() -> MacroData:
    return MacroData(
        fred_api_key=_secret("FRED_API_KEY"),
        seed=int(os.environ.get("QUANT_SYNTHETIC_SEED") or 7),
        retry_attempts=int(os.environ.get("QUANT_PROVIDER_ATTEMPTS") or 3),
    )


def broker_from_env() -> Broker:
    env = os.environ.get
    return Broker(
        kind=env("QUANT_BROKER") or "simulated",
        initial_cash=float(env("QUANT_INITIAL_CASH") or 1_000_000.0),
        alpaca_api_key=_secret("ALPACA_API_KEY"),
        alpaca_secret_key=_secret("ALPACA_SECRET_KEY"),
        alpaca_base_url=env("ALPACA_PAPER_URL") or None,
        venue_host=env("QUANT_VENUE_HOST") or "127.0.0.1",
        venue_port=int(env("QUANT_VENUE_PORT") or 9878),
        venue_sender_comp_id=env("QUANT_VENUE_COMP_ID") or "QUANT",
    )


def resources_from_env() -> dict[str, Any]:
    return {
        "store": store_from_env(),
        "market_data": market_data_from_env(),
        "macro_data": macro_data_from_env(),
        # MLflow's own MLFLOW_TRACKING_URI (or the local sqlite default) for both
        "mlflow": mlflow_resource,
        "model_registry": ModelRegistry(),
        "portfolio_policy": PortfolioPolicy(),
        "deployment_policy": DeploymentPolicy(),
        "broker": broker_from_env(),
        "execution_policy": ExecutionPolicy(kill_switch=os.environ.get("QUANT_KILL_SWITCH") == "1"),
    }
