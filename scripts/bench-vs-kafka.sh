#!/usr/bin/env bash
# Compares `foodpipe bench produce` with Apache Kafka's own
# kafka-producer-perf-test (org.apache.kafka.tools.ProducerPerformance, from
# the test bed's jars) against the same broker, with the same record count,
# record size, acks, idempotence, compression, linger and batch size,
# alternating Kafka and foodpipe (A B A B A B), and prints both results and
# the median ratio foodpipe/Kafka of records/s and of p99 latency.
#
# Usage: scripts/bench-vs-kafka.sh        (settings from the environment:)
#   RECORDS=2000000 RECORD_SIZE=512 ROUNDS=3 LINGER_MS=10 BATCH_BYTES=1048576
#   COMPRESSION=snappy PARTITIONS=3
# Both tools send fresh random upper-case letters per record with no key.
# Needs the test bed (started if it is not running) and python3.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

RECORDS=${RECORDS:-2000000}
RECORD_SIZE=${RECORD_SIZE:-512}
ROUNDS=${ROUNDS:-3}
LINGER_MS=${LINGER_MS:-10}
BATCH_BYTES=${BATCH_BYTES:-1048576}
COMPRESSION=${COMPRESSION:-snappy}
PARTITIONS=${PARTITIONS:-3}

scripts/testbed.sh up >&2
eval "$(scripts/testbed.sh env)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/foodpipe" .
fp() { "$work/foodpipe" --brokers "$FOODPIPE_TEST_BROKERS" --log-level warn "$@"; }

echo "settings: $RECORDS records of $RECORD_SIZE random bytes, acks=all, idempotent, compression=$COMPRESSION," \
	"linger=${LINGER_MS}ms, batch bytes=$BATCH_BYTES, $PARTITIONS partitions, $ROUNDS rounds (Kafka first)"
echo "broker: Kafka $FOODPIPE_TESTBED_KAFKA_VERSION at $FOODPIPE_TEST_BROKERS; $(nproc) CPUs; $(go version | cut -d' ' -f3)"
echo

results="$work/results.tsv"
for round in $(seq 1 "$ROUNDS"); do
	# A: Kafka's tool, on a fresh topic.
	topic="bench-vs-kafka-$round-$RANDOM"
	fp topics init --topic "$topic" --partitions "$PARTITIONS" >/dev/null
	line=$(scripts/testbed.sh kafka-run org.apache.kafka.tools.ProducerPerformance \
		--topic "$topic" --num-records "$RECORDS" --record-size "$RECORD_SIZE" --throughput -1 \
		--producer-props bootstrap.servers="$FOODPIPE_TEST_BROKERS" acks=all enable.idempotence=true \
		compression.type="$COMPRESSION" linger.ms="$LINGER_MS" batch.size="$BATCH_BYTES" 2>/dev/null | tail -1)
	echo "round $round kafka-producer-perf-test: $line"
	python3 - "$line" >>"$results" <<'EOF'
import re, sys
m = re.match(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th", sys.argv[1])
if not m:
    sys.exit("cannot parse: " + sys.argv[1])
print("kafka", m.group(2), m.group(8), sep="\t")
EOF
	for t in "$topic" "$topic.dlq"; do
		scripts/testbed.sh kafka-run org.apache.kafka.tools.TopicCommand --bootstrap-server "$FOODPIPE_TEST_BROKERS" \
			--delete --topic "$t" >/dev/null 2>&1 || true
	done

	# B: foodpipe, on its own fresh topic (bench creates and deletes it).
	json=$(fp bench produce --records "$RECORDS" --record-size "$RECORD_SIZE" --throughput -1 --acks all \
		--compression "$COMPRESSION" --linger "${LINGER_MS}ms" --producer-batch-bytes "$BATCH_BYTES" \
		--partitions "$PARTITIONS" --output json)
	python3 - "$json" "$round" >>"$results" <<'EOF'
import json, sys
r = json.loads(sys.argv[1])
l = r["latency_ms"]
print(f"round {sys.argv[2]} foodpipe bench produce:  {r['records']} records sent, {r['records_per_sec']:.1f} records/sec "
      f"({r['mb_per_sec']:.2f} MB/sec), {l['avg']:.2f} ms avg latency, {l['max']:.2f} ms max latency, "
      f"{l['p50']:.1f} ms 50th, {l['p95']:.1f} ms 95th, {l['p99']:.1f} ms 99th, {l['p999']:.1f} ms 99.9th.", file=sys.stderr)
print("foodpipe", r["records_per_sec"], l["p99"], sep="\t")
EOF
done

echo
python3 - "$results" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
k = [(float(a), float(b)) for t, a, b in rows if t == "kafka"]
f = [(float(a), float(b)) for t, a, b in rows if t == "foodpipe"]
rate_ratios = [fr / kr for (fr, _), (kr, _) in zip(f, k)]
p99_ratios = [fp / kp if kp > 0 else float("nan") for (_, fp), (_, kp) in zip(f, k)]
print("round  kafka rec/s  foodpipe rec/s  ratio   kafka p99  foodpipe p99  ratio")
for i, ((kr, kp), (fr, fp)) in enumerate(zip(k, f), 1):
    print(f"{i:>5}  {kr:>11.0f}  {fr:>14.0f}  {fr/kr:>5.2f}   {kp:>7.1f}ms  {fp:>10.1f}ms  {p99_ratios[i-1]:>5.2f}")
print(f"median ratio foodpipe/Kafka: records/s {statistics.median(rate_ratios):.2f}, "
      f"p99 latency {statistics.median(p99_ratios):.2f} (lower is better)")
print("note: Kafka's tool reports latency in whole milliseconds; foodpipe's HDR histogram in microseconds.")
EOF
