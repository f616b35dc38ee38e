"""Feature computations on bars: pure Polars libraries, no Dagster code."""
