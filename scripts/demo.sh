#!/usr/bin/env bash
# Set up and run the Aisle demo on this machine: `bash scripts/demo.sh` (again: safe and fast).
# `bash scripts/demo.sh stop` stops the web server, worker and beat it started.
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
mkdir -p "$RUN_DIR" "$LOG_DIR"

stop_process() {
  local pidfile="$RUN_DIR/$1.pid"
  if [ -f "$pidfile" ]; then
    local pid
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  fi
}

stop_all() {
  for name in web worker beat; do stop_process "$name"; done
}

if [ "${1:-}" = "stop" ]; then
  stop_all
  log "Stopped web, worker and beat"
  exit 0
fi

ensure_venv requirements.txt
ensure_redis_running "$REDIS_URL"

log "Applying migrations"
"$PY" manage.py migrate --noinput -v0
"$PY" manage.py collectstatic --noinput -v0

log "Importing the UCI Online Retail data (skipped when already imported)"
"$PY" manage.py import_online_retail

log "Online feature store (rebuilt from the event log only when Redis lost it or its layout changed)"
"$PY" manage.py rebuild_online_features --if-outdated

log "Training the models (skipped when serving versions exist)"
"$PY" manage.py train --if-untrained

log "Demo accounts, the storefront key and the demo experiment (its shoppers simulated once)"
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

log "(Re)starting web server, Celery worker and Celery beat"
stop_all
# Each runs in the background with all it prints (Django and Celery logging go to stdout) in var/log.
start_background() {
  local name="$1"; shift
  nohup "$@" >>"$LOG_DIR/$name.log" 2>&1 &
  echo $! >"$RUN_DIR/$name.pid"
}
# gthread workers keep HTTP/1.1 connections alive; one thread each, since the render path is CPU
# work that threads of one process would only queue for (bench_read, docs/PERFORMANCE.md).
start_background web "$VENV_DIR/bin/gunicorn" config.wsgi --bind "$BIND:$PORT" --workers 3 \
  --worker-class gthread --threads 1 --keep-alive 5 --access-logfile "$LOG_DIR/web-access.log"
start_background worker "$VENV_DIR/bin/celery" -A config worker -Q default,events,scoring,training \
  --concurrency 2 --loglevel INFO
start_background beat "$VENV_DIR/bin/celery" -A config beat --loglevel INFO

for _ in $(seq 1 100); do
  if "$PY" -c "import urllib.request; urllib.request.urlopen('http://$BIND:$PORT/admin/login/', timeout=1)" 2>/dev/null; then
    break
  fi
  sleep 0.2
done

cat <<INFO

Aisle demo is running.
  Storefront:    http://$BIND:$PORT/    (shopper login: 12347 / $DEMO_CUSTOMER_PASSWORD)
  Admin:         http://$BIND:$PORT/admin/    (user: $DEMO_USER  password: $DEMO_PASSWORD)
  Experiment:    $EXPERIMENT_URL
  API docs:      http://$BIND:$PORT/api/v1/docs/
  OpenAPI:       http://$BIND:$PORT/api/v1/schema/
  Logs:          $LOG_DIR/ (web.log, worker.log, beat.log)
  Stop:          bash scripts/demo.sh stop
INFO
