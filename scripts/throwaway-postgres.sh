#!/usr/bin/env bash
# Starts a throwaway local PostgreSQL cluster (scram password auth, loopback only) and prints
# the settings to use as shell exports, so that init-slate-db can run on a machine with the
# PostgreSQL server binaries installed but no server:
#
#   eval "$(scripts/throwaway-postgres.sh start)"    # then: init-slate-db -n orders -t source
#   scripts/throwaway-postgres.sh stop "$SLATE_PG_DIR"
#   SLATE_PG_OPTIONS="-c wal_level=logical" scripts/throwaway-postgres.sh start   (extra settings)
#
# As root, the server binaries run as the `postgres` OS user (initdb refuses root).
set -euo pipefail

find_bindir() {
  "$(dirname "$0")/pg-bindir.sh"
}

as_server_user() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# A port below the kernel's ephemeral range, so that no outgoing connection of this machine can
# hold it; nobody listening on it now. It can still be taken before the server binds it, so
# start() tries another when the bind fails.
free_port() {
  local port low=32768
  [ -r /proc/sys/net/ipv4/ip_local_port_range ] && read -r low _ </proc/sys/net/ipv4/ip_local_port_range
  # A range starting that low leaves no room below it: then any port from 10000 up, and the
  # retry in start() handles a clash.
  [ "$low" -gt 11024 ] || low=61000
  for _ in $(seq 1 50); do
    port=$((10000 + RANDOM % (low - 10000)))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
  done
  echo "throwaway-postgres: found no free port" >&2
  exit 1
}

start() {
  local bindir dir port password
  # On any failure stdout says `false`, so that `eval "$(throwaway-postgres.sh start)" && ...`
  # stops there (an eval of nothing would succeed) and a `set -e` script ends.
  trap 'echo false' EXIT
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
    || { cat "$dir/initdb.log" >&2; rm -rf "$dir"; exit 1; }
  rm -f "$dir/pwfile"
  local attempt
  for attempt in 1 2 3 4 5; do
    if as_server_user "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
      -o "-p $port -k $dir/socket -c listen_addresses=127.0.0.1 ${SLATE_PG_OPTIONS:-}" start >/dev/null 2>"$dir/pg_ctl.err"; then
      break
    fi
    if [ "$attempt" -lt 5 ] && grep -q 'Address already in use' "$dir/server.log"; then
      port=$(free_port)
      as_server_user truncate -s 0 "$dir/server.log"
      continue
    fi
    cat "$dir/pg_ctl.err" "$dir/server.log" >&2
    rm -rf "$dir"
    exit 1
  done
  trap - EXIT
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
