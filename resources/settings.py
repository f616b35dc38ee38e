"""Where the platform keeps its files, and the environment variables that move them.

Every default works offline with no secrets: a DuckDB file under the data directory.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """The data directory: ``QUANT_DATA_DIR`` or ``<project>/data``; created on first use."""
    path = Path(os.environ.get("QUANT_DATA_DIR") or PROJECT_ROOT / "data").expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_store_url() -> str:
    """``QUANT_STORE_URL`` (a DuckDB path or a ``postgresql://`` URL) or the DuckDB default."""
    return os.environ.get("QUANT_STORE_URL") or str(data_dir() / "quant.duckdb")
