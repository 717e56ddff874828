#!/usr/bin/env bash
# The write path, measured: events per second through
#   ours      insert_events as init-slate-db installs it (source V1-V10)
#   vN        an earlier release's insert_events (source V1-VN), for example v9 (the previous
#             release) and v8: ours must never be slower than V8 or V9
#   original  the spec's insert_events and per-row NOTIFY trigger (source V1-V6, where V3 and V5
#             are the original's SQL), kept only as the baseline
#   floor     the least work the contract needs, by hand, on the same layout as ours: one
#             statement (one round trip) that takes the id row lock with UPDATE id SET id = id + n
#             RETURNING and inserts the n rows with those ids and one timestamp in a multi-row
#             INSERT (NOTIFY trigger in place)
#   floor2    the floor again, in a database of its own: an A/A control. floor2 / floor shows how
#             far this machine's noise alone moves a ratio, so a ratio of ours is read against it
#   raw       a multi-row INSERT into an events table with a bigserial id and no trigger
#             (no gapless guarantee): what the contract costs
# at each batch size (events per call), client count, with and without a LISTEN session,
# against a throwaway cluster it starts itself. Variants run back to back inside each cell,
# so they share the machine's noise; their order turns by one place each run, so that no variant
# always runs first (right after the reset of the previous cell). After every run the ids are checked to be 1..count with
# no gap. Prints every run as CSV and a table of medians (events/s).
#
#   bench/write.sh [--duration S] [--runs N] [--batches "1 10 100 1000"] [--clients "1 2 4 8"]
#                  [--listen "off on"] [--variants "floor floor2 ours v9 v8 original raw"] [--csv FILE]
#   BENCH_PROFILE=dev bench/write.sh --duration 1 --runs 1 --batches 10 --clients 2 --listen on
set -euo pipefail
cd "$(dirname "$0")/.."

duration=5 runs=3 batches="1 10 100 1000" clients_list="1 2 4 8" listen_modes="off on" csv=""
variants="floor floor2 ours v9 v8 original raw"
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --batches) batches=$2; shift 2 ;;
    --clients) clients_list=$2; shift 2 ;;
    --listen) listen_modes=$2; shift 2 ;;
    --variants) variants=$2; shift 2 ;;
    --csv) csv=$2; shift 2 ;;
    *) echo "bench/write.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

profile=${BENCH_PROFILE:-release}
cargo build --profile "$profile" --quiet
tool=target/$([ "$profile" = dev ] && echo debug || echo "$profile")/init-slate-db
command -v pgbench >/dev/null || { echo "bench/write.sh: pgbench not found (apt-get install postgresql-client)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "bench/write.sh: python3 not found (apt-get install python3); it summarises the results" >&2; exit 1; }

eval "$(scripts/throwaway-postgres.sh start)"
work=$(mktemp -d)
listener_pid="" feeder_pid=""
cleanup() {
  declare -F stop_listener >/dev/null && stop_listener
  scripts/throwaway-postgres.sh stop "$SLATE_PG_DIR"
  rm -rf "$work"
}
trap cleanup EXIT

psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
. bench/lib.sh

# The databases.
"$tool" -n w_ours -t source >/dev/null 2>&1
"$tool" -n w_floor -t source >/dev/null 2>&1
"$tool" -n w_floor2 -t source >/dev/null 2>&1
release_database w_original 6
for v in $variants; do   # vN: the source migrations up to VN, as that release installed them
  [[ $v =~ ^v([0-9]+)$ ]] && release_database "w_$v" "${BASH_REMATCH[1]}"
done
createdb w_raw
psql_q -1 -d w_raw -f migrations/shared/V1__events_table.sql >/dev/null
psql_q -d w_raw -c "CREATE SEQUENCE events_id_seq OWNED BY events.id; ALTER TABLE events ALTER id SET DEFAULT nextval('events_id_seq')"

# pgbench scripts per variant and batch size.
for b in $batches; do
  mkdir "$work/$b"
  write_statements "$b" "$work/$b"
  for v in $variants; do
    case $v in
      floor | floor2) cp "$work/$b/floor.sql" "$work/${v}_$b.sql" ;;
      raw) cp "$work/$b/raw.sql" "$work/${v}_$b.sql" ;;
      *) cp "$work/$b/ours.sql" "$work/${v}_$b.sql" ;;   # ours, original, vN: one insert_events call
    esac
  done
done

reset_db() {
  # Triggers off for this session only: check_sql_command refuses TRUNCATE.
  psql_q -d "w_$1" -c "SET session_replication_role = replica; TRUNCATE events; $([ "$1" = raw ] && echo "ALTER SEQUENCE events_id_seq RESTART" || echo "UPDATE id SET id = 1");" >/dev/null
  psql_q -d "w_$1" -c "VACUUM ANALYZE events" -c "CHECKPOINT" >/dev/null
}

