"""The docker-compose stack (docker-compose.yml, Dockerfile, docker/, .env.example).

Two independent checks:

- the compose CLI (``docker compose`` v2 or ``docker-compose``; ``scripts/compose.sh`` installs
  it) validates the file the way a user runs it: in a copy of the stack's files with
  ``.env.example`` copied to ``.env``. ``config`` only parses, no Docker daemon is needed. Without
  a CLI the test is skipped locally and fails when ``CI`` is set, like the PostgreSQL fixture;
- PyYAML reads the file itself and checks what the stack promises: every service, one Dockerfile
  for every built service, the named volumes, healthchecks and ``service_healthy`` dependencies,
  secrets only as ``${VAR}`` references resolved from the git-ignored ``.env``.

With a PostgreSQL server (``postgres`` marker) the database init script and the Dagster instance
configuration (docker/dagster.yaml on dagster-postgres) also run for real.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
INSTANCE_YAML = ROOT / "docker" / "dagster.yaml"
INITDB_SCRIPT = ROOT / "docker" / "initdb" / "10-quant-databases.sh"

SERVICES = {
    "timescaledb",
    "redis",
    "mlflow",
    "dagster-webserver",
    "dagster-daemon",
    "api",
    "dashboard",
    "venue",
}
BUILT_SERVICES = SERVICES - {"timescaledb", "redis"}
# the services that run the platform's code and read its settings from .env
PLATFORM_SERVICES = {"dagster-webserver", "dagster-daemon", "api", "dashboard"}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|API_KEY|TOKEN", re.IGNORECASE)
# ${VAR}, ${VAR:-default}, ${VAR:?message}; not $${...} (escaped for the container's shell)
REFERENCE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?][^}]*)?\}")
PURE_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(?::?[-?][^}]*)?\}$")


# --- helpers ----------------------------------------------------------------------------------------


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def compose_values_text() -> str:
    """The compose file's values, without its comments (they mention ``${VAR}`` in prose)."""
    return yaml.safe_dump(load_compose(), width=10_000)


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's ``environment`` as a dict (compose accepts a mapping or KEY=VALUE items)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def command_text(service: dict[str, Any]) -> str:
    command = service.get("command") or ""
    return " ".join(command) if isinstance(command, list) else str(command)


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def named_volume_at(service: dict[str, Any], target: str, declared: set[str]) -> str | None:
    """The named volume mounted at ``target`` in ``service`` (short or long syntax)."""
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            source, mount = volume.get("source"), volume.get("target")
        else:
            source, mount = ([*str(volume).split(":"), ""])[:2]
        if mount == target and source in declared:
            return source
    return None


def compose_cli() -> list[str] | None:
    """``docker compose`` when the v2 plugin runs, else ``docker-compose``, else None."""
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    return None


@pytest.fixture(scope="module")
def compose() -> list[str]:
    cli = compose_cli()
    if cli is None:
        message = (
            "no docker compose / docker-compose CLI; install one with `bash scripts/compose.sh`"
        )
        if os.environ.get("CI"):
            pytest.fail(message + " [CI is set: the compose file must be validated]", pytrace=False)
        pytest.skip(message)
    return cli


def stack_copy(tmp_path: Path, env_text: str) -> Path:
    """The files the compose file refers to, in a fresh project directory, with ``env_text`` as
    its ``.env``."""
    project = tmp_path / "stack"
    project.mkdir()
    for name in ("docker-compose.yml", "Dockerfile", ".dockerignore"):
        shutil.copy2(ROOT / name, project / name)
    shutil.copytree(ROOT / "docker", project / "docker")
    (project / ".env").write_text(env_text)
    return project


