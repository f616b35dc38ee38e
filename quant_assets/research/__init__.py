"""Research: the walk-forward backtest, its P&L simulation and performance statistics."""
