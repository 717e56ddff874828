#!/usr/bin/env bash
# Prints the directory of the PostgreSQL server binaries (initdb, pg_ctl, postgres): the one
# way the project finds them (.ci/run, the tests' support module, throwaway-postgres.sh).
# Order: $PG_BINDIR, `pg_config --bindir`, the newest /usr/lib/postgresql/*/bin, then PATH.
# Exits 1 with a message when there are none.
set -euo pipefail
if [ -n "${PG_BINDIR:-}" ]; then
  [ -x "$PG_BINDIR/initdb" ] && { echo "$PG_BINDIR"; exit 0; }
  echo "pg-bindir: PG_BINDIR=$PG_BINDIR has no initdb" >&2; exit 1
fi
if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
  pg_config --bindir; exit 0
fi
for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
  [ -x "$dir/initdb" ] && { echo "$dir"; exit 0; }
done
if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; exit 0; fi
echo "pg-bindir: no PostgreSQL server binaries found (install the postgresql package, or set PG_BINDIR)" >&2
exit 1
