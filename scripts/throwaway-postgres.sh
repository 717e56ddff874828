#!/usr/bin/env bash
# Starts a throwaway local PostgreSQL cluster (scram password auth, loopback only) and prints
# the settings to use as shell exports, so that init-slate-db can run on a machine with the
# PostgreSQL server binaries installed but no server:
#
#   eval "$(scripts/throwaway-postgres.sh start)"    # then: init-slate-db -n orders -t source
#   scripts/throwaway-postgres.sh stop "$SLATE_PG_DIR"
#
# As root, the server binaries run as the `postgres` OS user (initdb refuses root).
set -euo pipefail

find_bindir() {
  "$(dirname "$0")/pg-bindir.sh"
}

as_server_user() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
  done
  echo "throwaway-postgres: found no free port" >&2
  exit 1
}

start() {
  local bindir dir port password
  bindir=$(find_bindir)
  dir=$(mktemp -d /tmp/slate-pg.XXXXXX)
  chmod 755 "$dir"
  port=$(free_port)
  password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  printf '%s\n' "$password" > "$dir/pwfile"
  mkdir -p "$dir/socket"
  [ "$(id -u)" = 0 ] && chown -R postgres "$dir"
  as_server_user "$bindir/initdb" -D "$dir/data" -U slate_admin --pwfile="$dir/pwfile" \
    -A scram-sha-256 -E UTF8 --locale=C -N >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  rm -f "$dir/pwfile"
  as_server_user "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
    -o "-p $port -k $dir/socket -c listen_addresses=127.0.0.1" start >/dev/null \
    || { cat "$dir/server.log" >&2; exit 1; }
  cat <<OUT
export PGHOST=127.0.0.1
export PGPORT=$port
export PGUSER=slate_admin
export PGPASSWORD=$password
export SLATE_PG_DIR=$dir
# throwaway PostgreSQL running on 127.0.0.1:$port (data in $dir)
# stop it with: scripts/throwaway-postgres.sh stop $dir
OUT
}

stop() {
  local dir=${1:?usage: throwaway-postgres.sh stop DIR}
  [ -d "$dir/data" ] || { echo "throwaway-postgres: $dir is not a throwaway cluster" >&2; exit 1; }
  as_server_user "$(find_bindir)/pg_ctl" -D "$dir/data" -m fast stop >/dev/null || true
  rm -rf "$dir"
}

case "${1:-start}" in
  start) start ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: throwaway-postgres.sh start | stop DIR" >&2; exit 2 ;;
esac
