"""Macro series (rates, curve, volatility, unemployment): FRED with a key, offline without one."""

from resources.macro.base import MACRO_SCHEMA, MACRO_SERIES_IDS, MacroProvider, conform_macro

__all__ = ["MACRO_SCHEMA", "MACRO_SERIES_IDS", "MacroProvider", "conform_macro"]
