"""The REST API (FastAPI) under ``/api/v1``: trigger the daily pipeline, follow its runs, download
the daily PDF report and read the paper orders. ``quant-api`` starts it (see :mod:`.app`)."""
