#!/usr/bin/env bash
# Prints the Debian packages of tools/setup/debian-packages.txt, one a line (comments and blank lines dropped).
# With --missing: only those not installed (dpkg-query); nothing printed where dpkg is absent.
set -euo pipefail
list="$(dirname "$0")/debian-packages.txt"
pkgs=$(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$list" | grep -v '^$')
if [ "${1:-}" = "--missing" ]; then
  command -v dpkg-query >/dev/null || exit 0
  for p in $pkgs; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
  done
else
  echo "$pkgs"
fi
