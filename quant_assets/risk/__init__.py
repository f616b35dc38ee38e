"""Risk: VaR/CVaR, Euler contributions, stress tests, the risk limits and their blocking checks."""
