#!/usr/bin/env bash
# Set up and run the whole test suite: `bash scripts/test.sh [pytest args]`.
# Installs what it needs (virtualenv, requirements, redis-server, PostgreSQL, chromium for the
# browser tests); the tests start a private Redis and, where they need one, a private PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

phase "Python virtualenv and requirements, redis-server, PostgreSQL, Chromium"
ensure_venv requirements-dev.txt
ensure_redis_binary
ensure_postgres_binaries
if ! command -v chromium >/dev/null; then
  log "Installing Chromium (Debian package chromium) for the browser tests"
  apt_install chromium
fi

phase "Lint (ruff check, ruff format --check)"
"$VENV_DIR/bin/ruff" check .
"$VENV_DIR/bin/ruff" format --check .

phase "Migrations are up to date"
"$PY" manage.py makemigrations --check --dry-run -v1

phase "Tests (pytest)"
# pytest's own summary line ends the run (it prints its time); CI reads it last.
exec "$PY" -m pytest "$@"
