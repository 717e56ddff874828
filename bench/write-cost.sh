#!/usr/bin/env bash
# The write path's CPU cost, counted in instructions instead of timed: on 2 shared cores a
# throughput ratio moves by ±15 % between identical runs; an instruction count repeats to 0.1 %.
#
# Each variant's statement runs K times in one `postgres --single` backend (the server stopped,
# fsync off) under `valgrind --tool=callgrind`; instructions per call are
#   (Ir at K = high - Ir at K = low) / (high - low)
# which removes start-up, the first calls and PL/pgSQL's first five custom plans. Variants:
#   ours      insert_events as init-slate-db installs it (every source migration)
#   floor     the least work the contract needs, by hand: one statement that takes the id row
#             lock with UPDATE ... RETURNING and inserts the rows with those ids and one
#             timestamp (NOTIFY trigger in place; the statement of bench/lib.sh)
#   vN        an earlier release's insert_events (source V1-VN, installed by psql)
#   original  the spec's insert_events and per-row NOTIFY trigger (V1-V6)
#   NAME      --candidate NAME=FILE: FILE's SQL run over the current release (to try a change)
# The cluster is initialised with -E UTF8 --locale=C (a UTF-8 locale moves the counts by
# several percent). Deterministic: one run is the figure. Needs valgrind.
#
#   bench/write-cost.sh [--batches "1 10 100 1000 10000"] [--variants "ours floor v10 v8 original"]
#                       [--calls "6 26"] [--large-calls "6 10"] [--huge-calls "2 4"] [--candidate NAME=FILE]...
#                       [--annotate VARIANT:BATCH] [--jobs 2]
# --large-calls applies from 1,000 rows and --huge-calls from 10,000, where one call outweighs
# every one-time cost (and the first custom plans) by far: fewer calls, the same figure to 0.1 %.
# --annotate keeps that variant's callgrind output and prints its most expensive functions.
set -euo pipefail
cd "$(dirname "$0")/.."

batches="1 10 100 1000 10000" variants="ours floor v10 v8 original" calls="6 26" large_calls="6 10"
huge_calls="2 4"
jobs=2 annotate="" candidates=()
while [ $# -gt 0 ]; do
  case "$1" in
    --batches) batches=$2; shift 2 ;;
    --variants) variants=$2; shift 2 ;;
    --calls) calls=$2; shift 2 ;;
    --large-calls) large_calls=$2; shift 2 ;;
    --huge-calls) huge_calls=$2; shift 2 ;;
    --candidate) candidates+=("$2"); variants+=" ${2%%=*}"; shift 2 ;;
    --annotate) annotate=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    *) echo "bench/write-cost.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
command -v valgrind >/dev/null || { echo "bench/write-cost.sh: valgrind not found (apt-get install valgrind)" >&2; exit 1; }

profile=${BENCH_PROFILE:-release}
cargo build --profile "$profile" --quiet
tool=target/$([ "$profile" = dev ] && echo debug || echo "$profile")/init-slate-db
bindir=$(scripts/pg-bindir.sh)

eval "$(scripts/throwaway-postgres.sh start)"
work=$(mktemp -d)
chmod 755 "$work"
[ "$(id -u)" = 0 ] && chown postgres "$work"
trap 'scripts/throwaway-postgres.sh stop "$SLATE_PG_DIR" 2>/dev/null || true; rm -rf "$work"' EXIT
as_server_user() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
. bench/lib.sh

# The databases, one per variant; single-user mode runs as the OS user, so it gets a superuser.
psql -X -q -d postgres -c "CREATE ROLE $(as_server_user whoami) SUPERUSER" 2>/dev/null || true
for v in $variants; do
  case $v in
    ours | floor) "$tool" -n "c_$v" -t source >/dev/null 2>&1 ;;
    original) release_database c_original 6 ;;
    v[0-9]*) release_database "c_$v" "${v#v}" ;;
    *)
      "$tool" -n "c_$v" -t source >/dev/null 2>&1
      for c in "${candidates[@]}"; do
        [ "${c%%=*}" = "$v" ] && psql -X -q -v ON_ERROR_STOP=1 -1 -d "c_$v" -f "${c#*=}" >/dev/null
      done ;;
  esac
done
as_server_user "$bindir/pg_ctl" -D "$SLATE_PG_DIR/data" -w stop -m fast >/dev/null

calls_for() {   # calls_for BATCH: the two call counts K used at that batch size
  if [ "$1" -ge 10000 ]; then echo "$huge_calls"; elif [ "$1" -ge 1000 ]; then echo "$large_calls"; else echo "$calls"; fi
}

results="$work/results.csv"
echo "variant,batch,instructions_per_call" > "$results"
for b in $batches; do
  mkdir -p "$work/$b"
  write_statements "$b" "$work/$b"