def run_config(cli: list[str], project: Path) -> subprocess.CompletedProcess[str]:
    # the variables the file references must come from the project's .env, not from this shell
    referenced = set(REFERENCE.findall(compose_values_text()))
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in referenced and not k.startswith("COMPOSE_") and k != "DOCKER_HOST"
    }
    return subprocess.run(
        [*cli, "-f", "docker-compose.yml", "config"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# --- the compose CLI ----------------------------------------------------------------------------------


def test_compose_cli_validates_the_stack_with_env_example(compose, tmp_path):
    project = stack_copy(tmp_path, ENV_EXAMPLE.read_text())
    result = run_config(compose, project)
    assert result.returncode == 0, f"{' '.join(compose)} config failed:\n{result.stderr}"

    resolved = yaml.safe_load(result.stdout)
    services = resolved["services"]
    assert set(services) == SERVICES
    for name in BUILT_SERVICES:
        build = services[name]["build"]
        assert Path(build["context"]).resolve() == project.resolve(), name
        assert build.get("dockerfile", "Dockerfile") == "Dockerfile", name
    assert len({services[name]["image"] for name in BUILT_SERVICES}) == 1

    example = env_example()
    store_url = urlsplit(services["api"]["environment"]["QUANT_STORE_URL"])
    assert store_url.scheme == "postgresql"
    assert store_url.hostname == "timescaledb"
    assert store_url.password == example["POSTGRES_PASSWORD"]
    assert store_url.path == f"/{example['POSTGRES_DB']}"
    assert services["dashboard"]["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert services["api"]["environment"]["QUANT_API_KEY"] == example["QUANT_API_KEY"]
    mlflow_db = urlsplit(services["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"])
    assert (mlflow_db.scheme, mlflow_db.hostname) == ("postgresql", "timescaledb")
    assert {"timescaledb-data", "mlflow-artifacts"} <= set(resolved["volumes"])


def test_compose_cli_refuses_a_missing_secret(compose, tmp_path):
    without_password = "\n".join(
        line
        for line in ENV_EXAMPLE.read_text().splitlines()
        if not line.startswith("POSTGRES_PASSWORD=")
    )
    result = run_config(compose, stack_copy(tmp_path, without_password + "\n"))
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr


# --- the file's structure (PyYAML) ----------------------------------------------------------------------


def test_every_service_of_the_stack_is_there():
    assert set(load_compose()["services"]) == SERVICES


def test_every_built_service_uses_the_one_dockerfile():
    services = load_compose()["services"]
    for name in BUILT_SERVICES:
        build = services[name].get("build")
        assert isinstance(build, dict), f"{name} is not built from the project"
        assert build.get("context") == ".", name
        assert build.get("dockerfile", "Dockerfile") == "Dockerfile", name
    assert len({services[name]["image"] for name in BUILT_SERVICES}) == 1
    assert "build" not in services["timescaledb"]
    assert "timescale/timescaledb" in services["timescaledb"]["image"]
    assert DOCKERFILE.is_file()
    assert sorted(p.name for p in ROOT.glob("Dockerfile*")) == ["Dockerfile"]


def test_services_run_the_expected_commands():
    services = load_compose()["services"]
    mlflow = command_text(services["mlflow"])
    assert "mlflow server" in mlflow
    assert "--backend-store-uri" in mlflow and "--artifacts-destination" in mlflow
    assert "--host 0.0.0.0" in mlflow
    assert command_text(services["dagster-webserver"]).startswith("dagster-webserver")
    assert "/opt/quant/workspace.yaml" in command_text(services["dagster-webserver"])
    assert command_text(services["dagster-daemon"]).startswith("dagster-daemon run")
    assert command_text(services["api"]) == "quant-api --host 0.0.0.0"
    assert command_text(services["dashboard"]) == "quant-dashboard --host 0.0.0.0"
    venue = command_text(services["venue"])
    assert venue.startswith("venue --config /opt/quant/venue.toml")
    assert "--data-dir /opt/quant/data/venue" in venue


def test_database_and_artifacts_live_on_named_volumes():
    compose = load_compose()
    declared = set(compose.get("volumes") or {})
    services = compose["services"]
    assert named_volume_at(services["timescaledb"], "/var/lib/postgresql/data", declared)
    destination = re.search(r"--artifacts-destination\s+(\S+)", command_text(services["mlflow"]))
    assert destination is not None
    assert named_volume_at(services["mlflow"], destination.group(1), declared)
    # reports and the Dagster compute logs are shared by the containers that write and serve them
    for name in PLATFORM_SERVICES:
        assert named_volume_at(services[name], "/opt/quant/data", declared), name
        assert named_volume_at(services[name], "/opt/dagster/storage", declared), name


def test_the_init_script_is_mounted_as_one_file_next_to_the_image_own():
    timescaledb = load_compose()["services"]["timescaledb"]
    mounts = [str(v) for v in timescaledb["volumes"] if "docker-entrypoint-initdb.d" in str(v)]
    assert mounts == [
        "./docker/initdb/10-quant-databases.sh:/docker-entrypoint-initdb.d/10-quant-databases.sh:ro"
    ]
    assert INITDB_SCRIPT.is_file() and os.access(INITDB_SCRIPT, os.X_OK)


def test_every_service_has_a_healthcheck_and_waits_for_healthy_dependencies():
    services = load_compose()["services"]
    for name, service in services.items():
        test = (service.get("healthcheck") or {}).get("test")
        assert test and test != ["NONE"], f"{name} has no healthcheck"
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on without conditions"
        for dependency, spec in depends.items():
            assert spec == {"condition": "service_healthy"}, (name, dependency)
            assert "healthcheck" in services[dependency], (name, dependency)
    # the venue keeps its own journal and needs no database
    for name in BUILT_SERVICES - {"venue"}:
        assert "timescaledb" in services[name]["depends_on"], name
    assert "mlflow" in services["dagster-webserver"]["depends_on"]
    assert "mlflow" in services["dagster-daemon"]["depends_on"]
    assert "dagster-webserver" in services["api"]["depends_on"]


def test_the_platform_is_wired_to_the_stack():
    services = load_compose()["services"]
    for name in PLATFORM_SERVICES:
        env = environment(services[name])
        assert env["QUANT_STORE_URL"].startswith("postgresql://"), name
        assert "@timescaledb:5432/" in env["QUANT_STORE_URL"], name
        assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000", name
        assert env["DAGSTER_HOME"] == "/opt/dagster/dagster_home", name
        assert env["DAGSTER_PG_HOST"] == "timescaledb", name
    assert environment(services["api"])["QUANT_DAGSTER_URL"] == "http://dagster-webserver:3000"
    # the serving cache: every platform service writes or reads it, and waits for it
    for name in PLATFORM_SERVICES:
        assert environment(services[name])["QUANT_REDIS_URL"] == "redis://redis:6379/0", name
        assert "redis" in services[name]["depends_on"], name
    backend = environment(services["mlflow"])["MLFLOW_BACKEND_STORE_URI"]
    assert backend.startswith("postgresql://") and "@timescaledb:5432/" in backend
    assert "COPY docker/dagster.yaml /opt/dagster/dagster_home/dagster.yaml" in (
        DOCKERFILE.read_text()
    )


def test_no_secret_is_hard_coded():
    services = load_compose()["services"]
    for name, service in services.items():
        for key, value in environment(service).items():
            if SECRET_NAME.search(key):
                assert PURE_REFERENCE.match(value), f"{name}.{key} is not a ${{VAR}} reference"
            # credentials inside URLs are references too
            masked = REFERENCE.sub("${REF}", value)
            for password in re.findall(r"://[^:/@]+:([^@]+)@", masked):
                assert password == "${REF}", f"{name}.{key} has a literal password"
    text = compose_values_text()
    for secret in ("change-me", "insecure-dev-key"):
        assert secret not in text
    # a secret without a value makes compose stop instead of starting with an empty password
    for variable in (
        "POSTGRES_PASSWORD",
        "MLFLOW_DB_PASSWORD",
        "DAGSTER_DB_PASSWORD",
        "QUANT_API_KEY",
    ):
        assert re.search(r"\$\{" + variable + r":\?", text), variable


def test_published_ports_bind_to_the_configured_address():
    for name, service in load_compose()["services"].items():
        for port in service.get("ports") or []:
            assert str(port).startswith("${BIND_ADDRESS:-127.0.0.1}:"), (name, port)


def test_settings_come_from_the_git_ignored_env_file():
    services = load_compose()["services"]
    for name in PLATFORM_SERVICES:
        env_file = services[name].get("env_file")
        assert env_file in (".env", [".env"]), name
    assert ".env" in [line.strip() for line in (ROOT / ".gitignore").read_text().splitlines()]
    if shutil.which("git") and (ROOT / ".git").exists():
        ignored = subprocess.run(
            ["git", "check-ignore", "-q", ".env"], cwd=ROOT, capture_output=True, check=False
        )
        assert ignored.returncode == 0, ".env is not git-ignored"
        example = subprocess.run(
            ["git", "check-ignore", "-q", ".env.example"],
            cwd=ROOT,
            capture_output=True,
            check=False,
        )
        assert example.returncode == 1, ".env.example must be committed"


def test_env_example_defines_every_variable_with_placeholders():
    example = env_example()
    text = compose_values_text()
    required = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):\?", text))
    referenced = set(REFERENCE.findall(text))
    missing = sorted(referenced - set(example))
    assert not missing, f".env.example lacks {missing}"
    for variable in required:
        assert example[variable], variable
    for key, value in example.items():
        if SECRET_NAME.search(key):
            assert value == "" or value.startswith("change-me"), f"{key} is not a placeholder"
    # the platform's own settings stay documented there
    for key in ("QUANT_DATA_DIR", "QUANT_MARKET_DATA_PROVIDER", "QUANT_SYNTHETIC_TICKERS"):
        assert key in example


def test_dockerfile_builds_the_locked_environment_as_a_non_root_user():
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
    assert "${PYTHON_IMAGE}" in stages
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, flags=re.MULTILINE)
    assert "uv sync --frozen --no-dev" in text
    assert "/usr/local/cargo" in text  # the Rust toolchain the engine binding is compiled with
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    ignored = {
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()
    }
    for path in (".git", ".venv", "target", "data", ".dagster_home", "mlruns", ".env", ".pg"):
        assert path in ignored, path


def test_instance_yaml_keeps_every_storage_on_postgres_from_env():
    config = yaml.safe_load(INSTANCE_YAML.read_text())
    for storage, module in (
        ("run_storage", "dagster_postgres.run_storage"),
        ("event_log_storage", "dagster_postgres.event_log"),
        ("schedule_storage", "dagster_postgres.schedule_storage"),
    ):
        assert config[storage]["module"] == module
        db = config[storage]["config"]["postgres_db"]
        scheme = db.pop("scheme")
        assert set(db) == {"hostname", "port", "username", "password", "db_name"}
        assert all(set(value) == {"env"} for value in db.values()), storage
        # psycopg2: dagster-postgres's NOTIFY fails on SQLAlchemy 2.1's default psycopg 3 driver
        assert scheme == "postgresql+psycopg2", storage


# --- with a PostgreSQL server: the init script and the instance run for real ------------------------


def _psql() -> str | None:
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/psql"),
        key=lambda p: [int(n) for n in re.findall(r"\d+", p.parts[-3])],
    )
    if candidates:
        return str(candidates[-1])
    return shutil.which("psql")


