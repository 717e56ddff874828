#!/usr/bin/env bash
# Disaster recovery, measured: `init-slate-db restore` against `SELECT restore_events(...)`,
# for each N, on a throwaway cluster holding both the backup and the targets. Reports wall
# time, events per second, the client's peak RSS (/usr/bin/time), and the peak private memory
# of any one server process of the cluster during the run (sampled every 0.2 s from
# /proc/PID/smaps_rollup; shared buffers are not counted).
#
#   bench/restore.sh [N ...]        (default: 100000 1000000)
#   BENCH_PROFILE=dev bench/restore.sh 2000     (smoke run)
#   BENCH_BASELINE_TOOL=/path/to/older/init-slate-db BENCH_BASELINE_LABEL=V... bench/restore.sh 1000000
#       (also restores with an older build, side by side in the same run)
#
# For init-slate-db the "verification" column is the time from the end of the copy and index
# rebuild to "digests ... match" in its JSON log: what verifying adds to the restore.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${*:-100000 1000000}

profile=${BENCH_PROFILE:-release}
cargo build --profile "$profile" --quiet
tool=$(pwd)/target/$([ "$profile" = dev ] && echo debug || echo "$profile")/init-slate-db
[ -x /usr/bin/time ] || { echo "bench/restore.sh: /usr/bin/time not found (apt-get install time)" >&2; exit 1; }

eval "$(scripts/throwaway-postgres.sh start)"
export INIT_SLATE_DB_FROM_PASSWORD=$PGPASSWORD
work=$(mktemp -d)
trap 'scripts/throwaway-postgres.sh stop "$SLATE_PG_DIR"; rm -rf "$work"' EXIT
psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
now_ms() { date +%s%N | awk '{printf "%.0f", $1 / 1000000}'; }

# Peak private memory (kB: Private_Clean + Private_Dirty, so shared buffers do not count) of any
# process of this cluster while $1 runs in the background.
postmaster=$(head -1 "$SLATE_PG_DIR/data/postmaster.pid")
sample_server_rss() {
  local pid=$1 peak=0 private
  while kill -0 "$pid" 2>/dev/null; do
    private=$(for child in $(pgrep -P "$postmaster"); do
                awk '/^Private_(Clean|Dirty)/ {s += $2} END {print s + 0}' "/proc/$child/smaps_rollup" 2>/dev/null
              done | sort -n | tail -1)
    [ -n "$private" ] && [ "$private" -gt "$peak" ] && peak=$private
    sleep 0.2
  done
  echo "$peak"
}

# Seconds from the end of the copy (and of the index rebuild) to the digests' match, read from
# the JSON log in $1; "-" when the log has no such lines.
verification_seconds() {
  python3 - "$1" <<'PY'
import json, sys
from datetime import datetime
def t(line):
    return datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00")).timestamp()
start = end = None
for raw in open(sys.argv[1]):
    try:
        line = json.loads(raw)
    except ValueError:
        continue
    message = line.get("message", "")
    if message in ("copy finished", "index rebuilt"):
        start = t(line)
    elif message.startswith("digests of every"):
        end = t(line)
print("-" if start is None or end is None else f"{end - start:.2f} s")
PY
}

# measure LABEL DATABASE N CLIENT_FORMAT COMMAND...: runs COMMAND, checks DATABASE then holds N
# events, and prints a table row.
measure() {
  local label=$1 database=$2 n=$3 client_format=$4 t0 t1 pid server_peak rows
  shift 4
  t0=$(now_ms)
  /usr/bin/time -f "%M" -o "$work/rss" "$@" >"$work/out" 2>"$work/err" &
  pid=$!
  server_peak=$(sample_server_rss "$pid")
  wait "$pid" || { cat "$work/err" >&2; exit 1; }
  t1=$(now_ms)
  rows=$(psql -X -At -d "$database" -c "SELECT count(*) FROM events")
  [ "$rows" = "$n" ] || { echo "$label: $rows rows, expected $n" >&2; exit 1; }
  awk -v n="$n" -v ms=$((t1 - t0)) -v rss="$(cat "$work/rss")" -v srv="$server_peak" -v label="$label" -v cf="$client_format" \
    -v verify="$(verification_seconds "$work/err")" \
    'BEGIN {printf "| %d | %s | %.1f s | %.0f | %s | " cf " | %.1f MB |\n", n, label, ms/1000, n/(ms/1000), verify, rss/1024, srv/1024}'
}

echo "| N | method | wall time | events/s | verification | client peak RSS | server process peak private memory |"
echo "| ---: | --- | ---: | ---: | ---: | ---: | ---: |"
for n in $sizes; do
  "$tool" -n "backup_$n" -t destination >/dev/null 2>&1
  # About 300 bytes of JSON per event, with the spec's indexed keys.
  psql_q -d "backup_$n" -c "INSERT INTO events (id, ts, event)
    SELECT g, now() - (($n - g) * interval '10 ms'),
           jsonb_build_object('entityName', 'Order', 'entityId', 'order-' || lpad(g::text, 9, '0'),
                              'operation', 'update', 'propertyName', 'status',
                              'value', 'shipped-to-warehouse-' || (g % 97) || '-' || repeat('x', 120),
                              'metadata', jsonb_build_object('command', 'ship-order', 'user', 'bench', 'correlationId', md5(g::text)))
      FROM generate_series(1, $n) g"
  psql_q -d "backup_$n" -c "VACUUM ANALYZE events" -c "CHECKPOINT" >/dev/null

  # init-slate-db restore (creates the target itself), and an older build's if asked.
  if [ -n "${BENCH_BASELINE_TOOL:-}" ]; then
    measure "init-slate-db restore (${BENCH_BASELINE_LABEL:-baseline})" "base_$n" "$n" "%.1f MB" \
      "$BENCH_BASELINE_TOOL" --log-format json restore -n "base_$n" --from-host "$PGHOST" --from-port "$PGPORT" --from-database "backup_$n" --from-user "$PGUSER"
  fi
  measure "init-slate-db restore" "tool_$n" "$n" "%.1f MB" \
    "$tool" --log-format json restore -n "tool_$n" --from-host "$PGHOST" --from-port "$PGPORT" --from-database "backup_$n" --from-user "$PGUSER"

  # restore_events: create the target first (not timed), then one SQL call through dblink.
  "$tool" -n "sql_$n" -t source >/dev/null 2>&1
  psql_q -d "sql_$n" -c "CHECKPOINT" >/dev/null
  measure "SELECT restore_events(...)" "sql_$n" "$n" "%.1f MB (psql)" \
    psql -X -q -v ON_ERROR_STOP=1 -d "sql_$n" -c "SELECT * FROM restore_events('$PGHOST', 'backup_$n', '$PGUSER', '$PGPASSWORD', $PGPORT)"
done
