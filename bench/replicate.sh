#!/usr/bin/env bash
# Replication, measured, side by side in one run on one throwaway cluster (wal_level = logical;
# source and destinations share the machine):
#   1. writers' throughput: 4 pgbench clients calling insert_events with batches of 10 for
#      SECONDS, with no subscription, with two destinations following, and with none again
#      after --stop (the A/A control of the machine's noise);
#   2. lag per destination during (1): every 50 ms, how old the newest applied event is
#      (clock_timestamp() - its ts) on each destination; p50, p99 and max in ms;
#   3. the initial copy of EVENTS events: `replicate` to a new destination, against `restore` of
#      the same events from a backup.
#
#   bench/replicate.sh [SECONDS] [EVENTS]        (default: 60 1000000)
#   BENCH_PROFILE=dev bench/replicate.sh 2 2000      (smoke run)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
n=${2:-1000000}
profile=${BENCH_PROFILE:-release}
cargo build --profile "$profile" --quiet
tool=$(pwd)/target/$([ "$profile" = dev ] && echo debug || echo "$profile")/init-slate-db
for program in pgbench psql python3; do
  command -v "$program" >/dev/null || { echo "bench/replicate.sh: $program not found" >&2; exit 1; }
done
source bench/lib.sh

eval "$(SLATE_PG_OPTIONS="-c wal_level=logical -c max_replication_slots=10 -c max_wal_senders=10" scripts/throwaway-postgres.sh start)"
work=$(mktemp -d)
trap 'scripts/throwaway-postgres.sh stop "$SLATE_PG_DIR"; rm -rf "$work"' EXIT
psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
now_ms() { date +%s%N | awk '{printf "%.0f", $1 / 1000000}'; }

export INIT_SLATE_DB_FROM_PASSWORD=$PGPASSWORD
"$tool" -n origin -t source >/dev/null 2>&1
write_statements 10 "$work"

# events/s of 4 writers for SECONDS, from pgbench's transactions per second.
writers() {
  pgbench -n -c 4 -j 2 -T "$secs" -f "$work/ours.sql" origin 2>/dev/null \
    | awk '/^tps/ { printf "%.0f", $3 * 10 }'
}

# Samples every 50 ms, in one psql session, how old the newest event on database $1 is.
sample_lag() {
  printf 'SELECT extract(epoch FROM clock_timestamp() - (SELECT ts FROM events ORDER BY id DESC LIMIT 1)) * 1000\n\\watch 0.05\n' \
    | psql -X -At -d "$1" >"$2" 2>/dev/null &
  echo $!
}

# Writers alone, then with two destinations following (lag sampled from 1 s into the run to
# 1 s before its end, while events flow), then alone again after --stop: the A/A control.
alone=$(writers)
"$tool" replicate -d origin --replica-database first >/dev/null 2>&1
"$tool" replicate -d origin --replica-database second >/dev/null 2>&1
writers >"$work/followed" &
writers_pid=$!
sleep 1
first_sampler=$(sample_lag first "$work/lag_first")
second_sampler=$(sample_lag second "$work/lag_second")
sleep $(( secs > 2 ? secs - 2 : 1 ))
kill "$first_sampler" "$second_sampler" 2>/dev/null || true
wait "$writers_pid"
followed=$(cat "$work/followed")
"$tool" replicate -d origin --replica-database first --stop >/dev/null 2>&1
"$tool" replicate -d origin --replica-database second --stop >/dev/null 2>&1
again=$(writers)

# The initial copy: a source of N events (restored from a backup), then replicate and restore.
"$tool" -n backup -t destination >/dev/null 2>&1
psql_q -d backup -c "INSERT INTO events (id, ts, event)
  SELECT g, '2026-01-01 00:00:00+00'::timestamptz + g * interval '10.001 ms',
         jsonb_build_object('entityName', 'Order', 'entityId', 'order-' || lpad(g::text, 9, '0'),
                            'operation', 'update', 'propertyName', 'status',
                            'value', 'shipped-to-warehouse-' || (g % 97) || '-' || repeat('x', 120))
    FROM generate_series(1, $n) g" -c "VACUUM ANALYZE events" -c "CHECKPOINT" >/dev/null
"$tool" restore -n big --from-host "$PGHOST" --from-port "$PGPORT" --from-database backup --from-user "$PGUSER" >/dev/null 2>"$work/restore.err" || { cat "$work/restore.err" >&2; exit 1; }
psql_q -d big -c "CHECKPOINT" >/dev/null
t0=$(now_ms)
"$tool" restore -n restored_again --from-host "$PGHOST" --from-port "$PGPORT" --from-database backup --from-user "$PGUSER" >/dev/null 2>&1
restore_ms=$(( $(now_ms) - t0 ))
t0=$(now_ms)
"$tool" replicate -d big --replica-database big_follower >/dev/null 2>&1
replicate_ms=$(( $(now_ms) - t0 ))

python3 - "$work" "$alone" "$followed" "$n" "$restore_ms" "$replicate_ms" "$secs" "$again" <<'PY'
import statistics, sys
work, alone, followed, n, restore_ms, replicate_ms, secs, again = sys.argv[1:]
def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]
print(f"| writers (4 clients, batches of 10, {secs} s) | events/s | / alone |")
print("| --- | ---: | ---: |")
print(f"| no subscription | {int(alone)} | 1.00 |")
print(f"| two destinations following | {int(followed)} | {int(followed) / max(int(alone), 1):.2f} |")
print(f"| no subscription again (A/A control) | {int(again)} | {int(again) / max(int(alone), 1):.2f} |")
print()
print("| destination | samples | lag p50 | lag p99 | lag max |")
print("| --- | ---: | ---: | ---: | ---: |")
for name in ("first", "second"):
    lags = []
    for line in open(f"{work}/lag_{name}"):
        try:
            lags.append(float(line))
        except ValueError:
            pass
    if lags:
        print(f"| {name} | {len(lags)} | {percentile(lags, 50):.0f} ms | {percentile(lags, 99):.0f} ms | {max(lags):.0f} ms |")
print()
print(f"| initial copy of {int(n)} events | wall time | events/s |")
print("| --- | ---: | ---: |")
for label, ms in (("init-slate-db restore (copy, verify, commit)", restore_ms), ("init-slate-db replicate to a new destination (slot, copy, subscribe, catch up)", replicate_ms)):
    print(f"| {label} | {int(ms) / 1000:.2f} s | {int(n) / max(int(ms) / 1000, 1e-3):.0f} |")
PY
