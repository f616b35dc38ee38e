"""Where a triggered run goes: a Dagster webserver over GraphQL (``QUANT_DAGSTER_URL``), or this
process, against the Dagster instance at ``DAGSTER_HOME``.

In-process runs execute one at a time on a worker thread (the store is one DuckDB file by
default), so ``submit`` returns the run id at once and the run is ``QUEUED`` until its turn; from
then on its status is the instance's."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import dagster as dg

from apps.api.errors import redact_paths

logger = logging.getLogger("quant.api")

PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
TRIGGER_TAG = "quant/triggered_by"

Backend = Literal["in_process", "graphql"]


class RunNotFound(LookupError):
    """No run with that id."""


class RunBackendError(RuntimeError):
    """The place runs go (the Dagster webserver) failed or refused: a 502 for the client."""


@dataclass(frozen=True)
class RunInfo:
    """A run as the API shows it. ``partition``: its partition key, or "FIRST...LAST" for a
    run over a range (then ``partition_range`` holds {"start", "end"}); None when unknown."""

    run_id: str
    status: str
    backend: Backend
    job_name: str
    partition: str | None = None
    partition_range: dict[str, str] | None = None
    asset_selection: tuple[str, ...] | None = None
    start_time: str | None = None
    end_time: str | None = None
    message: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.asset_selection is not None:
            out["asset_selection"] = list(self.asset_selection)
        if self.message is not None:
            out["message"] = redact_paths(self.message)
        return out


def partition_of(tags: Mapping[str, str]) -> tuple[str | None, dict[str, str] | None]:
    """A run's partition and range from its tags: one partition, or a range run's
    (``dagster asset materialize --partition-range``, a single-run backfill) "FIRST...LAST"."""
    start, end = tags.get(RANGE_START_TAG), tags.get(RANGE_END_TAG)
    if start and end:
        return f"{start}...{end}", {"start": start, "end": end}
    return tags.get(PARTITION_TAG), None


class RunLauncher(Protocol):
    """Submits the daily job for a partition and reports its runs."""

    backend: Backend

    def submit(self, partition: date) -> RunInfo: ...

    def get(self, run_id: str) -> RunInfo: ...

    def close(self) -> None: ...


def default_selection() -> tuple[str, ...]:
    """The asset keys the daily schedule requests (``schedules.DAILY_ASSETS``)."""
    from schedules import DAILY_ASSETS, keys_of

    return tuple(k.to_user_string() for k in keys_of(*DAILY_ASSETS))


def whole_assets(selection: Sequence[str]) -> tuple[str, ...]:
    """``selection`` with every multi-asset completed (``raw_bars`` brings
    ``raw_bars_quarantine``): Dagster runs a computation that writes several tables whole."""
    from quant_assets.definitions import defs

    keys: dict[str, None] = {}
    for name in selection:
        assets = defs.resolve_assets_def(dg.AssetKey.from_user_string(name))
        keys[name] = None
        keys.update(dict.fromkeys(spec.key.to_user_string() for spec in assets.specs))
    return tuple(keys)


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


class InProcessRuns:
    """Runs the job with ``execute_in_process`` on one worker thread, against the instance at
    DAGSTER_HOME (``apps.cli.dagster_home()``), with resources built from the environment
    when the run starts."""

    backend: Backend = "in_process"

    def __init__(self, job_name: str, asset_selection: Sequence[str] | None = None) -> None:
        self.job_name = job_name
        self.asset_selection = whole_assets(asset_selection) if asset_selection else None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="quant-api-run")
        self._lock = threading.Lock()
        # runs the instance does not know yet (queued), or never will (failed before starting)
        self._pending: dict[str, RunInfo] = {}
        self._instance: dg.DagsterInstance | None = None

    def instance(self) -> dg.DagsterInstance:
        with self._lock:
            if self._instance is None:
                from apps.cli import dagster_home

                self._instance = dg.DagsterInstance.from_config(str(dagster_home()))
            return self._instance

    def submit(self, partition: date) -> RunInfo:
        from dagster._core.utils import make_new_run_id

        selection = self.asset_selection or default_selection()
        info = RunInfo(
            run_id=make_new_run_id(),
            status=dg.DagsterRunStatus.QUEUED.value,
            backend=self.backend,
            job_name=self.job_name,
            partition=partition.isoformat(),
            asset_selection=selection,
        )
        with self._lock:
            self._pending[info.run_id] = info
        self._executor.submit(self._execute, info)
        return info

    def _execute(self, info: RunInfo) -> None:
        try:
            from dagster._record import copy

            from quant_assets.definitions import defs
            from resources.config import resources_from_env

            # the resources of the environment now, not of when quant_assets.definitions was
            # first imported (a job cannot override resources bound to its assets)
            job = copy(defs, resources=resources_from_env()).resolve_job_def(self.job_name)
            assert info.asset_selection is not None and info.partition is not None
            job.execute_in_process(
                instance=self.instance(),
                partition_key=info.partition,
                asset_selection=[dg.AssetKey.from_user_string(k) for k in info.asset_selection],
                run_id=info.run_id,
                tags={TRIGGER_TAG: "api"},
                raise_on_error=False,
            )
        except Exception as exc:
            logger.exception("in-process run %s could not run", info.run_id)
            failed = replace(
                info,
                status=dg.DagsterRunStatus.FAILURE.value,
                message=f"the run could not start: {type(exc).__name__}: {exc}",
            )
            with self._lock:
                self._pending[info.run_id] = failed
            return
        with self._lock:
            self._pending.pop(info.run_id, None)

    def get(self, run_id: str) -> RunInfo:
        with self._lock:
            pending = self._pending.get(run_id)
        record = self.instance().get_run_record_by_id(run_id)
        if record is None:
            if pending is None:
                raise RunNotFound(run_id)
            return pending
        run = record.dagster_run
        selection = run.asset_selection
        partition, partition_range = partition_of(run.tags)
        return RunInfo(
            run_id=run.run_id,
            status=run.status.value,
            backend=self.backend,
            job_name=run.job_name,
            partition=partition,
            partition_range=partition_range,
            asset_selection=tuple(sorted(k.to_user_string() for k in selection))
            if selection
            else None,
            start_time=_iso(record.start_time),
            end_time=_iso(record.end_time),
            message=self._failure(run.run_id)
            if run.status == dg.DagsterRunStatus.FAILURE
            else None,
        )

    def _failure(self, run_id: str) -> str | None:
        """The failed steps of a failed run, with their errors' first lines."""
        failures = self.instance().all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
        messages = []
        for entry in failures:
            event = entry.dagster_event
            error = getattr(event.event_specific_data, "error", None) if event else None
            # the user code's own error, not Dagster's "Error occurred while executing op"
            while error is not None and error.cause is not None:
                error = error.cause
            first_line = (error.message if error else entry.message).strip().splitlines()
            messages.append(f"{entry.step_key}: {first_line[0] if first_line else 'failed'}")
        return "; ".join(messages) or None

    def close(self) -> None:
        """Drops queued runs and waits for the one running (its run would be left STARTED)."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            if self._instance is not None:
                self._instance.dispose()
                self._instance = None


class GraphQLRuns:
    """Submits runs to a Dagster webserver (``DagsterGraphQLClient``); the webserver's run
    launcher (and daemon, for queued runs) executes them."""

    backend: Backend = "graphql"

    def __init__(
        self,
        url: str,
        job_name: str,
        asset_selection: Sequence[str] | None = None,
        client: Any = None,
    ) -> None:
        self.url = url
        self.job_name = job_name
        self.asset_selection = whole_assets(asset_selection) if asset_selection else None
        self._client = client or graphql_client(url)

    def submit(self, partition: date) -> RunInfo:
        from dagster_graphql import DagsterGraphQLClientError

        selection = self.asset_selection or default_selection()
        try:
            run_id = self._client.submit_job_execution(
                self.job_name,
                tags={PARTITION_TAG: partition.isoformat(), TRIGGER_TAG: "api"},
                asset_selection=[dg.AssetKey.from_user_string(k) for k in selection],
            )
        except DagsterGraphQLClientError as exc:
            raise RunBackendError(f"the Dagster webserver did not start the run: {exc}") from exc
        return RunInfo(
            run_id=str(run_id),
            status=dg.DagsterRunStatus.QUEUED.value,
            backend=self.backend,
            job_name=self.job_name,
            partition=partition.isoformat(),
            asset_selection=selection,
        )

    def get(self, run_id: str) -> RunInfo:
        from dagster_graphql import DagsterGraphQLClientError

        try:
            status = self._client.get_run_status(run_id)
        except DagsterGraphQLClientError as exc:
            if exc.args and exc.args[0] in ("RunNotFoundError", "PipelineRunNotFoundError"):
                raise RunNotFound(run_id) from exc
            raise RunBackendError(f"the Dagster webserver did not answer: {exc}") from exc
        return RunInfo(
            run_id=run_id, status=status.value, backend=self.backend, job_name=self.job_name
        )

    def close(self) -> None:
        pass


def graphql_client(url: str) -> Any:
    """A ``DagsterGraphQLClient`` for a webserver URL such as ``http://dagster:3000`` (a path is
    the webserver's path prefix)."""
    from dagster_graphql import DagsterGraphQLClient

    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"QUANT_DAGSTER_URL must be an http(s) URL, got {url!r}")
    return DagsterGraphQLClient(
        parts.hostname,
        port_number=parts.port,
        use_https=parts.scheme == "https",
        path_prefix=parts.path.rstrip("/"),
        timeout=30,
    )
