#!/bin/bash
# First start of the TimescaleDB container only (docker-entrypoint-initdb.d; a volume that already
# holds a cluster skips it): a role and a database each for MLflow's tracking/registry store and
# for Dagster's instance storage, next to the platform's store (POSTGRES_DB, owned by
# POSTGRES_USER; the image's own init script has already enabled TimescaleDB there).
#
# docker-compose.yml mounts this one file (not the folder: the folder would hide the image's own
# TimescaleDB init scripts) and passes the names and passwords from .env.
set -euo pipefail

create_role_and_database() {
  local role="$1" password="$2" database="$3"
  if [[ -z $password ]]; then
    echo "10-quant-databases.sh: no password for role $role (set it in .env)" >&2
    exit 1
  fi
  echo "10-quant-databases.sh: role $role, database $database"
  # psql variables (:"name" quoted identifier, :'value' quoted literal): no SQL built by hand
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v role="$role" -v password="$password" -v database="$database" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'role', :'password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role')
\gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'database', :'role')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'database')
\gexec
SQL
}

create_role_and_database "${MLFLOW_DB_USER:-mlflow}" "${MLFLOW_DB_PASSWORD:-}" "${MLFLOW_DB_NAME:-mlflow}"
create_role_and_database "${DAGSTER_DB_USER:-dagster}" "${DAGSTER_DB_PASSWORD:-}" "${DAGSTER_DB_NAME:-dagster}"
