#!/usr/bin/env bash
# One insert_events call at a time, measured: time per call, events/s and the peak memory of the
# backend that ran it (VmHWM of /proc/PID/status: its resident high-water mark, the shared
# buffers it touched included), for
#   original  the spec's insert_events (source V1-V6)
#   v8        the release before the previous one (source V1-V8)
#   v9        source V1-V9
#   v10       the previous release's (source V1-V10)
#   ours      this release's (every source migration)
# at each batch size, side by side in one run, on a throwaway cluster started under a
# virtual-memory cap (ulimit -v, default 6 GiB), so that a call that needs more fails with
# "out of memory" instead of taking the machine down. Each call runs in a fresh session on an
# emptied table.
#
#   bench/batch-memory.sh [N ...]       (default: 1000 10000 100000 1000000)
#   BENCH_MEMORY_CAP_KB=...             the cap, in KiB
#   BENCH_VARIANTS="v10 ours"           the variants to run (default: original v8 v10 ours)
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${*:-1000 10000 100000 1000000}
cap_kb=${BENCH_MEMORY_CAP_KB:-6291456}

profile=${BENCH_PROFILE:-release}
cargo build --profile "$profile" --quiet
tool=$(pwd)/target/$([ "$profile" = dev ] && echo debug || echo "$profile")/init-slate-db
command -v python3 >/dev/null || { echo "bench/batch-memory.sh: python3 not found (apt-get install python3)" >&2; exit 1; }

exports=$(ulimit -v "$cap_kb"; scripts/throwaway-postgres.sh start)
eval "$exports"
work=$(mktemp -d)
chmod 755 "$work"
trap 'scripts/throwaway-postgres.sh stop "$SLATE_PG_DIR"; rm -rf "$work"' EXIT
psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

. bench/lib.sh
release_database bm_original 6
release_database bm_v8 8
release_database bm_v9 9
release_database bm_v10 10
"$tool" -n bm_ours -t source >/dev/null 2>&1

# The VALUES text of n events of about 100 bytes each.
values_file() {
  python3 - "$1" "$2" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    f.write(",".join(
        f"($1[{i}], $2, '{{\"entityName\":\"Order\",\"entityId\":\"order-{i:09d}\",\"operation\":\"update\",\"propertyName\":\"status\"}}')"
        for i in range(1, n + 1)))
PY
  chmod 644 "$2"
}

# call VARIANT N FILE: one call in a fresh session; prints "ms|peak_kB|outcome".
call() {
  local v=$1 n=$2 file=$3 pid peak=0 hwm out
  psql_q -d "bm_$v" -c "SET session_replication_role = replica; TRUNCATE events; UPDATE id SET id = 1" -c "CHECKPOINT" >/dev/null
  printf "SET application_name = 'batch_memory';\n\\\\timing on\nSELECT insert_events(pg_read_file('%s'));\nSELECT pg_sleep(0.3);\n" "$file" > "$work/call.sql"
  psql -X -At -v ON_ERROR_STOP=1 -d "bm_$v" -f "$work/call.sql" >"$work/out" 2>&1 &
  local client=$!
  while kill -0 "$client" 2>/dev/null; do
    pid=$(psql -X -At -d postgres -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'batch_memory'" 2>/dev/null || true)
    if [ -n "$pid" ]; then
      hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
      [ -n "$hwm" ] && [ "$hwm" -gt "$peak" ] && peak=$hwm
    fi
    sleep 0.05
  done
  if wait "$client"; then
    out=$(awk '/^Time: / {print $2; exit}' "$work/out")
    echo "$out|$peak|ok"
  else
    echo "-|$peak|failed: $(grep -m1 -o 'ERROR: .*' "$work/out" | cut -c8- | cut -c1-80)"
  fi
}

echo "| rows in the call | VALUES text | variant | time per call | events/s | backend peak (VmHWM) | outcome |"
echo "| ---: | ---: | --- | ---: | ---: | ---: | --- |"
for n in $sizes; do
  file="$work/values_$n.txt"
  values_file "$n" "$file"
  bytes=$(stat -c %s "$file")
  for v in ${BENCH_VARIANTS:-original v8 v10 ours}; do
    IFS='|' read -r ms peak outcome <<< "$(call "$v" "$n" "$file")"
    awk -v n="$n" -v bytes="$bytes" -v v="$v" -v ms="$ms" -v peak="$peak" -v outcome="$outcome" 'BEGIN {
      time = (ms == "-") ? "-" : sprintf("%.0f ms", ms);
      eps = (ms == "-") ? "-" : sprintf("%.0f", n / (ms / 1000));
      printf "| %d | %.1f MB | %s | %s | %s | %.0f MB | %s |\n", n, bytes / 1e6, v, time, eps, peak / 1024, outcome }'
  done
  rm -f "$file"
done
