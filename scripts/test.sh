#!/usr/bin/env bash
# Runs every foodpipe test against real services: starts the test bed
# (Kafka + PostgreSQL, no Docker) if it is not running, then
# `go test -race ./...` with FOODPIPE_REQUIRE_SERVICES=1, so an integration
# test that cannot reach its services fails instead of skipping.
# Extra arguments go to go test, e.g. scripts/test.sh -run TestConsume ./cmd/...
# The services keep running afterwards; stop them with scripts/testbed.sh down.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/testbed.sh up
eval "$(scripts/testbed.sh env)"
export FOODPIPE_REQUIRE_SERVICES=1

args=("$@")
if [ ${#args[@]} -eq 0 ]; then
	args=(./...)
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
go test -race -count=1 -timeout 15m -v "${args[@]}" >"$log" 2>&1 || status=$?

# Top-level results only: one line per test, then the package lines.
grep -E '^(--- (PASS|FAIL|SKIP)|ok |FAIL|panic:|\s+--- FAIL)' "$log" || true
if [ "$status" -ne 0 ]; then
	echo >&2
	echo "go test failed; full log of the failures:" >&2
	grep -vE '^(=== (RUN|PAUSE|CONT|NAME)|--- PASS|PASS$)' "$log" | grep -vE '^\s+--- PASS' >&2 || true
fi
passed=$(grep -cE '^--- PASS' "$log" || true)
skipped=$(grep -cE '^--- SKIP' "$log" || true)
failed=$(grep -cE '^--- FAIL' "$log" || true)
echo "tests: $passed passed, $failed failed, $skipped skipped (top level)"
exit "$status"
