#!/usr/bin/env bash
# Runs every foodpipe test against real services: starts the test bed
# (Kafka + PostgreSQL, no Docker) if it is not running, then
# `go test -race ./...` with FOODPIPE_REQUIRE_SERVICES=1, so an integration
# test that cannot reach its services fails instead of skipping. Needs
# python3 for the report.
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
go test -race -count=1 -timeout 15m -json "${args[@]}" >"$log" 2>&1 || status=$?

# One line per top-level test, the failures' output, every skip with its
# reason, and the counts of tests and subtests (scripts/test-report.py).
python3 scripts/test-report.py <"$log" || status=1
exit "$status"
