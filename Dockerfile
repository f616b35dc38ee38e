# syntax=docker/dockerfile:1
# One image for every service of docker-compose.yml (Dagster webserver and daemon, MLflow server,
# API, dashboard) and for a Kubernetes user-code deployment (docker/README.md).
#
#   docker build -t quant-platform .
#
# Two stages: `build` compiles the Rust matching engine's Python binding (engine_rs/py, PyO3 via
# maturin) and the venue binary (engine_rs/venue), and installs the locked environment (`uv sync --frozen --no-dev`) into /opt/quant/.venv;
# the runtime stage copies that environment and the sources, without compilers or Rust.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG RUST_IMAGE=rust:1-slim-bookworm

# --- the Rust toolchain (rustup's stable, as in Debian bookworm's official rust image) ---------
FROM ${RUST_IMAGE} AS rust

# --- build: the locked environment, the engine binding compiled from source ----------------------
FROM ${PYTHON_IMAGE} AS build

ARG UV_VERSION=0.13.9
ENV RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:$PATH \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/quant/.venv \
    MATURIN_PEP517_ARGS=--locked \
    CFLAGS="-O0 -g0" \
    CXXFLAGS="-O0 -g0"

RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential ca-certificates pkg-config \
    && rm -rf /var/lib/apt/lists/*
COPY --from=rust /usr/local/rustup /usr/local/rustup
COPY --from=rust /usr/local/cargo /usr/local/cargo
# uv from PyPI, as scripts/bootstrap.sh installs it
RUN pip install --no-cache-dir "uv==${UV_VERSION}" && cargo --version && uv --version

WORKDIR /opt/quant

# dependencies first (a layer that survives source edits): the lockfiles, the manifests and the
# engine crates, which the path dependency quant-engine (engine_rs/py) is built from
COPY pyproject.toml uv.lock Cargo.toml Cargo.lock ./
COPY engine_rs ./engine_rs
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/opt/quant/target \
    uv sync --frozen --no-dev --no-install-project

# the trading venue (engine_rs/venue): a binary of the same workspace, copied out of the cache
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/opt/quant/target \
    cargo build --release --locked -p venue \
    && mkdir -p /opt/quant/bin && cp target/release/venue /opt/quant/bin/venue

# the project itself (installed editable: resources/settings.py finds the project root from it)
COPY README.md workspace.yaml ./
COPY quant_core ./quant_core
COPY quant_assets ./quant_assets
COPY apps ./apps
COPY resources ./resources
COPY schedules ./schedules
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/opt/quant/target \
    uv sync --frozen --no-dev \
    && /opt/quant/.venv/bin/python -c "import quant_engine, quant_assets.definitions"

# --- runtime --------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# libgomp1: LightGBM's OpenMP runtime (the slim image lacks it)
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libgomp1 \
    && rm -rf /var/lib/apt/lists/*

ARG QUANT_UID=10001
RUN groupadd --gid "${QUANT_UID}" quant \
    && useradd --uid "${QUANT_UID}" --gid quant --create-home --shell /usr/sbin/nologin quant

ENV VIRTUAL_ENV=/opt/quant/.venv \
    PATH=/opt/quant/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    QUANT_DATA_DIR=/opt/quant/data \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /opt/quant
COPY --from=build /opt/quant/.venv /opt/quant/.venv
COPY --from=build /opt/quant/bin/venue /usr/local/bin/venue
COPY engine_rs/venue/venue.toml /opt/quant/venue.toml
COPY pyproject.toml uv.lock README.md workspace.yaml ./
COPY quant_core ./quant_core
COPY quant_assets ./quant_assets
COPY apps ./apps
COPY resources ./resources
COPY schedules ./schedules
COPY docker/dagster.yaml /opt/dagster/dagster_home/dagster.yaml

# the directories the compose file mounts named volumes on: owned by the runtime user, so a new
# volume starts with that ownership (data directory, Dagster compute logs, MLflow artifacts)
RUN mkdir -p /opt/quant/data /opt/dagster/storage /mlflow/artifacts \
    && chown -R quant:quant /opt/quant/data /opt/dagster /mlflow

USER quant
EXPOSE 3000 5000 8000 8050 9878

# the default service; docker-compose.yml gives each service its own command
CMD ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", "/opt/quant/workspace.yaml"]
