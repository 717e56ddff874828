# Shared by the bench scripts (sourced, not run): the databases of earlier releases and the
# statements of the write path, so that every benchmark measures the same things.

# release_database NAME N: creates NAME with the source migrations up to VN applied by hand, as
# that release installed them (N=6: the original's insert_events and trigger).
release_database() {
  local name=$1 upto=$2
  createdb "$name"
  cat migrations/shared/V1__*.sql $(ls migrations/source/V*__*.sql | sort -V \
      | awk -v n="$upto" '{ split($0, a, "/V"); split(a[2], b, "__"); if (b[1] + 0 <= n) print }') \
    | psql -X -q -v ON_ERROR_STOP=1 -1 -d "$name" >/dev/null
}

# About 200 bytes of JSON per event, carrying the indexed keys.
bench_event() {
  printf '{"entityName":"Order","entityId":"order-%06d","operation":"update","propertyName":"status","value":"shipped-to-warehouse-%04d","metadata":{"command":"ship-order","user":"bench-user","correlationId":"c0ffee-%08d"}}' "$1" "$1" "$1"
}

# write_statements B DIR: DIR/ours.sql (one insert_events call of B events), DIR/floor.sql (the
# contract floor: one statement that takes the id row lock with UPDATE ... RETURNING and inserts
# the B rows with those ids and one timestamp) and DIR/raw.sql (a multi-row INSERT, no ids).
write_statements() {
  local b=$1 dir=$2 i e sep values="" floor_values="" raw_values=""
  for i in $(seq 1 "$b"); do
    e=$(bench_event "$i")
    sep=$([ "$i" -gt 1 ] && echo "," || true)
    values+="$sep(\$1[$i], \$2, '$e')"
    floor_values+="$sep($i, '$e')"
    raw_values+="$sep(now(), '$e')"
  done
  printf 'SELECT insert_events($v$%s$v$);\n' "$values" > "$dir/ours.sql"
  printf 'WITH next AS (UPDATE id SET id = id + %d RETURNING id - %d - 1 AS start) INSERT INTO events (id, ts, event) SELECT next.start + v.i, now(), v.e::jsonb FROM next, (VALUES %s) AS v(i, e);\n' "$b" "$b" "$floor_values" > "$dir/floor.sql"
  printf 'INSERT INTO events (ts, event) VALUES %s;\n' "$raw_values" > "$dir/raw.sql"
}
