"""Monitoring: drift of the live model against its training reference (``drift``: pure
measures; ``assets``: the daily ``drift_report``; ``checks``: its drift checks; ``sensors``:
the retraining trigger). Import the submodules directly; nothing heavy is loaded here."""
