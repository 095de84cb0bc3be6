#!/usr/bin/env bash
# Starts (or stops) the local services: PostgreSQL 15 (Debian cluster "main"), Redis and the Temporal
# dev server. A service whose URL in the environment names a non-local host is assumed to be the
# user's own and is left alone. Usage: services.sh start|stop|status
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
RUN="$ASTRY_CACHE/run"
mkdir -p "$RUN"
DATABASE_URL=${DATABASE_URL:-postgres://astry_app:astry_app@127.0.0.1:5432/astry}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
TEMPORAL_ADDRESS=${TEMPORAL_ADDRESS:-127.0.0.1:7233}
log() { printf '[services] %s\n' "$*"; }
is_local() { case "$1" in *@127.0.0.1*|*@localhost*|*//127.0.0.1*|*//localhost*|127.0.0.1:*|localhost:*) return 0;; *) return 1;; esac; }
wait_for() { # name, command...
  local name=$1; shift
  for _ in $(seq 1 120); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  log "$name did not become ready"; return 1
}

start_postgres() {
  is_local "$DATABASE_URL" || { log "postgres: using $DATABASE_URL"; return; }
  pg_lsclusters -h 2>/dev/null | grep -q '^15 *main' || pg_createcluster 15 main >/dev/null
  if ! pg_lsclusters -h | awk '$1==15 && $2=="main" {print $4}' | grep -q online; then
    pg_ctlcluster 15 main start
  fi
  wait_for postgres pg_isready -q -h 127.0.0.1 -p 5432
  # Two roles: `astry` owns the schema and runs migrations (and may create databases: tests make one
  # per file); `astry_app` is what the running application connects as, with only the rights the
  # migrations grant it (no UPDATE/DELETE/TRUNCATE on the audit log). pgvector lives in template1 so
  # every new database has it without superuser rights.
  su postgres -c "PGOPTIONS='-c client_min_messages=warning' psql -q -v ON_ERROR_STOP=1 -d postgres" <<'SQL' >/dev/null
SELECT 'CREATE ROLE astry LOGIN CREATEDB PASSWORD ''astry''' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'astry') \gexec
SELECT 'CREATE ROLE astry_app LOGIN PASSWORD ''astry_app''' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'astry_app') \gexec
-- The owner may end the app role's sessions (DROP DATABASE ... WITH (FORCE) of test databases), and
-- autovacuum workers too: Postgres 15 checks their (absent) role like a user's, so dropping a database
-- autovacuum is working on fails without pg_signal_backend (seen after the 20k-file benchmarks).
GRANT astry_app TO astry;
GRANT pg_signal_backend TO astry;
SELECT 'CREATE DATABASE astry OWNER astry' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'astry') \gexec
\c template1
CREATE EXTENSION IF NOT EXISTS vector;
\c astry
CREATE EXTENSION IF NOT EXISTS vector;
SQL
}

start_redis() {
  is_local "$REDIS_URL" || { log "redis: using $REDIS_URL"; return; }
  redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --dir "$RUN" --save '' --appendonly no \
    --logfile "$RUN/redis.log" --pidfile "$RUN/redis.pid"
  wait_for redis redis-cli -h 127.0.0.1 -p 6379 ping
}

temporal_up() { temporal operator cluster health --address "$TEMPORAL_ADDRESS" 2>/dev/null | grep -qi serving; }
start_temporal() {
  is_local "$TEMPORAL_ADDRESS" || { log "temporal: using $TEMPORAL_ADDRESS"; return; }
  temporal_up && return
  local port=${TEMPORAL_ADDRESS##*:}
  nohup temporal server start-dev --headless --ip 127.0.0.1 --port "$port" \
    --db-filename "$RUN/temporal.sqlite" --log-level error >"$RUN/temporal.log" 2>&1 &
  echo $! > "$RUN/temporal.pid"
  wait_for temporal temporal_up
}

stop_all() {
  [ -f "$RUN/temporal.pid" ] && kill "$(cat "$RUN/temporal.pid")" 2>/dev/null || true
  redis-cli -h 127.0.0.1 -p 6379 shutdown nosave >/dev/null 2>&1 || true
  pg_ctlcluster 15 main stop 2>/dev/null || true
}

case "${1:-start}" in
  start) start_postgres; start_redis; start_temporal; log "postgres, redis and temporal are up" ;;
  stop) stop_all ;;
  status) pg_isready -h 127.0.0.1 -p 5432; redis-cli ping; temporal_up && echo "temporal: serving" ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
