# Shared helpers for scripts/demo.sh and scripts/test.sh (sourced, not run).
# Everything here is idempotent: a second run checks and skips what is already in place.

VENV_DIR="${AISLE_VENV:-.venv}"
PY="$VENV_DIR/bin/python"

log() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# --- Timed phases. `phase "Title"` ends the phase before it (printing how long it took) and
# starts the next; `phase_summary` ends the last one and prints every phase's time and the total
# since the script started.
now_us() { echo "${EPOCHREALTIME//[!0-9]/}"; }
_RUN_STARTED_US=$(now_us)
_PHASE_TITLE=""
_PHASE_STARTED_US=0
_PHASE_TIMES=()

duration() {
  # duration MICROSECONDS: "8.4 s", or "4 min 05 s" from a minute on.
  local tenths=$(($1 / 100000)) seconds=$(($1 / 1000000))
  if ((seconds < 60)); then
    printf '%d.%d s' $((tenths / 10)) $((tenths % 10))
  else
    printf '%d min %02d s' $((seconds / 60)) $((seconds % 60))
  fi
}

phase() {
  phase_end
  _PHASE_TITLE="$1"
  _PHASE_STARTED_US=$(now_us)
  log "$1"
}

phase_end() {
  [ -n "$_PHASE_TITLE" ] || return 0
  local took
  took=$(duration $(($(now_us) - _PHASE_STARTED_US)))
  printf '    (%s)\n' "$took"
  _PHASE_TIMES+=("$(printf '%12s  %s' "$took" "$_PHASE_TITLE")")
  _PHASE_TITLE=""
}

phase_summary() {
  phase_end
  log "Time per phase"
  printf '%s\n' "${_PHASE_TIMES[@]}"
  printf '%12s  %s\n' "$(duration $(($(now_us) - _RUN_STARTED_US)))" "total"
}

apt_install() {
  # Install Debian packages by name; `apt-get update` once per run, only when something is missing.
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: $* missing and apt-get is not available; install them by hand" >&2
    return 1
  fi
  if [ -z "${_AISLE_APT_UPDATED:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    _AISLE_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_venv() {
  # ensure_venv REQUIREMENTS_FILE: a virtualenv with exactly those requirements installed.
  local requirements="$1"
  if ! command -v python3 >/dev/null 2>&1; then
    log "Installing Python 3"
    apt_install python3 python3-venv
  fi
  if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "error: Python 3.11 or newer is needed, found $(python3 --version)" >&2
    return 1
  fi
  if [ ! -x "$PY" ]; then
    log "Creating virtualenv in $VENV_DIR"
    if ! python3 -m venv "$VENV_DIR" 2>/dev/null; then
      rm -rf "$VENV_DIR"
      apt_install python3-venv
      python3 -m venv "$VENV_DIR"
    fi
  fi
  # One stamp per requirements file, holding the hash of that file and of those it includes
  # (-r): installing requirements-dev.txt also satisfies requirements.txt, so demo.sh and
  # test.sh can take turns without reinstalling, and a run with nothing changed calls no pip.
  if [ "$(cat "$(requirements_stamp "$requirements")" 2>/dev/null)" != "$(requirements_hash "$requirements")" ]; then
    log "Installing Python requirements ($requirements)"
    "$PY" -m pip install -q --upgrade pip >/dev/null
    "$PY" -m pip install -q -r "$requirements"
    local file
    for file in $(requirement_files "$requirements"); do
      requirements_hash "$file" >"$(requirements_stamp "$file")"
    done
  fi
  rm -f "$VENV_DIR/.requirements.sha256" # the single stamp of earlier versions
}

requirement_files() {
  # requirement_files FILE: FILE and, recursively, every file it includes with `-r`.
  local included
  echo "$1"
  for included in $(sed -n 's/^-r[[:space:]]*\([^[:space:]#]*\).*/\1/p' "$1"); do
    requirement_files "$(dirname "$1")/$included"
  done
}

requirements_hash() { requirement_files "$1" | xargs cat | sha256sum | cut -d' ' -f1; }

requirements_stamp() { echo "$VENV_DIR/.installed-$(basename "$1").sha256"; }

render_template() {
  # render_template TEMPLATE OUTPUT NAME=VALUE...: the template with each ${NAME} filled in
  # (Python's string.Template; a name left without a value is an error).
  "$PY" - "$@" <<'PY'
import string
import sys
from pathlib import Path

template, output, *pairs = sys.argv[1:]
values = dict(pair.split("=", 1) for pair in pairs)
Path(output).write_text(string.Template(Path(template).read_text()).substitute(values))
PY
}

ensure_redis_binary() {
  if ! command -v redis-server >/dev/null 2>&1; then
    log "Installing Redis (Debian package redis-server)"
    apt_install redis-server
  fi
}

ensure_postgres_binaries() {
  # initdb, pg_ctl and postgres for the tests' throwaway clusters (bench/private_postgres.py).
  # Debian keeps them in /usr/lib/postgresql/<version>/bin, off PATH. The package would create
  # and start a cluster of its own on port 5432, which nothing here uses: postgresql-common goes
  # first, and its createcluster.conf tells the server package not to.
  if ! command -v initdb >/dev/null 2>&1 \
    && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    log "Installing PostgreSQL (Debian package postgresql) for the tests' private clusters"
    apt_install postgresql-common
    sed -i 's/^#\?\s*create_main_cluster.*/create_main_cluster = false/' \
      /etc/postgresql-common/createcluster.conf
    apt_install postgresql
  fi
}

redis_answers() {
  "$PY" - "$1" <<'PY' >/dev/null 2>&1
import sys, redis
redis.Redis.from_url(sys.argv[1], socket_timeout=1, socket_connect_timeout=1).ping()
PY
}

ensure_redis_running() {
  # ensure_redis_running URL: start a loopback redis-server for URL unless one already answers.
  local url="$1"
  if redis_answers "$url"; then
    return 0
  fi
  local host port
  host=$("$PY" -c 'import sys, urllib.parse as u; print(u.urlparse(sys.argv[1]).hostname or "127.0.0.1")' "$url")
  port=$("$PY" -c 'import sys, urllib.parse as u; print(u.urlparse(sys.argv[1]).port or 6379)' "$url")
  case "$host" in
    127.*|localhost|::1) ;;
    *) echo "error: no Redis answers at $url and it is not on this machine; start it or set REDIS_URL" >&2
       return 1 ;;
  esac
  ensure_redis_binary
  log "Starting redis-server on 127.0.0.1:$port (data in var/redis)"
  mkdir -p var/redis var/log
  redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --dir "$PWD/var/redis" \
    --appendonly yes --save "" --logfile "$PWD/var/log/redis.log" --pidfile "$PWD/var/run/redis.pid"
  for _ in $(seq 1 50); do
    redis_answers "$url" && return 0
    sleep 0.1
  done
  echo "error: redis-server did not start; see var/log/redis.log" >&2
  return 1
}
