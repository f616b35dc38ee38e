"""Execution assets: the Rust matching engine (through its Python binding) and its benchmark."""