@pytest.mark.postgres
def test_init_script_creates_the_mlflow_and_dagster_databases(postgres_url):
    import psycopg

    psql = _psql()
    if psql is None:
        message = "psql not found; `bash scripts/postgres.sh` installs PostgreSQL with it"
        if os.environ.get("CI"):
            pytest.fail(f"{message} [CI is set: the init script must run]", pytrace=False)
        pytest.skip(message)
    url = urlsplit(postgres_url)
    suffix = uuid.uuid4().hex[:8]
    names = {
        "MLFLOW_DB_USER": f"mlflow_{suffix}",
        "MLFLOW_DB_NAME": f"mlflow_{suffix}",
        "DAGSTER_DB_USER": f"dagster_{suffix}",
        "DAGSTER_DB_NAME": f"dagster_{suffix}",
    }
    env = {
        **os.environ,
        **names,
        "MLFLOW_DB_PASSWORD": "pw-mlflow-" + suffix,
        "DAGSTER_DB_PASSWORD": "pw'dagster-" + suffix,  # a quote: passed as a literal, not SQL
        "POSTGRES_USER": url.username or "postgres",
        "PGHOST": url.hostname or "127.0.0.1",
        "PGPORT": str(url.port or 5432),
        "PGPASSWORD": url.password or "",
        "PATH": f"{Path(psql).parent}:{os.environ.get('PATH', '')}",
    }
    try:
        for _ in range(2):  # a second run (a restarted init) changes nothing and does not fail
            done = subprocess.run(
                ["bash", str(INITDB_SCRIPT)], env=env, capture_output=True, text=True, check=False
            )
            assert done.returncode == 0, done.stderr
        for role, password, database in (
            (names["MLFLOW_DB_USER"], env["MLFLOW_DB_PASSWORD"], names["MLFLOW_DB_NAME"]),
            (names["DAGSTER_DB_USER"], env["DAGSTER_DB_PASSWORD"], names["DAGSTER_DB_NAME"]),
        ):
            with psycopg.connect(
                host=env["PGHOST"],
                port=env["PGPORT"],
                user=role,
                password=password,
                dbname=database,
                connect_timeout=5,
            ) as conn:
                owner = conn.execute(
                    "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                    (database,),
                ).fetchone()
                assert owner == (role,)
                conn.execute("CREATE TABLE owned_here (x int)")  # the owner can create tables
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            for key in ("MLFLOW", "DAGSTER"):
                admin.execute(f'DROP DATABASE IF EXISTS "{names[key + "_DB_NAME"]}"')
                admin.execute(f'DROP ROLE IF EXISTS "{names[key + "_DB_USER"]}"')


