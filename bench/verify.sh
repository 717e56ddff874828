#!/usr/bin/env bash
# verify, measured: `init-slate-db verify` of two identical stores of N events (on one
# throwaway cluster, so both "servers" share the machine) against
#   read both  two `COPY (SELECT id, ts, event FROM events ORDER BY id) TO STDOUT` to /dev/null,
#              in parallel: reading each side once
#   md5 in SQL what one writes by hand: md5 of every chunk's rows as text, both sides in parallel
# Each figure is the median of RUNS runs (default 3), interleaved.
#
#   bench/verify.sh [N] [RUNS]        (default: 1000000 3)
#   BENCH_PROFILE=dev bench/verify.sh 2000 1     (smoke run)
#   BENCH_BASELINE_TOOL=/path/to/older/init-slate-db BENCH_BASELINE_LABEL=... bench/verify.sh
#       (also verifies with an older build, interleaved in the same runs)
#   BENCH_REPLICA_ENCODING=LATIN1 bench/verify.sh ...
#       (the replica in a LATIN1 database: the digest then hashes events by their UTF-8 text)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
runs=${2:-3}

profile=${BENCH_PROFILE:-release}
cargo build --profile "$profile" --quiet
tool=$(pwd)/target/$([ "$profile" = dev ] && echo debug || echo "$profile")/init-slate-db
command -v python3 >/dev/null || { echo "bench/verify.sh: python3 not found (apt-get install python3)" >&2; exit 1; }

eval "$(scripts/throwaway-postgres.sh start)"
work=$(mktemp -d)
trap 'scripts/throwaway-postgres.sh stop "$SLATE_PG_DIR"; rm -rf "$work"' EXIT
psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
now_ms() { date +%s%N | awk '{printf "%.0f", $1 / 1000000}'; }

for side in reference replica; do
  if [ "$side" = replica ] && [ -n "${BENCH_REPLICA_ENCODING:-}" ]; then
    createdb -T template0 -E "$BENCH_REPLICA_ENCODING" --locale=C replica
    "$tool" -n replica -t destination --into-existing >/dev/null 2>&1
  else
    "$tool" -n "$side" -t destination >/dev/null 2>&1
  fi
  psql_q -d "$side" -c "INSERT INTO events (id, ts, event)
    SELECT g, '2026-01-01 00:00:00+00'::timestamptz + g * interval '10.001 ms',
           jsonb_build_object('entityName', 'Order', 'entityId', 'order-' || lpad(g::text, 9, '0'),
                              'operation', 'update', 'propertyName', 'status',
                              'value', 'shipped-to-warehouse-' || (g % 97) || '-' || repeat('x', 120),
                              'metadata', jsonb_build_object('command', 'ship-order', 'user', 'bench', 'correlationId', md5(g::text)))
      FROM generate_series(1, $n) g" -c "VACUUM ANALYZE events" -c "CHECKPOINT"
done

time_ms() { local t0; t0=$(now_ms); "$@" >/dev/null; echo $(( $(now_ms) - t0 )); }
verify() { "$tool" verify -d reference --replica-database replica; }
baseline() { "$BENCH_BASELINE_TOOL" verify -d reference --replica-database replica; }
methods="verify read_both md5_sql"
[ -n "${BENCH_BASELINE_TOOL:-}" ] && methods="baseline $methods"
read_both() {
  psql -X -q -d reference -c "COPY (SELECT id, ts, event FROM events ORDER BY id) TO STDOUT" >/dev/null &
  psql -X -q -d replica -c "COPY (SELECT id, ts, event FROM events ORDER BY id) TO STDOUT" >/dev/null
  wait
}
md5_sql() {
  local q="SELECT id / 10000, md5(string_agg(id || ' ' || ts || ' ' || event::text, E'\n' ORDER BY id)) FROM events GROUP BY 1 ORDER BY 1"
  psql -X -At -d reference -c "$q" >"$work/a" &
  psql -X -At -d replica -c "$q" >"$work/b"
  wait
  cmp -s "$work/a" "$work/b"
}

: > "$work/times"
for run in $(seq 1 "$runs"); do
  for method in $methods; do
    echo "$method $(time_ms "$method")" >> "$work/times"
  done
done
python3 - "$work/times" "$n" "${BENCH_BASELINE_LABEL:-baseline}" <<'PY'
import statistics, sys
times = {}
for line in open(sys.argv[1]):
    method, ms = line.split()
    times.setdefault(method, []).append(int(ms))
n = int(sys.argv[2])
names = {"verify": "init-slate-db verify", "baseline": f"init-slate-db verify ({sys.argv[3]})", "read_both": "read both sides once (COPY, in parallel)", "md5_sql": "md5 per chunk in SQL (both sides in parallel)"}
base = statistics.median(times["read_both"])
print(f"| method ({n} events per side) | median | runs (ms) | / read both |")
print("| --- | ---: | --- | ---: |")
for method in [m for m in ("baseline", "verify", "read_both", "md5_sql") if m in times]:
    median = statistics.median(times[method])
    print(f"| {names[method]} | {median / 1000:.2f} s | {', '.join(map(str, times[method]))} | {median / base:.2f} |")
PY
