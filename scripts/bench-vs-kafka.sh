#!/usr/bin/env bash
# Compares `foodpipe bench produce` with Apache Kafka's own
# kafka-producer-perf-test (org.apache.kafka.tools.ProducerPerformance, from
# the test bed's jars) against the same broker, with the same record count,
# record size, acks, idempotence, compression, linger, batch size and queue
# (Java's buffer.memory = foodpipe's max-buffered-records × record size),
# alternating Kafka and foodpipe (A B A B A B), and prints both results, the
# CPU time of each whole process (user + system, from /usr/bin/time: the
# JVM's JIT and GC threads count, so do Go's) per million records, and the
# median ratios foodpipe/Kafka of records/s, p99 latency and CPU per record.
#
# Usage: scripts/bench-vs-kafka.sh        (settings from the environment:)
#   RECORDS=5000000 RECORD_SIZE=512 ROUNDS=3 LINGER_MS=10 BATCH_BYTES=1048576
#   COMPRESSION=snappy PARTITIONS=3 MAX_BUFFERED_RECORDS=10000
# 5,000,000 records by default, so that the JVM's warm-up is a small share of
# its run. Both tools send fresh random upper-case letters per record with
# no key. Needs the test bed (started if it is not running), python3 and
# /usr/bin/time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

RECORDS=${RECORDS:-5000000}
RECORD_SIZE=${RECORD_SIZE:-512}
ROUNDS=${ROUNDS:-3}
LINGER_MS=${LINGER_MS:-10}
BATCH_BYTES=${BATCH_BYTES:-1048576}
COMPRESSION=${COMPRESSION:-snappy}
PARTITIONS=${PARTITIONS:-3}
MAX_BUFFERED_RECORDS=${MAX_BUFFERED_RECORDS:-10000}
BUFFER_MEMORY=$((MAX_BUFFERED_RECORDS * RECORD_SIZE))

scripts/testbed.sh up >&2
eval "$(scripts/testbed.sh env)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/foodpipe" .
fp() { "$work/foodpipe" --brokers "$FOODPIPE_TEST_BROKERS" --log-level warn "$@"; }

echo "settings: $RECORDS records of $RECORD_SIZE random bytes, acks=all, idempotent, compression=$COMPRESSION," \
	"linger=${LINGER_MS}ms, batch bytes=$BATCH_BYTES, queue $MAX_BUFFERED_RECORDS records = $BUFFER_MEMORY bytes," \
	"$PARTITIONS partitions, $ROUNDS rounds (Kafka first)"
echo "broker: Kafka $FOODPIPE_TESTBED_KAFKA_VERSION at $FOODPIPE_TEST_BROKERS; $(nproc) CPUs; $(go version | cut -d' ' -f3)"
echo

results="$work/results.tsv"
for round in $(seq 1 "$ROUNDS"); do
	# A: Kafka's tool, on a fresh topic.
	topic="bench-vs-kafka-$round-$RANDOM"
	fp topics init --topic "$topic" --partitions "$PARTITIONS" >/dev/null
	/usr/bin/time -f "%U %S" -o "$work/cpu" scripts/testbed.sh kafka-run org.apache.kafka.tools.ProducerPerformance \
		--topic "$topic" --num-records "$RECORDS" --record-size "$RECORD_SIZE" --throughput -1 \
		--producer-props bootstrap.servers="$FOODPIPE_TEST_BROKERS" acks=all enable.idempotence=true \
		compression.type="$COMPRESSION" linger.ms="$LINGER_MS" batch.size="$BATCH_BYTES" \
		buffer.memory="$BUFFER_MEMORY" 2>/dev/null >"$work/kafka.out"
	line=$(tail -1 "$work/kafka.out")
	echo "round $round kafka-producer-perf-test: $line"
	python3 - "$line" "$(cat "$work/cpu")" >>"$results" <<'EOF'
import re, sys
m = re.match(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th", sys.argv[1])
if not m:
    sys.exit("cannot parse: " + sys.argv[1])
user, system = map(float, sys.argv[2].split()[-2:])
print("kafka", m.group(2), m.group(8), (user + system) * 1e6 / int(m.group(1)), sep="\t")
EOF
	for t in "$topic" "$topic.dlq"; do
		scripts/testbed.sh kafka-run org.apache.kafka.tools.TopicCommand --bootstrap-server "$FOODPIPE_TEST_BROKERS" \
			--delete --topic "$t" >/dev/null 2>&1 || true
	done

	# B: foodpipe, on its own fresh topic (bench creates and deletes it).
	json=$(/usr/bin/time -f "%U %S" -o "$work/cpu" "$work/foodpipe" --brokers "$FOODPIPE_TEST_BROKERS" --log-level warn \
		bench produce --records "$RECORDS" --record-size "$RECORD_SIZE" --throughput -1 --acks all \
		--compression "$COMPRESSION" --linger "${LINGER_MS}ms" --producer-batch-bytes "$BATCH_BYTES" \
		--max-buffered-records "$MAX_BUFFERED_RECORDS" --partitions "$PARTITIONS" --output json)
	python3 - "$json" "$round" "$(cat "$work/cpu")" >>"$results" <<'EOF'
import json, sys
r = json.loads(sys.argv[1])
l = r["latency_ms"]
print(f"round {sys.argv[2]} foodpipe bench produce:  {r['records']} records sent, {r['records_per_sec']:.1f} records/sec "
      f"({r['mb_per_sec']:.2f} MB/sec), {l['avg']:.2f} ms avg latency, {l['max']:.2f} ms max latency, "
      f"{l['p50']:.1f} ms 50th, {l['p95']:.1f} ms 95th, {l['p99']:.1f} ms 99th, {l['p999']:.1f} ms 99.9th.", file=sys.stderr)
user, system = map(float, sys.argv[3].split()[-2:])
print("foodpipe", r["records_per_sec"], l["p99"], (user + system) * 1e6 / r["records"], sep="\t")
EOF
done

echo
python3 - "$results" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
k = [tuple(map(float, r[1:])) for r in rows if r[0] == "kafka"]
f = [tuple(map(float, r[1:])) for r in rows if r[0] == "foodpipe"]
rate = [fr[0] / kr[0] for fr, kr in zip(f, k)]
p99 = [fr[1] / kr[1] if kr[1] > 0 else float("nan") for fr, kr in zip(f, k)]
cpu = [fr[2] / kr[2] for fr, kr in zip(f, k)]
print("round  kafka rec/s  foodpipe rec/s  ratio   kafka p99  foodpipe p99  ratio   kafka cpu s/M  foodpipe cpu s/M  ratio")
for i, (kr, fr) in enumerate(zip(k, f), 1):
    print(f"{i:>5}  {kr[0]:>11.0f}  {fr[0]:>14.0f}  {rate[i-1]:>5.2f}   {kr[1]:>7.1f}ms  {fr[1]:>10.1f}ms  {p99[i-1]:>5.2f}"
          f"   {kr[2]:>13.2f}  {fr[2]:>16.2f}  {cpu[i-1]:>5.2f}")
print(f"median ratio foodpipe/Kafka: records/s {statistics.median(rate):.2f}, p99 latency {statistics.median(p99):.2f}, "
      f"CPU per record {statistics.median(cpu):.2f} (lower is better for the last two)")
print("note: CPU is each whole process's user + system time (JVM start-up, JIT and GC included; the foodpipe "
      "process also creates and deletes its topic), per million records sent.")
print("note: Kafka's tool reports latency in whole milliseconds; foodpipe's HDR histogram in microseconds.")
EOF