@pytest.mark.postgres
def test_instance_yaml_runs_on_postgres(postgres_url, tmp_path, monkeypatch):
    import dagster as dg
    import psycopg
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    database = f"dagster_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    url = urlsplit(postgres_url)
    for key, value in {
        "DAGSTER_PG_HOST": url.hostname or "127.0.0.1",
        "DAGSTER_PG_PORT": str(url.port or 5432),
        "DAGSTER_PG_USER": url.username or "postgres",
        "DAGSTER_PG_PASSWORD": url.password or "",
        "DAGSTER_PG_DB": database,
    }.items():
        monkeypatch.setenv(key, value)
    home = tmp_path / "dagster_home"
    home.mkdir()
    # the container's storage folder, moved under tmp_path
    (home / "dagster.yaml").write_text(
        INSTANCE_YAML.read_text().replace("/opt/dagster/storage", str(tmp_path / "storage"))
    )
    try:
        instance = dg.DagsterInstance.from_config(str(home))
        try:
            assert isinstance(instance.run_storage, PostgresRunStorage)
            assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
            assert type(instance.schedule_storage).__module__.startswith("dagster_postgres")
            assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"

            @dg.asset
            def compose_probe() -> int:
                return 1

            result = dg.materialize([compose_probe], instance=instance)
            assert result.success
            assert instance.get_run_by_id(result.run_id) is not None
            assert instance.get_latest_materialization_event(dg.AssetKey("compose_probe"))
        finally:
            instance.dispose()
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def test_the_serving_cache_is_redis_without_persistence():
    redis = load_compose()["services"]["redis"]
    assert "redis" in redis["image"] and "bookworm" in redis["image"]
    command = command_text(redis)
    assert command.startswith("redis-server") and "--save" in command
    assert "--appendonly no" in command
    assert "ports" not in redis  # only the stack reaches it
