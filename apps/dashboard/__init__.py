"""The Dash + Plotly dashboard over the store: ``quant-dashboard`` (``app.main``)."""
