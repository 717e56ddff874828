#!/usr/bin/env bash
# Where one insert_events call spends the backend's CPU, next to the contract floor's statement:
# one session runs N calls (synchronous_commit off, so the disk does not enter), `perf record`
# samples its backend for a few seconds, and the samples are divided by the calls made meanwhile.
# Prints, per function, the backend CPU per call (µs) of the floor and of ours and the difference,
# largest first. Needs perf (apt-get install linux-perf) and, for the function names, a postgres
# binary with symbols; stripped functions show as addresses.
#
#   bench/profile-call.sh [--batch 100] [--calls 3000] [--seconds 3] [--top 25]
set -euo pipefail
cd "$(dirname "$0")/.."

batch=100 calls=3000 seconds=3 top=25
while [ $# -gt 0 ]; do
  case "$1" in
    --batch) batch=$2; shift 2 ;;
    --calls) calls=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --top) top=$2; shift 2 ;;
    *) echo "bench/profile-call.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
command -v perf >/dev/null || { echo "bench/profile-call.sh: perf not found (apt-get install linux-perf)" >&2; exit 1; }

cargo build --release --quiet
tool=target/release/init-slate-db
eval "$(scripts/throwaway-postgres.sh start)"
work=$(mktemp -d)
trap 'scripts/throwaway-postgres.sh stop "$SLATE_PG_DIR"; rm -rf "$work"' EXIT

"$tool" -n p_ours -t source >/dev/null 2>&1
"$tool" -n p_floor -t source >/dev/null 2>&1

# The same events and statements as bench/write.sh.
. bench/lib.sh
write_statements "$batch" "$work"

profile() {
  local v=$1 pid before after
  { echo 'SET synchronous_commit = off;'; echo 'SELECT pg_sleep(0.5);'
    for _ in $(seq 1 "$calls"); do cat "$work/$v.sql"; done; } > "$work/$v.in"
  psql -X -q -d "p_$v" -f "$work/$v.in" >/dev/null &
  local client=$!
  sleep 0.3
  pid=$(psql -X -At -d "p_$v" -c "SELECT pid FROM pg_stat_activity WHERE datname = 'p_$v' AND pid <> pg_backend_pid() LIMIT 1")
  before=$(psql -X -At -d "p_$v" -c "SELECT id FROM id")
  perf record -F 2000 -p "$pid" -o "$work/$v.perf" -- sleep "$seconds" >/dev/null 2>&1
  after=$(psql -X -At -d "p_$v" -c "SELECT id FROM id")
  kill "$client" 2>/dev/null || true; wait "$client" 2>/dev/null || true
  # µs per call per function: samples / calls * (1e6 / 2000 Hz)
  perf report -i "$work/$v.perf" --no-children --sort dso,symbol -g none -n 2>/dev/null \
    | awk -v calls=$(( (after - before) / batch )) '/^ +[0-9]/ { printf "%s\t%.1f\n", $5, $2 / calls * 500 }' > "$work/$v.tsv"
  echo "$v: $(( (after - before) / batch )) calls in ${seconds} s" >&2
}
profile floor
profile ours

python3 - "$work/floor.tsv" "$work/ours.tsv" "$top" <<'PY'
import sys
def load(path):
    out = {}
    for line in open(path):
        name, us = line.rstrip("\n").split("\t")
        out[name] = out.get(name, 0.0) + float(us)
    return out
floor, ours, top = load(sys.argv[1]), load(sys.argv[2]), int(sys.argv[3])
print(f"backend CPU per call: floor {sum(floor.values()):.0f} µs, ours {sum(ours.values()):.0f} µs")
print(f"{'function':<40} {'floor µs':>9} {'ours µs':>9} {'ours - floor':>13}")
for name in sorted(set(floor) | set(ours), key=lambda n: -(ours.get(n, 0) - floor.get(n, 0)))[:top]:
    print(f"{name[:40]:<40} {floor.get(name, 0):9.1f} {ours.get(name, 0):9.1f} {ours.get(name, 0) - floor.get(name, 0):+13.1f}")
PY
