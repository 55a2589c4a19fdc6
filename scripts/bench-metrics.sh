#!/usr/bin/env bash
# What serving metrics costs the sink: runs `foodpipe bench sink` with
# --metrics-addr and without, alternated (off on off on …, PAIRS pairs, each
# on its own new topic and schema), and prints each run's rows/s, ratio to the
# raw COPY ceiling (the same rows COPYed in the same run: it cancels the
# database's speed of the moment) and CPU per million rows, then the medians
# and on ÷ off of both.
#
# Usage: scripts/bench-metrics.sh      (settings from the environment:)
#   RECORDS=500000 PAIRS=4
# Needs the test bed (started if it is not running) and python3.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

RECORDS=${RECORDS:-500000}
PAIRS=${PAIRS:-4}

scripts/testbed.sh up >&2
eval "$(scripts/testbed.sh env)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/foodpipe" .

for i in $(seq "$PAIRS"); do
	for mode in off on; do
		metrics=()
		[ "$mode" = on ] && metrics=(--metrics-addr 127.0.0.1:0)
		"$work/foodpipe" bench sink --brokers "$FOODPIPE_TEST_BROKERS" --database-url "$FOODPIPE_TEST_DATABASE_URL" \
			--log-level error --records "$RECORDS" --output json "${metrics[@]}" >"$work/$mode-$i.json"
		echo "$mode $i: $(jq -r '"\(.rows_per_sec|floor) rows/s, ratio to raw COPY \(.ratio_to_raw_copy*1000|round/1000), cpu \(.cpu.seconds_per_million_records*100|round/100) s per M rows"' "$work/$mode-$i.json")"
	done
done

python3 - "$work" "$PAIRS" <<'PY'
import json, statistics, sys
work, pairs = sys.argv[1], int(sys.argv[2])
def runs(mode):
    return [json.load(open(f"{work}/{mode}-{i}.json")) for i in range(1, pairs + 1)]
med = {m: {"ratio": statistics.median(r["ratio_to_raw_copy"] for r in runs(m)),
           "cpu": statistics.median(r["cpu"]["seconds_per_million_records"] for r in runs(m))} for m in ("off", "on")}
print(f"median ratio to raw COPY: off {med['off']['ratio']:.3f}, on {med['on']['ratio']:.3f}, on/off {med['on']['ratio']/med['off']['ratio']:.3f}")
print(f"median CPU per M rows:    off {med['off']['cpu']:.2f} s, on {med['on']['cpu']:.2f} s, on/off {med['on']['cpu']/med['off']['cpu']:.3f}")
PY
