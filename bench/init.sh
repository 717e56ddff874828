#!/usr/bin/env bash
# Measures source-database initialization end to end, interleaved with its floor:
#   tool:  init-slate-db -n NAME -t source          (release build)
#   floor: createdb NAME && psql -1 -f <the source migrations concatenated>
# against a throwaway cluster it starts itself. Prints every run and the medians.
#
#   bench/init.sh [RUNS]      (default 5; BENCH_PROFILE=dev for a quick smoke run on a debug build)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}

profile=${BENCH_PROFILE:-release}
cargo build --profile "$profile" --quiet
tool=target/$([ "$profile" = dev ] && echo debug || echo "$profile")/init-slate-db
eval "$(scripts/throwaway-postgres.sh start)"
trap 'scripts/throwaway-postgres.sh stop "$SLATE_PG_DIR"' EXIT

sql=$(mktemp)
cat migrations/shared/V1__*.sql $(ls migrations/source/V*.sql | sort -V) > "$sql"

now_ms() { date +%s%N | awk '{printf "%.1f", $1 / 1000000}'; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

tool_times=(); floor_times=()
for i in $(seq 1 "$runs"); do
  t0=$(now_ms); "$tool" -n "bench_tool_$i" -t source >/dev/null 2>&1; t1=$(now_ms)
  tool_times+=("$(awk "BEGIN {printf \"%.1f\", $t1 - $t0}")")
  t0=$(now_ms); createdb "bench_floor_$i" && psql -q -X -1 -v ON_ERROR_STOP=1 -d "bench_floor_$i" -f "$sql" >/dev/null; t1=$(now_ms)
  floor_times+=("$(awk "BEGIN {printf \"%.1f\", $t1 - $t0}")")
  echo "run $i: init-slate-db ${tool_times[-1]} ms, createdb + psql -f ${floor_times[-1]} ms"
done
tool_median=$(printf '%s\n' "${tool_times[@]}" | median)
floor_median=$(printf '%s\n' "${floor_times[@]}" | median)
echo "median of $runs: init-slate-db ${tool_median} ms, createdb + psql -f ${floor_median} ms, ratio $(awk "BEGIN {printf \"%.2f\", $tool_median / $floor_median}")"
rm -f "$sql"
