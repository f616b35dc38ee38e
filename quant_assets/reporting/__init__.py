"""Reports people read: the daily PDF (``daily_report``)."""
