"""The ``MacroData`` Dagster resource: FRED when a key is configured, offline otherwise."""

from __future__ import annotations

import dagster as dg
from pydantic import Field


class MacroData(dg.ConfigurableResource):
    """Macro series (DGS10, DGS2, T10Y2Y, VIXCLS, UNRATE): FRED via fredapi with an API key,
    a deterministic offline generator without one."""

    fred_api_key: str | None = Field(default=None, description="FRED_API_KEY; offline when unset")
    seed: int = Field(default=7, description="offline: random seed")
    retry_attempts: int = Field(default=3, description="attempts per FRED call")

    @property
    def source(self) -> str:
        return "fred" if self.fred_api_key else "offline"

    def get_provider(self):  # -> MacroProvider
        if self.fred_api_key:
            from resources.macro.fred import FredProvider

            return FredProvider(api_key=self.fred_api_key, attempts=self.retry_attempts)
        from resources.macro.offline import OfflineMacroProvider

        return OfflineMacroProvider(seed=self.seed)
