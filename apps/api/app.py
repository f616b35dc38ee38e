"""``quant-api``: the REST API's app factory and console command.

    QUANT_API_KEY=... quant-api --host 127.0.0.1 --port 8000

Host and port come from the options, else ``QUANT_API_HOST`` / ``QUANT_API_PORT``, else
127.0.0.1:8000. Without ``QUANT_API_KEY`` it refuses to start, unless ``--insecure-dev-key`` is
given: then the public key ``insecure-dev-key`` is accepted, and only on a loopback address.
Runs go to the Dagster webserver at ``QUANT_DAGSTER_URL`` when it is set, else execute in this
process against the instance at ``DAGSTER_HOME``."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from apps.api import errors
from apps.api.auth import API_KEY_HEADER
from apps.api.guard import RequestGuard
from apps.api.routes import router
from apps.api.runs import GraphQLRuns, InProcessRuns, RunLauncher
from apps.api.settings import (
    INSECURE_DEV_KEY,
    MAX_BODY_ENV,
    ApiSettings,
    ConfigurationError,
    is_loopback,
)
from resources.config import store_from_env
from resources.storage import Store

PREFIX = "/api/v1"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DOCS_URL = f"{PREFIX}/docs"
STATIC_DOCS_URL = f"{PREFIX}/static-docs"
OPENAPI_URL = f"{PREFIX}/openapi.json"

DESCRIPTION = f"""\
Trigger the daily pipeline, follow its runs, download the daily PDF report, read the paper
orders and the latest session's predictions, live weights, risk figures and orders
(`GET {PREFIX}/latest/{{kind}}`: from the Redis serving cache when it holds the latest version,
else from the store).

**Authentication.** Every route but these docs needs the `{API_KEY_HEADER}` header carrying the
server's key (`QUANT_API_KEY`); a missing or wrong key is a 401, answered from the headers before
any body is read.

**Body size.** A request body over `{MAX_BODY_ENV}` bytes (default 65536) is a 413, from its
`Content-Length` or, sent without one, as soon as that many bytes have arrived.

**Responses.** Every JSON body, errors included, is one schema, `ApiResponse`:
`{{"status": "ok" | "error", "timestamp": "<UTC ISO 8601>", "summary": "<one line>",
"data": <payload or null>}}`. Invalid input is a 4xx whose `summary` says what was wrong.

**The one binary exception:** a successful `GET {PREFIX}/report` sends the PDF itself
(`application/pdf`); its errors (401, 404, 422) are JSON in the common schema.
"""


def make_runner(settings: ApiSettings) -> RunLauncher:
    if settings.dagster_url:
        return GraphQLRuns(settings.dagster_url, settings.job_name, settings.asset_selection)
    return InProcessRuns(settings.job_name, settings.asset_selection)


def create_app(
    settings: ApiSettings,
    runner: RunLauncher | None = None,
    store: Store | None = None,
) -> FastAPI:
    """The API. ``runner`` (default: from ``settings``, GraphQL or in-process) and ``store``
    (default: ``store_from_env()``) can be injected."""
    launcher = runner or make_runner(settings)
    journal = store or store_from_env(reader=True)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # the imported heap (Dagster, Polars, MLflow) out of the collector: a full collection
        # of it stalled every request in flight for ~0.2 s (benches/bench_api_latest.py)
        gc.freeze()
        yield
        launcher.close()
        journal.close()

    # the Swagger UI's scripts are served from the package, not a CDN: the docs work offline
    app = FastAPIOffline(
        title="Quant platform API",
        version="1",
        description=DESCRIPTION,
        docs_url=DOCS_URL,
        redoc_url=None,
        static_url=STATIC_DOCS_URL,
        openapi_url=OPENAPI_URL,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.runner = launcher
    app.state.store = journal
    errors.install(app)
    app.add_middleware(
        RequestGuard,
        api_key=settings.api_key,
        max_body_bytes=settings.max_body_bytes,
        open_paths=(DOCS_URL, STATIC_DOCS_URL, OPENAPI_URL),
    )
    app.include_router(router, prefix=PREFIX)
    return app


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="quant-api", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--host", default=os.environ.get("QUANT_API_HOST") or DEFAULT_HOST, help="bind address"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("QUANT_API_PORT") or DEFAULT_PORT),
        help="port",
    )
    parser.add_argument(
        "--insecure-dev-key",
        action="store_true",
        help=f"when QUANT_API_KEY is unset, accept the public key {INSECURE_DEV_KEY!r} "
        "(loopback addresses only; for local development)",
    )
    parser.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    args = parse_args(argv)
    try:
        settings = ApiSettings.from_env(insecure_dev_key=args.insecure_dev_key)
        if settings.api_key == INSECURE_DEV_KEY and not is_loopback(args.host):
            raise ConfigurationError(
                f"the insecure development key is only served on a loopback address, not on "
                f"{args.host}: set QUANT_API_KEY"
            )
    except ConfigurationError as exc:
        print(f"quant-api: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper())
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
