"""The integer codes of the batch API's ``kind``, ``sides`` and ``types`` columns (the
single-order API takes them too, besides the strings ``"buy"``, ``"limit"``, ...)."""

from __future__ import annotations

from enum import IntEnum

from quant_engine._native import CANCEL, MODIFY, SUBMIT


class Side(IntEnum):
    """Order side codes (``sides`` column of the batch API)."""

    BUY = 0
    SELL = 1


class OrderType(IntEnum):
    """Order type codes (``types`` column of the batch API)."""

    LIMIT = 0
    MARKET = 1
    IOC = 2
    FOK = 3


class CommandKind(IntEnum):
    """Command codes (``kind`` column of the batch API)."""

    SUBMIT = SUBMIT
    CANCEL = CANCEL
    MODIFY = MODIFY
