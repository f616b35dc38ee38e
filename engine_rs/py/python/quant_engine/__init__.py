"""quant_engine: the Python face of the ``engine_rs`` Rust matching engine.

* ``OrderBook`` (one instrument) and ``Engine`` (many, by symbol id): single-order calls that
  return event objects, and ``process_batch`` over NumPy command columns (GIL released).
* ``Side``, ``OrderType``, ``CommandKind``: the integer codes the batch API takes (the
  single-order API also takes the strings ``"buy"``, ``"limit"``, ...).
* ``mixed_stream``: a deterministic benchmark stream of commands.

Errors: argument errors raise ``ValueError`` (``TypeError`` for wrong Python types) before
anything reaches the book; business rejects come back as ``Rejected`` events. See
``_native.pyi`` for the details.
"""

from __future__ import annotations

from quant_engine._native import (
    CANCEL,
    MODIFY,
    SUBMIT,
    Accepted,
    Cancelled,
    Done,
    Engine,
    Fill,
    Modified,
    OrderBook,
    Rejected,
    __version__,
    clock_overhead_ns,
)
from quant_engine.codes import CommandKind, OrderType, Side
from quant_engine.streams import OrderStream, mixed_stream

Event = Accepted | Rejected | Fill | Cancelled | Modified | Done
"""Any event the engine emits."""


__all__ = [
    "CANCEL",
    "MODIFY",
    "SUBMIT",
    "Accepted",
    "Cancelled",
    "CommandKind",
    "Done",
    "Engine",
    "Event",
    "Fill",
    "Modified",
    "OrderBook",
    "OrderStream",
    "OrderType",
    "Rejected",
    "Side",
    "__version__",
    "clock_overhead_ns",
    "mixed_stream",
]