done
chmod -R a+rX "$work"

# One single-user backend per data directory: each parallel job runs on its own copy.
for j in $(seq 1 "$jobs"); do cp -a "$SLATE_PG_DIR/data" "$work/data$j"; done
run_job() {   # run_job J VARIANT BATCH K
  local j=$1 v=$2 b=$3 k=$4 out="$work/$2.$3.$4"
  statement="$work/$b/$([ "$v" = floor ] && echo floor || echo ours).sql"
  for _ in $(seq 1 "$k"); do cat "$statement"; done > "$out.sql"
  chmod a+r "$out.sql"
  as_server_user valgrind --tool=callgrind --callgrind-out-file="$out.callgrind" \
    "$bindir/postgres" --single -D "$work/data$j" -c fsync=off "c_$v" \
    < "$out.sql" > "$out.log" 2>&1 || { echo "bench/write-cost.sh: $v at $b rows failed:" >&2; tail -5 "$out.log" >&2; return 1; }
  if grep -q 'ERROR:' "$out.log"; then
    echo "bench/write-cost.sh: $v at $b rows:" >&2; grep -m1 -A1 'ERROR:' "$out.log" >&2; return 1
  fi
  awk '/^summary:|^totals:/ { print $2; exit }' "$out.callgrind" > "$out.ir"
}

tasks=()
for b in $batches; do
  read -r low high <<< "$(calls_for "$b")"
  for v in $variants; do tasks+=("$v $b $low" "$v $b $high"); done
done
# Run the tasks $jobs at a time, each job on its own data directory.
i=0
while [ $i -lt ${#tasks[@]} ]; do
  pids=()
  for j in $(seq 1 "$jobs"); do
    [ $i -lt ${#tasks[@]} ] || break
    # shellcheck disable=SC2086
    run_job "$j" ${tasks[$i]} & pids+=($!)
    i=$((i + 1))
  done
  for p in "${pids[@]}"; do wait "$p" || exit 1; done
  # Each job's data directory back to the state the next task expects (no events yet).
  for j in $(seq 1 "$jobs"); do rm -rf "$work/data$j"; cp -a "$SLATE_PG_DIR/data" "$work/data$j"; done
done

for b in $batches; do
  read -r low high <<< "$(calls_for "$b")"
  for v in $variants; do
    echo "$v,$b,$(( ($(cat "$work/$v.$b.$high.ir") - $(cat "$work/$v.$b.$low.ir")) / (high - low) ))" >> "$results"
  done
done

if [ -n "$annotate" ]; then
  # Where the instructions go, per call: each function's inclusive count at K = high minus
  # K = low, divided by the difference (callgrind_annotate names the exported functions).
  v=${annotate%%:*} b=${annotate#*:}
  read -r low high <<< "$(calls_for "$b")"
  for k in "$low" "$high"; do
    callgrind_annotate --inclusive=yes --threshold=100 "$work/$v.$b.$k.callgrind" > "$work/annotate.$k" 2>/dev/null || true
  done
  python3 - "$work/annotate.$low" "$work/annotate.$high" $((high - low)) "${BENCH_ANNOTATE_TOP:-40}" <<'PY'
import re, sys, collections
def load(path):
    d = collections.Counter()
    for line in open(path):
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(\S.*?)\s+\[", line)
        if m and "PROGRAM TOTALS" not in line:
            name = m.group(2).split(":", 1)[-1]
            d[name] = max(d[name], int(m.group(1).replace(",", "")))
    return d
low, high, calls, top = load(sys.argv[1]), load(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
per_call = {n: (high[n] - low[n]) // calls for n in high if not n.startswith("0x")}
print(f"inclusive instructions per call, top {top}:")
for n, c in sorted(per_call.items(), key=lambda kv: -kv[1])[:top]:
    print(f"{c:>14,}  {n}")
PY
fi

cat "$results" > "${BENCH_COST_CSV:-/dev/null}"
python3 - "$results" "$variants" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
variants = sys.argv[2].split()
cost = {(r["variant"], int(r["batch"])): int(r["instructions_per_call"]) for r in rows}
batches = sorted({b for _, b in cost})
others = [v for v in variants if v != "floor"]
head = ["batch"] + variants + [f"{v} / floor" for v in others if "floor" in variants]
print("| " + " | ".join(head) + " |")
print("|" + "|".join([" ---: "] * len(head)) + "|")
for b in batches:
    cells = [f"{b:,}"] + [f"{cost[(v, b)]:,}" for v in variants]
    if "floor" in variants:
        cells += [f"{cost[(v, b)] / cost[('floor', b)]:.3f}" for v in others]
    print("| " + " | ".join(cells) + " |")
PY
