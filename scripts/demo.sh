#!/usr/bin/env bash
# Set up and run the Aisle demo on this machine: `bash scripts/demo.sh` (again: safe and fast).
# web, worker and beat run under supervisord (restarted when they exit); `bash scripts/demo.sh
# status` shows them, `bash scripts/demo.sh stop` stops them.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
# The local demo runs with debug pages and plain HTTP; production leaves DJANGO_DEBUG unset (off).
export DJANGO_DEBUG="${DJANGO_DEBUG:-true}"
# The demo's history is from 2010-2011: a retention window would archive all of it at the first
# nightly run, and training would have nothing left. The demo keeps every event.
export EVENT_RETENTION_DAYS="${EVENT_RETENTION_DAYS:-0}"
BIND="${AISLE_BIND:-127.0.0.1}"
PORT="${AISLE_PORT:-8000}"
DEMO_USER="${AISLE_DEMO_USER:-demo}"
DEMO_PASSWORD="${AISLE_DEMO_PASSWORD:-aisle-demo}"
DEMO_CUSTOMER_PASSWORD="${AISLE_DEMO_CUSTOMER_PASSWORD:-shopper-demo}"
RUN_DIR="var/run"
LOG_DIR="var/log"
SUPERVISOR_CONF="$RUN_DIR/supervisord.conf"
mkdir -p "$RUN_DIR" "$LOG_DIR"

# web, worker and beat run under supervisord, which restarts any of them that exits; its
# config is scripts/supervisord.conf, filled in for this checkout.
supervisorctl() { "$VENV_DIR/bin/supervisorctl" -c "$SUPERVISOR_CONF" "$@"; }

supervisord_pid() {
  # The running supervisord of this checkout (by its pidfile), or nothing.
  local pid
  pid=$(cat "$RUN_DIR/supervisord.pid" 2>/dev/null) || return 0
  if grep -qs supervisord "/proc/$pid/cmdline"; then echo "$pid"; fi
}

stop_supervisord() {
  # TERM: supervisord stops web, worker and beat (each within its stopwaitsecs), then exits.
  local pid
  pid=$(supervisord_pid)
  [ -n "$pid" ] || return 0
  kill -TERM "$pid"
  for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  echo "error: supervisord (pid $pid) did not stop within 60 s; see $LOG_DIR/supervisord.log" >&2
  return 1
}

stop_unsupervised() {
  # Processes started by earlier versions of this script (nohup, one pid file each).
  local name pidfile pid
  for name in web worker beat; do
    pidfile="$RUN_DIR/$name.pid"
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
}

case "${1:-}" in
  stop)
    stop_supervisord
    stop_unsupervised
    log "Stopped web, worker and beat"
    exit 0
    ;;
  status)
    if [ -z "$(supervisord_pid)" ]; then
      echo "The demo is not running (start it with: bash scripts/demo.sh)"
      exit 3
    fi
    exec "$VENV_DIR/bin/supervisorctl" -c "$SUPERVISOR_CONF" status
    ;;
  "") ;;
  *)
    echo "usage: bash scripts/demo.sh [stop|status]" >&2
    exit 2
    ;;
esac

phase "Python virtualenv and requirements"
ensure_venv requirements.txt

phase "Redis"
ensure_redis_running "$REDIS_URL"

phase "Applying migrations"
"$PY" manage.py migrate --noinput -v0
"$PY" manage.py collectstatic --noinput -v0

phase "Importing the UCI Online Retail data (skipped when already imported)"
"$PY" manage.py import_online_retail

phase "Online feature store (rebuilt from the event log only when Redis lost it or its layout changed)"
"$PY" manage.py rebuild_online_features --if-outdated

phase "Training the models (skipped when serving versions exist)"
"$PY" manage.py train --if-untrained

phase "Demo accounts, the storefront key and the demo experiment (its shoppers simulated once)"
"$PY" manage.py setup_demo --user "$DEMO_USER" --password "$DEMO_PASSWORD" \
  --customer-password "$DEMO_CUSTOMER_PASSWORD" --key-file "$RUN_DIR/storefront_publishable_key" \
  --experiment-id-file "$RUN_DIR/demo_experiment_id"
STOREFRONT_PUBLISHABLE_KEY="$(cat "$RUN_DIR/storefront_publishable_key")"
export STOREFRONT_PUBLISHABLE_KEY
if [ -f "$RUN_DIR/demo_experiment_id" ]; then
  EXPERIMENT_ID="$(cat "$RUN_DIR/demo_experiment_id")"
  EXPERIMENT_URL="http://$BIND:$PORT/admin/recs/experiments/$EXPERIMENT_ID/    (A/B test dashboard)"
else
  EXPERIMENT_URL="none (setup_demo said why above)"
fi

phase "(Re)starting web server, Celery worker and Celery beat under supervisord"
# A re-run restarts supervisord itself, not just its programs: they inherit its environment,
# and this run's (REDIS_URL, DATABASE_URL, the storefront key ...) is the one to serve with.
stop_supervisord
stop_unsupervised
render_template scripts/supervisord.conf "$SUPERVISOR_CONF" \
  PROJECT_DIR="$PWD" VENV_DIR="$(cd "$VENV_DIR" && pwd)" RUN_DIR="$PWD/$RUN_DIR" \
  LOG_DIR="$PWD/$LOG_DIR" USER_NAME="$(id -un)" BIND="$BIND" PORT="$PORT" \
  WEB_WORKERS=3 WORKER_CONCURRENCY=2
"$VENV_DIR/bin/supervisord" -c "$SUPERVISOR_CONF"

for _ in $(seq 1 100); do
  if "$PY" -c "import urllib.request; urllib.request.urlopen('http://$BIND:$PORT/admin/login/', timeout=1)" 2>/dev/null; then
    break
  fi
  sleep 0.2
done
for _ in $(seq 1 50); do
  supervisorctl status >/dev/null && break # exits non-zero until all three are RUNNING
  sleep 0.2
done
supervisorctl status || true

phase_summary

cat <<INFO

Aisle demo is running.
  Storefront:    http://$BIND:$PORT/    (shopper login: 12347 / $DEMO_CUSTOMER_PASSWORD)
  Admin:         http://$BIND:$PORT/admin/    (user: $DEMO_USER  password: $DEMO_PASSWORD)
  Experiment:    $EXPERIMENT_URL
  API docs:      http://$BIND:$PORT/api/v1/docs/
  OpenAPI:       http://$BIND:$PORT/api/v1/schema/
  Logs:          $LOG_DIR/ (web.log, worker.log, beat.log, supervisord.log)
  Status:        bash scripts/demo.sh status    ($VENV_DIR/bin/supervisorctl -c $SUPERVISOR_CONF status)
  Stop:          bash scripts/demo.sh stop
INFO