start_listener() {
  # A session that LISTENs and keeps reading, as a replicator would: psql reads a FIFO that a
  # feeder loop writes; both PIDs are kept, so only the processes started here are ended.
  rm -f "$work/listen.fifo"; mkfifo "$work/listen.fifo"
  psql -X -q -d "w_$1" <"$work/listen.fifo" >/dev/null 2>&1 &
  listener_pid=$!
  ( echo "LISTEN eventsinsert;"; while sleep 0.05; do echo "SELECT 1;"; done ) >"$work/listen.fifo" 2>/dev/null &
  feeder_pid=$!
  sleep 0.3
}

stop_listener() {
  local pid
  for pid in $feeder_pid $listener_pid; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  listener_pid="" feeder_pid=""
}

check_gapless() {
  local v=$1 result
  result=$(psql -X -At -d "w_$v" -c "SELECT count(*), COALESCE(min(id), 0), COALESCE(max(id), 0), $([ "$v" = raw ] && echo 0 || echo '(SELECT id FROM id)') FROM events")
  IFS='|' read -r count min max next <<< "$result"
  if [ "$v" != raw ] && { [ "$count" != "$max" ] || [ "$min" != 1 ] || [ "$next" != $((max + 1)) ]; }; then
    echo "bench/write.sh: $v: ids are not 1..$count without gaps (min $min, max $max, next $next)" >&2
    exit 1
  fi
  echo "$count"
}

# rotate K A B C ...: the list turned left by K-1 places.
rotate() {
  local k=$(( ($1 - 1) % ($# - 1) )); shift
  local list=("$@")
  echo "${list[@]:$k}" "${list[@]:0:$k}"
}

results="$work/results.csv"
echo "variant,batch,clients,listen,run,events_per_s,tps,events" > "$results"
for run in $(seq 1 "$runs"); do
  for b in $batches; do
    for c in $clients_list; do
      for l in $listen_modes; do
        for v in $(rotate "$run" $variants); do
          [ "$v" = raw ] && [ "$l" = on ] && continue   # raw has no trigger: nothing to listen to
          reset_db "$v"
          [ "$l" = on ] && start_listener "$v"
          out=$(pgbench -n -M simple -f "$work/${v}_$b.sql" -c "$c" -j "$c" -T "$duration" "w_$v" 2>&1) || { echo "$out" >&2; exit 1; }
          stop_listener
          tps=$(echo "$out" | awk '/^tps = / {print $3; exit}')
          count=$(check_gapless "$v")
          eps=$(awk "BEGIN {printf \"%.0f\", $tps * $b}")
          echo "$v,$b,$c,$l,$run,$eps,$tps,$count" | tee -a "$results"
        done
      done
    done
  done
done

[ -n "$csv" ] && cp "$results" "$csv"

# Medians per cell, variants side by side.
python3 - "$results" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
cells = {}
for r in rows:
    cells.setdefault((int(r["batch"]), int(r["clients"]), r["listen"]), {}).setdefault(r["variant"], []).append(float(r["events_per_s"]))
print()
releases = sorted({r["variant"] for r in rows if r["variant"][0] == "v"}, key=lambda v: -int(v[1:]))
columns = ["floor", "floor2", "ours"] + releases + ["original", "raw"]
ratios = [("floor2", "floor"), ("ours", "floor")] + [("ours", v) for v in releases]
name = lambda v: v.upper() if v in releases else v
print("| batch | clients | LISTEN | " + " | ".join(name(c) for c in columns) + " | " + " | ".join(f"{name(a)} / {name(d)}" for a, d in ratios) + " |")
print("| ---: | ---: | :---: |" + " ---: |" * (len(columns) + len(ratios)))
for (b, c, l), v in sorted(cells.items()):
    med = {k: statistics.median(x) for k, x in v.items()}
    fmt = lambda k: f"{med[k]:,.0f}" if k in med else "-"
    ratio = lambda a, d: f"{med[a] / med[d]:.2f}" if a in med and d in med and med[d] else "-"
    print(f"| {b} | {c} | {l} | " + " | ".join(fmt(k) for k in columns) + " | " + " | ".join(ratio(a, d) for a, d in ratios) + " |")

# How many cells meet a ratio, and how far the A/A control itself strays from 1.
def count(a, d, at_least):
    n = total = 0
    for v in cells.values():
        if a in v and d in v:
            total += 1
            n += statistics.median(v[a]) >= at_least * statistics.median(v[d])
    return n, total
print()
for a, d, t in [("floor2", "floor", 0.9), ("ours", "floor", 0.9)] + [("ours", v, 1.0) for v in releases]:
    n, total = count(a, d, t)
    if total:
        print(f"{a} >= {t} x {d}: {n} of {total} cells")
aa = [statistics.median(v["floor2"]) / statistics.median(v["floor"]) for v in cells.values() if "floor2" in v and "floor" in v]
if aa:
    print(f"floor2 / floor: {min(aa):.2f} to {max(aa):.2f}, median {statistics.median(aa):.2f}")
PY
