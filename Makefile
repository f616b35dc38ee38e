# The README's two commands are `make run` (the main job) and `make test` (every test).
SHELL := /bin/bash
export PATH := $(HOME)/.local/bin:$(HOME)/.cargo/bin:$(PATH)
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
# uv as installed by scripts/bootstrap.sh: on PATH, or as a module of the python3 it went into
UV = $(shell command -v uv >/dev/null 2>&1 && echo uv || echo python3 -m uv)
# one planned event per asset for single-run backfills (see apps/cli.py)
export DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS ?= true

.PHONY: bootstrap run ingest train reproduce research test test-rust postgres lint ui bench bench-engine bench-venue venue fuzz-build clean-data

bootstrap:
	@bash scripts/bootstrap.sh

## the main job: bars, features, labels, a training and predictions on the embedded defaults
run: bootstrap
	$(UV) run quant-daily

## ingest a chosen range (bars, macro, Alpha158): make ingest END=2024-12-31 SESSIONS=504
ingest: bootstrap
	$(UV) run quant-daily --ingest-only $(if $(END),--end $(END)) $(if $(SESSIONS),--sessions $(SESSIONS))

## train one week's model with the weekly job's defaults: make train WEEK=2024-06-17 (a Monday)
train: bootstrap
	@test -n "$(WEEK)" || { echo "make train WEEK=<Monday of a completed week>"; exit 2; }
	@$(UV) run python -c "from apps.cli import dagster_home; dagster_home()"
	$(UV) run dagster asset materialize -m quant_assets.definitions --select alpha_model,model_validation,shap_summary,validation_scores,drift_reference,drift_null --partition $(WEEK)

## retrain a registered week's model from the store and check its data hash and scores:
## make reproduce WEEK=2024-06-17
reproduce: bootstrap
	@test -n "$(WEEK)" || { echo "make reproduce WEEK=<Monday of a trained week>"; exit 2; }
	$(UV) run quant-reproduce --week $(WEEK)

## the walk-forward IC table and the backtest over what is stored (the daily job's bars, Alpha158
## and labels): make research ARGS="--retrain 21 --skip-backtest" (quant-research --help)
research: bootstrap
	$(UV) run quant-research $(ARGS)

postgres:
	@bash scripts/postgres.sh

## the trading venue: FIX 4.4 on 127.0.0.1:9878, L2 market data to 127.0.0.1:9879, journal in
## data/venue (engine_rs/venue/venue.toml; ARGS="--data-dir DIR --listen HOST:PORT ...")
venue:
	cargo run --release --locked -p venue -- --config engine_rs/venue/venue.toml $(ARGS)

## every test: the Rust engine's tests, then the Python suite against DuckDB and a real
## PostgreSQL server, with coverage
test: bootstrap test-rust
	@mkdir -p $(DAGSTER_HOME); \
	bash scripts/chromium.sh >/dev/null || exit 1; \
	bash scripts/compose.sh >/dev/null || exit 1; \
	bash scripts/redis.sh >/dev/null || exit 1; \
	postgres_env=$$(bash scripts/postgres.sh --env) || exit 1; eval "$$postgres_env"; \
	$(UV) run pytest --cov --cov-report=term --cov-report=xml $(PYTEST_ARGS)

## the matching engine: unit, differential (proptest vs the reference model) and allocation tests
test-rust:
	cargo test --workspace --locked

lint: bootstrap
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

## CI smoke check of the cargo-fuzz target (scripts/fuzz.sh [SECONDS] runs it)
fuzz-build:
	bash scripts/fuzz.sh build

ui: bootstrap
	@$(UV) run python -c "from apps.cli import dagster_home; dagster_home()"
	$(UV) run dagster dev -w workspace.yaml

bench: bootstrap bench-engine bench-venue
	$(UV) run python benches/bench_ingest.py
	$(UV) run python benches/bench_alpha158.py
	$(UV) run python benches/bench_training.py
	$(UV) run python benches/bench_tft.py

## the matching engine: Criterion suites (engine vs reference vs orderbook-rs), the HDR latency
## run over 10M operations, and the Python binding's batch and single-order figures
bench-engine: bootstrap
	cargo bench --locked
	cargo run --release --locked -p engine_bench --bin latency
	$(UV) run python benches/bench_engine_python.py

## the venue over FIX on loopback (round trip, requests/s over 1 and 4 sessions, L2 updates/s),
## the same stream straight into engine_rs and through the venue core, the replay of a 10M-command
## journal: make bench-venue ARGS="--orders 200000 --replay 10000000"
bench-venue:
	cargo build --release --locked -p venue
	cargo run --release --locked -p engine_bench --bin venue_load -- $(ARGS)

clean-data:
	rm -rf data .dagster_home
