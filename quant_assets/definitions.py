"""The quant_assets code location: every asset, check, job, schedule and resource."""

from __future__ import annotations

import dagster as dg

from quant_assets.execution import assets as execution_assets
from quant_assets.execution import checks as execution_checks
from quant_assets.execution import engine_benchmark
from quant_assets.features import assets as feature_assets
from quant_assets.ingest import assets as ingest_assets
from quant_assets.ingest import checks as ingest_checks
from quant_assets.models import assets as model_assets
from quant_assets.models import deployment_assets, selection_assets
from quant_assets.monitoring import assets as monitoring_assets
from quant_assets.monitoring import checks as monitoring_checks
from quant_assets.monitoring.sensors import retraining_trigger
from quant_assets.portfolio import assets as portfolio_assets
from quant_assets.reporting import assets as reporting_assets
from quant_assets.research import assets as research_assets
from quant_assets.risk import assets as risk_assets
from quant_assets.risk import checks as risk_checks
from resources.config import resources_from_env
from schedules import jobs, schedules

defs = dg.Definitions(
    assets=dg.load_assets_from_modules(
        [
            ingest_assets,
            feature_assets,
            model_assets,
            deployment_assets,
            selection_assets,
            portfolio_assets,
            risk_assets,
            research_assets,
            execution_assets,
            monitoring_assets,
            reporting_assets,
            engine_benchmark,
        ]
    ),
    asset_checks=dg.load_asset_checks_from_modules(
        [ingest_checks, risk_checks, execution_checks, monitoring_checks]
    ),
    jobs=jobs,
    schedules=schedules,
    # here, not in schedules/: the sensor imports the weekly job from there
    sensors=[retraining_trigger],
    resources=resources_from_env(),
    # one machine, small steps: in-process runs cost ~10 s less per run than multiprocess;
    # a deployment swaps this for the k8s_job_executor in its own definitions
    executor=dg.in_process_executor,
)
