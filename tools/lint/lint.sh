#!/usr/bin/env bash
# `npm run lint [-- PATH...]`: prettier --check and ESLint (tools/lint/eslint.config.js), side by side, over the
# TypeScript sources (core, plugins, hosts, test) or over the folders/files given. Exit status non-zero if either
# finds anything (ESLint runs with --max-warnings 0). A whole-tree run
# also runs the tests of the project's own ESLint rules (tools/lint/rules/*.test.js).
# `npm run format [-- PATH...]` rewrites the same files with prettier --write.
# Both tools keep a cache under node_modules/.cache (by content), so a second run checks only changed files.
set -u
cd "$(dirname "$0")/../.."
mode=check
if [ "${1:-}" = "--write" ]; then mode=write; shift; fi
whole=0
if [ $# -eq 0 ]; then set -- core plugins hosts test; whole=1; fi
prettier=node_modules/.bin/prettier
eslint=tools/lint/node_modules/.bin/eslint
if [ ! -x "$prettier" ]; then echo "lint: prettier is not installed: run 'npm ci'" >&2; exit 2; fi
if [ "$mode" = write ]; then exec "$prettier" --write --log-level warn "$@"; fi
if [ ! -x "$eslint" ]; then echo "lint: ESLint is not installed: run 'npm ci --prefix tools/lint'" >&2; exit 2; fi
out=$(mktemp)
rules_out=$(mktemp)
trap 'rm -f "$out" "$rules_out"' EXIT
"$prettier" --check --log-level warn --cache --cache-strategy content \
  --cache-location node_modules/.cache/prettier/lint-cache "$@" >"$out" 2>&1 &
pid=$!
if [ $whole -eq 1 ]; then
  # the tests of the project's own ESLint rules (tools/lint/rules), beside the rest
  (for t in tools/lint/rules/*.test.js; do node "$t" || exit 1; done) >"$rules_out" 2>&1 &
  rules_pid=$!
fi
"$eslint" --config tools/lint/eslint.config.js --max-warnings 0 --cache --cache-strategy content \
  --cache-location node_modules/.cache/eslint/ "$@"
e=$?
wait $pid
p=$?
cat "$out"
r=0
if [ $whole -eq 1 ]; then
  wait $rules_pid
  r=$?
  if [ $r -ne 0 ]; then cat "$rules_out"; echo "lint: the tests of tools/lint/rules failed"; fi
fi
if [ $p -eq 0 ]; then echo "prettier: formatted"; else echo "prettier: run 'npm run format' (or npx prettier --write) on the files above"; fi
if [ $e -eq 0 ]; then echo "eslint: no errors"; fi
[ $p -eq 0 ] && [ $e -eq 0 ] && [ $r -eq 0 ]
