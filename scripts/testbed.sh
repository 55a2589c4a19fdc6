#!/usr/bin/env bash
# The foodpipe test bed: one Apache Kafka broker (KRaft, combined broker +
# controller) and one throwaway PostgreSQL cluster, both on 127.0.0.1, no Docker.
# Besides plaintext, the broker has a SASL_SSL listener (PLAIN, SCRAM-SHA-256,
# SCRAM-SHA-512) and a mutual-TLS listener, and PostgreSQL accepts TLS, all with
# certificates from a CA the test bed makes for itself.
# Run `scripts/testbed.sh help` for usage.
set -euo pipefail

readonly KAFKA_VERSION_DEFAULT=4.1.1

usage() {
	cat <<'EOF'
usage: scripts/testbed.sh COMMAND [ARGS...]

Commands:
  up                  start Kafka and PostgreSQL (downloads Kafka jars on first use);
                      running services are detected and kept, so `up` twice is harmless
                      (services started by an older testbed.sh get what they lack:
                      PostgreSQL TLS by a reload, the broker restarted on its ports)
  down                stop both services and remove the run dir (data, logs, state)
  env                 print shell exports for the tests, use as:  eval "$(scripts/testbed.sh env)"
                        line 1: export FOODPIPE_TEST_BROKERS=... FOODPIPE_TEST_DATABASE_URL=...
                        line 2: the secured endpoints: FOODPIPE_TEST_SASL_BROKERS (SASL_SSL),
                                FOODPIPE_TEST_MTLS_BROKERS (SSL, client certificate required),
                                FOODPIPE_TEST_TLS_CA, FOODPIPE_TEST_TLS_CLIENT_CERT/_KEY,
                                FOODPIPE_TEST_DATABASE_TLS_URL (sslmode=verify-full)
                        line 3: SASL users: FOODPIPE_TEST_SASL_{PLAIN,SCRAM_SHA_256,SCRAM_SHA_512}_{USER,PASSWORD}
                        then:   FOODPIPE_TESTBED_* helpers (Kafka classpath, PG bin dir, PGDATA, ...)
  status              show what is running; exit 0 only if both services are up
  pg-stop             stop PostgreSQL (pg_ctl stop -m fast), keeping its data and port
                      (for outage tests; Kafka keeps running)
  pg-start            start the same PostgreSQL cluster again on the same port
  kafka-stop          stop the Kafka broker (SIGTERM), keeping its data and ports
                      (for outage tests; PostgreSQL keeps running)
  kafka-start         start the same broker again on the same data and ports
  kafka-run CLASS ARGS...
                      run a Java main class with the Kafka classpath, e.g.
                        scripts/testbed.sh kafka-run org.apache.kafka.tools.TopicCommand \
                            --bootstrap-server "$FOODPIPE_TEST_BROKERS" --list
                        scripts/testbed.sh kafka-run org.apache.kafka.tools.ProducerPerformance ...
                        scripts/testbed.sh kafka-run \
                            org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ...
  help                this text

Environment (all optional):
  FOODPIPE_TESTBED_DIR            run dir: pids, ports, data, logs   (/tmp/foodpipe-testbed)
  FOODPIPE_TESTBED_CACHE          jar cache                          ($HOME/.cache/foodpipe-testbed)
  FOODPIPE_TESTBED_KAFKA_VERSION  Kafka release                      (4.1.1)
  FOODPIPE_TESTBED_MVN_ARGS       extra mvn arguments, e.g. -Dmaven.repo.local=DIR
  FOODPIPE_TESTBED_JAVA           java binary (else $JAVA_HOME/bin/java, else java on PATH; 17+)
  FOODPIPE_TESTBED_KAFKA_HEAP     broker heap flags                  (-Xms512m -Xmx1g)
  FOODPIPE_TESTBED_TOOL_OPTS      JVM flags for kafka-run            (-Xmx512m)
  FOODPIPE_TESTBED_KAFKA_TIMEOUT  seconds to wait for the broker     (90)
  FOODPIPE_TESTBED_KAFKA_PORT, FOODPIPE_TESTBED_CONTROLLER_PORT, FOODPIPE_TESTBED_PG_PORT,
  FOODPIPE_TESTBED_SASL_PORT, FOODPIPE_TESTBED_MTLS_PORT
                                  fixed ports (default: free ports found by probing)
  FOODPIPE_TESTBED_CLUSTER_ID     Kafka cluster id (default: random, never starting with '-')
  FOODPIPE_TESTBED_PG_BIN         PostgreSQL bin dir                 (/usr/lib/postgresql/15/bin)
  FOODPIPE_TESTBED_PG_OS_USER     OS user running PostgreSQL when invoked as root (postgres)

Everything listens on 127.0.0.1 only. Messages go to stderr; `env` and `status`
write to stdout. The run dir's parents must be traversable by the PostgreSQL
user (when run as root), so pick a FOODPIPE_TESTBED_DIR outside private (0700)
directories. Certificates (openssl, EC P-256) are in RUN_DIR/tls: ca.pem signs
server.pem (SAN IP:127.0.0.1, DNS:localhost) and client.pem (CN=foodpipe-client).
EOF
}

# ---------------------------------------------------------------- settings

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCRIPT_PATH="$SCRIPT_DIR/$(basename "${BASH_SOURCE[0]}")"
KAFKA_CONF_DIR="$SCRIPT_DIR/kafka"

RUN_DIR=${FOODPIPE_TESTBED_DIR:-/tmp/foodpipe-testbed}
CACHE_DIR=${FOODPIPE_TESTBED_CACHE:-${HOME:-/root}/.cache/foodpipe-testbed}
KAFKA_VERSION=${FOODPIPE_TESTBED_KAFKA_VERSION:-$KAFKA_VERSION_DEFAULT}
KAFKA_LIBS="$CACHE_DIR/kafka-$KAFKA_VERSION/libs"
KAFKA_CLASSPATH="$KAFKA_LIBS/*"
KAFKA_TIMEOUT=${FOODPIPE_TESTBED_KAFKA_TIMEOUT:-90}
PG_OS_USER=${FOODPIPE_TESTBED_PG_OS_USER:-postgres}

STATE_FILE="$RUN_DIR/state.env"
MARKER_FILE="$RUN_DIR/.foodpipe-testbed"
KAFKA_DIR="$RUN_DIR/kafka"
KAFKA_PROPS="$KAFKA_DIR/server.properties"
KAFKA_PID_FILE="$KAFKA_DIR/kafka.pid"
KAFKA_LOG_DIR="$KAFKA_DIR/logs"
PG_DIR="$RUN_DIR/pg"
PGDATA_DIR="$PG_DIR/data"
PG_LOG="$PG_DIR/postgres.log"
TLS_DIR="$RUN_DIR/tls"

# SASL users of the SASL_SSL listener, one per mechanism, so a client that
# sends the wrong mechanism fails instead of passing; passwords are drawn
# when the storage is formatted and kept in the state file.
readonly PLAIN_USER=foodpipe-plain SCRAM256_USER=foodpipe-scram-256 SCRAM512_USER=foodpipe-scram-512

# Filled from the state file (or chosen by `up`).
KAFKA_PORT=""
CONTROLLER_PORT=""
PG_PORT=""
SASL_PORT=""
MTLS_PORT=""
PLAIN_PASSWORD=""
SCRAM256_PASSWORD=""
SCRAM512_PASSWORD=""

# ---------------------------------------------------------------- helpers

log() { printf 'testbed: %s\n' "$*" >&2; }
die() {
	printf 'testbed: error: %s\n' "$*" >&2
	exit 1
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

# single-quote a string for the shell
shquote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

find_java() {
	local java=${FOODPIPE_TESTBED_JAVA:-}
	if [[ -z $java && -n ${JAVA_HOME:-} && -x ${JAVA_HOME}/bin/java ]]; then
		java="$JAVA_HOME/bin/java"
	fi
	if [[ -z $java ]]; then
		java=$(command -v java) || die "java not found: install a JDK 17+ or set FOODPIPE_TESTBED_JAVA"
	fi
	[[ -x $java ]] || die "java binary $java is not executable"
	local spec
	spec=$("$java" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ { print $2; exit }')
	[[ $spec =~ ^[0-9]+$ ]] || die "cannot tell the version of $java (java.specification.version=\"$spec\")"
	((spec >= 17)) || die "Kafka $KAFKA_VERSION needs Java 17+, $java is Java $spec (set FOODPIPE_TESTBED_JAVA)"
	JAVA=$java
}

find_pg_bin() {
	local bin=${FOODPIPE_TESTBED_PG_BIN:-}
	if [[ -z $bin ]]; then
		if [[ -x /usr/lib/postgresql/15/bin/initdb ]]; then
			bin=/usr/lib/postgresql/15/bin
		elif command -v pg_config >/dev/null && [[ -x "$(pg_config --bindir)/initdb" ]]; then
			bin=$(pg_config --bindir)
		elif command -v initdb >/dev/null; then
			bin=$(dirname "$(command -v initdb)")
		else
			die "PostgreSQL server binaries not found: install postgresql-15 or set FOODPIPE_TESTBED_PG_BIN"
		fi
	fi
	local b
	for b in initdb pg_ctl pg_isready psql postgres; do
		[[ -x $bin/$b ]] || die "$bin/$b not found (FOODPIPE_TESTBED_PG_BIN=$bin)"
	done
	PG_BIN=$bin
}

# Run a PostgreSQL command as the cluster owner: initdb and postgres refuse
# to run as root. Runs from PG_DIR so the postgres user has a readable cwd.
as_pg() {
	if ((EUID == 0)); then
		(cd "$PG_DIR" && runuser -u "$PG_OS_USER" -- "$@")
	else
		(cd "$PG_DIR" && "$@")
	fi
}

# Only listening sockets count: leftover TIME_WAIT connections on a port do not
# stop PostgreSQL or Kafka (both use SO_REUSEADDR) from listening on it again.
port_in_use() {
	local port=$1
	if command -v ss >/dev/null; then
		[[ -n $(ss -Htln "sport = :$port" 2>/dev/null) ]] && return 0
	fi
	# Something accepting connections?
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
	return 1
}

# Print a free TCP port on 127.0.0.1, not in $*, below the Linux ephemeral range
# (32768-60999) so outgoing connections never take it.
free_port() {
	local port tries=0 taken
	while ((tries < 200)); do
		tries=$((tries + 1))
		port=$((20000 + RANDOM % 12000))
		for taken in "$@"; do
			[[ $port == "$taken" ]] && continue 2
		done
		port_in_use "$port" || {
			echo "$port"
			return 0
		}
	done
	die "no free TCP port found on 127.0.0.1"
}

# pick_port keeps port $1 when it is set and free (a broker started again
# keeps its addresses), else probes for a free one not in the rest of $*.
pick_port() {
	local current=$1
	shift
	if [[ -n $current ]] && ! port_in_use "$current"; then
		echo "$current"
		return 0
	fi
	free_port "$@"
}

# n random bytes as hex: passwords that need no quoting anywhere.
rand_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

# A Kafka cluster id is 16 random bytes in URL-safe base64 without padding.
# Like Kafka's own Uuid.randomUuid, draw again when it starts with '-':
# command-line parsers (kafka-storage's among them) take such an id for an
# option, about one id in 64.
new_cluster_id() {
	local id
	while :; do
		id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
		[[ $id == -* ]] || break
	done
	echo "$id"
}

load_state() {
	[[ -f $STATE_FILE ]] || return 1
	local key value
	while IFS='=' read -r key value; do
		case $key in
		KAFKA_PORT) KAFKA_PORT=$value ;;
		CONTROLLER_PORT) CONTROLLER_PORT=$value ;;
		PG_PORT) PG_PORT=$value ;;
		SASL_PORT) SASL_PORT=$value ;;
		MTLS_PORT) MTLS_PORT=$value ;;
		PLAIN_PASSWORD) PLAIN_PASSWORD=$value ;;
		SCRAM256_PASSWORD) SCRAM256_PASSWORD=$value ;;
		SCRAM512_PASSWORD) SCRAM512_PASSWORD=$value ;;
		esac
	done <"$STATE_FILE"
	return 0
}

save_state() {
	cat >"$STATE_FILE.tmp" <<EOF
KAFKA_PORT=$KAFKA_PORT
CONTROLLER_PORT=$CONTROLLER_PORT
PG_PORT=$PG_PORT
SASL_PORT=$SASL_PORT
MTLS_PORT=$MTLS_PORT
PLAIN_PASSWORD=$PLAIN_PASSWORD
SCRAM256_PASSWORD=$SCRAM256_PASSWORD
SCRAM512_PASSWORD=$SCRAM512_PASSWORD
EOF
	mv "$STATE_FILE.tmp" "$STATE_FILE"
}

# Serialize up/down/pg-stop/pg-start on one run dir.
lock_run_dir() {
	mkdir -p "$RUN_DIR"
	if [[ ! -f $MARKER_FILE ]]; then
		if [[ -n $(ls -A "$RUN_DIR") ]]; then
			die "$RUN_DIR exists, is not empty and is not a test bed run dir; refusing to use it"
		fi
		echo "foodpipe test bed run dir, made by $SCRIPT_PATH" >"$MARKER_FILE"
	fi
	chmod 755 "$RUN_DIR"
	exec 9>"$RUN_DIR/.lock"
	flock -w 300 9 || die "another testbed.sh holds $RUN_DIR/.lock"
}

# ---------------------------------------------------------------- certificates

# ensure_tls makes, once per run dir, the test bed's own CA and what it signs:
# one server certificate for the broker and PostgreSQL (SAN IP:127.0.0.1 and
# DNS:localhost, so clients can verify the host) and one client certificate
# for the mutual-TLS listener. Keys are unencrypted PKCS#8, which Kafka's PEM
# keystore, Go and PostgreSQL all read.
ensure_tls() {
	[[ -f $TLS_DIR/.complete ]] && return 0
	command -v openssl >/dev/null || die "openssl not found: install it (apt-get install openssl) for the TLS listeners"
	rm -rf "$TLS_DIR"
	mkdir -p "$TLS_DIR"
	if ! (
		set -e
		cd "$TLS_DIR"
		ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
		openssl req -x509 "${ec[@]}" -days 3650 -subj "/CN=foodpipe test bed CA" \
			-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
			-keyout ca.key -out ca.pem
		sign() { # name subject extensions
			openssl req -new "${ec[@]}" -subj "$2" -keyout "$1.key" -out "$1.csr"
			printf '%s\n' "$3" "keyUsage=critical,digitalSignature" >"$1.ext"
			openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
				-extfile "$1.ext" -out "$1.pem"
			rm -f "$1.csr" "$1.ext"
		}
		sign server "/CN=localhost" "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth"
		sign client "/CN=foodpipe-client" "extendedKeyUsage=clientAuth"
		# Kafka's PEM keystore file: the private key, then the certificate chain.
		cat server.key server.pem ca.pem >broker-keystore.pem
		chmod 600 ./*.key broker-keystore.pem
	) >"$TLS_DIR/openssl.log" 2>&1; then
		cat "$TLS_DIR/openssl.log" >&2
		die "making the test bed's certificates with openssl failed"
	fi
	touch "$TLS_DIR/.complete"
}

# ---------------------------------------------------------------- Kafka jars

kafka_libs_stamp() {
	printf 'kafka.version=%s pom.sha256=%s\n' "$KAFKA_VERSION" "$(sha256sum "$KAFKA_CONF_DIR/pom.xml" | cut -d' ' -f1)"
}

ensure_kafka_libs() {
	local stamp
	stamp=$(kafka_libs_stamp)
	if [[ -f $KAFKA_LIBS/.complete && "$(cat "$KAFKA_LIBS/.complete")" == "$stamp" ]]; then
		return 0
	fi
	command -v mvn >/dev/null || die "mvn not found: install Maven (apt-get install maven) to fetch the Kafka jars"
	local t0 tmp mvn_log
	t0=$(now)
	mkdir -p "$(dirname "$KAFKA_LIBS")"
	tmp="$KAFKA_LIBS.tmp.$$"
	mvn_log="$(dirname "$KAFKA_LIBS")/mvn.log"
	rm -rf "$tmp"
	local -a cmd=(mvn -B -q -Dstyle.color=never -f "$KAFKA_CONF_DIR/pom.xml" "-Dkafka.version=$KAFKA_VERSION"
		dependency:copy-dependencies "-DoutputDirectory=$tmp" "-DincludeScope=runtime")
	if [[ -n ${FOODPIPE_TESTBED_MVN_ARGS:-} ]]; then
		local -a extra
		read -r -a extra <<<"$FOODPIPE_TESTBED_MVN_ARGS"
		cmd+=("${extra[@]}")
	fi
	log "downloading Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_LIBS ..."
	if ! "${cmd[@]}" >"$mvn_log" 2>&1; then
		rm -rf "$tmp"
		{
			echo "testbed: error: fetching the Kafka jars failed. Command:"
			printf '  '
			printf '%q ' "${cmd[@]}"
			echo
			echo "testbed: mvn output (also in $mvn_log):"
			tail -n 40 "$mvn_log"
		} >&2
		exit 1
	fi
	local jar
	for jar in "kafka_2.13-$KAFKA_VERSION.jar" "kafka-tools-$KAFKA_VERSION.jar" "kafka-clients-$KAFKA_VERSION.jar" \
		"kafka-server-$KAFKA_VERSION.jar" "kafka-storage-$KAFKA_VERSION.jar"; do
		[[ -f $tmp/$jar ]] || die "mvn finished but $jar is missing from $tmp (see $mvn_log)"
	done
	compgen -G "$tmp/log4j-core-*.jar" >/dev/null || die "mvn finished but log4j-core is missing (see $mvn_log)"
	compgen -G "$tmp/log4j-slf4j-impl-*.jar" >/dev/null || die "mvn finished but log4j-slf4j-impl is missing (see $mvn_log)"
	echo "$stamp" >"$tmp/.complete"
	rm -rf "$KAFKA_LIBS"
	mv "$tmp" "$KAFKA_LIBS"
	log "Kafka $KAFKA_VERSION jars ready ($(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars) in $(elapsed "$t0")"
}

# ---------------------------------------------------------------- Kafka broker

kafka_pid() {
	local pid
	[[ -f $KAFKA_PID_FILE ]] || return 1
	pid=$(<"$KAFKA_PID_FILE")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[[ -r /proc/$pid/cmdline ]] || return 1
	# Make sure the pid is still our broker, not a recycled pid.
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "kafka.Kafka $KAFKA_PROPS" || return 1
	echo "$pid"
}

kafka_running() { kafka_pid >/dev/null; }

kafka_log_tail() {
	local f
	for f in "$KAFKA_LOG_DIR/server.log" "$KAFKA_LOG_DIR/kafka.out" "$KAFKA_LOG_DIR/probe.err"; do
		if [[ -s $f ]]; then
			echo "----- last lines of $f -----" >&2
			tail -n 30 "$f" >&2
		fi
	done
}

# exec: the tool's exit status and signals pass straight through.
exec_java_tool() {
	local class=$1
	shift
	local -a opts
	read -r -a opts <<<"${FOODPIPE_TESTBED_TOOL_OPTS:--Xmx512m}"
	exec "$JAVA" "${opts[@]}" -XX:+UseG1GC -Djava.awt.headless=true \
		"-Dlog4j2.configurationFile=$KAFKA_CONF_DIR/tools-log4j2.properties" \
		-cp "$KAFKA_CLASSPATH" "$class" "$@"
}

# Print the log tails, stop a half-started broker (so the next `up` starts
# afresh) and fail.
kafka_start_failed() {
	kafka_log_tail
	stop_kafka >/dev/null 2>&1 || true
	die "$1 (logs in $KAFKA_LOG_DIR)"
}

write_kafka_props() {
	cat >"$KAFKA_PROPS" <<EOF
# Written by scripts/testbed.sh: a single-node KRaft test cluster on 127.0.0.1.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT,SASL_SSL://127.0.0.1:$SASL_PORT,SSL://127.0.0.1:$MTLS_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_SSL://127.0.0.1:$SASL_PORT,SSL://127.0.0.1:$MTLS_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL
log.dirs=$KAFKA_DIR/data

# The secured listeners, for the TLS and SASL tests (everything else uses
# PLAINTEXT). Certificates come from the test bed's CA in $TLS_DIR, as PEM
# files: no keytool, no keystore passwords.
ssl.keystore.type=PEM
ssl.keystore.location=$TLS_DIR/broker-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$TLS_DIR/ca.pem
# SSL: mutual TLS, a client certificate signed by the CA is required.
listener.name.ssl.ssl.client.auth=required
# SASL_SSL: PLAIN users are listed here; SCRAM users are stored in the
# cluster metadata, created when the storage is formatted (--add-scram).
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$PLAIN_USER="$PLAIN_PASSWORD";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;

# One node: every internal topic has replication factor 1.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
default.replication.factor=1
min.insync.replicas=1
# Fewer partitions for __consumer_offsets / __transaction_state than the default 50:
# the first group join and first transaction are much quicker on a small machine.
offsets.topic.num.partitions=10
transaction.state.log.num.partitions=10

# Consumers join at once instead of waiting 3 s for more members.
group.initial.rebalance.delay.ms=0
# Tests and "foodpipe topics init" create their topics explicitly.
auto.create.topics.enable=false
num.partitions=3
delete.topic.enable=true
EOF
}

start_kafka() {
	local t0
	t0=$(now)
	rm -rf "$KAFKA_DIR"
	mkdir -p "$KAFKA_DIR/data" "$KAFKA_LOG_DIR"
	KAFKA_PORT=${FOODPIPE_TESTBED_KAFKA_PORT:-$(pick_port "$KAFKA_PORT" "$PG_PORT")}
	CONTROLLER_PORT=${FOODPIPE_TESTBED_CONTROLLER_PORT:-$(pick_port "$CONTROLLER_PORT" "$PG_PORT" "$KAFKA_PORT")}
	SASL_PORT=${FOODPIPE_TESTBED_SASL_PORT:-$(pick_port "$SASL_PORT" "$PG_PORT" "$KAFKA_PORT" "$CONTROLLER_PORT")}
	MTLS_PORT=${FOODPIPE_TESTBED_MTLS_PORT:-$(pick_port "$MTLS_PORT" "$PG_PORT" "$KAFKA_PORT" "$CONTROLLER_PORT" "$SASL_PORT")}
	port_in_use "$KAFKA_PORT" && die "Kafka port 127.0.0.1:$KAFKA_PORT is already in use"
	port_in_use "$CONTROLLER_PORT" && die "Kafka controller port 127.0.0.1:$CONTROLLER_PORT is already in use"
	port_in_use "$SASL_PORT" && die "Kafka SASL_SSL port 127.0.0.1:$SASL_PORT is already in use"
	port_in_use "$MTLS_PORT" && die "Kafka SSL port 127.0.0.1:$MTLS_PORT is already in use"
	PLAIN_PASSWORD=$(rand_hex 12)
	SCRAM256_PASSWORD=$(rand_hex 12)
	SCRAM512_PASSWORD=$(rand_hex 12)
	save_state
	write_kafka_props

	local cluster_id=${FOODPIPE_TESTBED_CLUSTER_ID:-$(new_cluster_id)}
	log "formatting Kafka storage (cluster id $cluster_id) ..."
	# --cluster-id=ID, not --cluster-id ID: a (given) id that starts with
	# '-' would be taken for an option.
	if ! "$JAVA" -Xmx256m "-Dlog4j2.configurationFile=$KAFKA_CONF_DIR/tools-log4j2.properties" \
		-cp "$KAFKA_CLASSPATH" kafka.tools.StorageTool format \
		--config "$KAFKA_PROPS" "--cluster-id=$cluster_id" \
		--add-scram "SCRAM-SHA-256=[name=$SCRAM256_USER,password=$SCRAM256_PASSWORD]" \
		--add-scram "SCRAM-SHA-512=[name=$SCRAM512_USER,password=$SCRAM512_PASSWORD]" \
		>"$KAFKA_LOG_DIR/format.log" 2>&1; then
		cat "$KAFKA_LOG_DIR/format.log" >&2
		die "kafka.tools.StorageTool format failed"
	fi
	launch_kafka
	log "Kafka ready on 127.0.0.1:$KAFKA_PORT, SASL_SSL 127.0.0.1:$SASL_PORT, SSL 127.0.0.1:$MTLS_PORT (pid $(kafka_pid)) in $(elapsed "$t0")"
}

# kafka_secured: the broker's configuration has the secured listeners (a
# broker started by an older testbed.sh has only PLAINTEXT).
kafka_secured() { grep -q '^listeners=.*SASL_SSL://' "$KAFKA_PROPS" 2>/dev/null; }

# launch_kafka starts the broker on its formatted storage and waits until it
# answers metadata requests: used by `up` and, on the same data and ports,
# by `kafka-start` after `kafka-stop`.
launch_kafka() {
	local -a heap
	read -r -a heap <<<"${FOODPIPE_TESTBED_KAFKA_HEAP:--Xms512m -Xmx1g}"
	log "starting Kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT (controller 127.0.0.1:$CONTROLLER_PORT) ..."
	# setsid: the broker must outlive this script and its terminal;
	# 9>&-: it must not inherit the run dir lock.
	setsid "$JAVA" "${heap[@]}" \
		-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
		-XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
		"-Xlog:gc*:file=$KAFKA_LOG_DIR/gc.log:time,tags:filecount=4,filesize=20M" \
		"-Dkafka.logs.dir=$KAFKA_LOG_DIR" \
		"-Dlog4j2.configurationFile=$KAFKA_CONF_DIR/log4j2.properties" \
		-cp "$KAFKA_CLASSPATH" kafka.Kafka "$KAFKA_PROPS" \
		</dev/null >"$KAFKA_LOG_DIR/kafka.out" 2>&1 9>&- &
	echo $! >"$KAFKA_PID_FILE"
	sleep 0.5
	kafka_running || kafka_start_failed "the Kafka broker exited right after starting"

	# Wait until the broker answers metadata requests (the admin client retries
	# until the broker has registered with the controller and is unfenced).
	local deadline=$((SECONDS + KAFKA_TIMEOUT)) left
	while :; do
		kafka_running || kafka_start_failed "the Kafka broker died while starting"
		left=$((deadline - SECONDS))
		((left > 0)) ||
			kafka_start_failed "Kafka did not answer metadata requests on 127.0.0.1:$KAFKA_PORT within ${KAFKA_TIMEOUT}s"
		if (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null &&
			timeout "$left" "$JAVA" -Xmx256m "-Dlog4j2.configurationFile=$KAFKA_CONF_DIR/tools-log4j2.properties" \
				-cp "$KAFKA_CLASSPATH" org.apache.kafka.tools.TopicCommand \
				--bootstrap-server "127.0.0.1:$KAFKA_PORT" --list >/dev/null 2>"$KAFKA_LOG_DIR/probe.err"; then
			break
		fi
		sleep 1
	done
}

stop_kafka() {
	local pid
	if ! pid=$(kafka_pid); then
		rm -f "$KAFKA_PID_FILE"
		return 0
	fi
	log "stopping Kafka (pid $pid) ..."
	kill -TERM "$pid" 2>/dev/null || true
	local i
	for ((i = 0; i < 600; i++)); do
		[[ -d /proc/$pid ]] || break
		sleep 0.1
	done
	if [[ -d /proc/$pid ]]; then
		log "Kafka did not stop within 60s of SIGTERM, sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			[[ -d /proc/$pid ]] || break
			sleep 0.1
		done
	fi
	[[ -d /proc/$pid ]] && die "Kafka (pid $pid) is still running"
	rm -f "$KAFKA_PID_FILE"
	log "Kafka stopped"
}

# ---------------------------------------------------------------- PostgreSQL

pg_initialized() { [[ -f $PGDATA_DIR/PG_VERSION ]]; }

pg_running() {
	pg_initialized || return 1
	as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1
}

pg_log_tail() {
	if [[ -s $PG_LOG ]]; then
		echo "----- last lines of $PG_LOG -----" >&2
		tail -n 30 "$PG_LOG" >&2
	fi
}

# pg_user_can_enter_run_dir: as root, PostgreSQL runs as PG_OS_USER, which
# must be able to traverse every directory above its data. A run dir under a
# private (0700) directory, such as Go's t.TempDir(), would otherwise make
# initdb fail with a bare "Permission denied".
pg_user_can_enter_run_dir() {
	((EUID == 0)) || return 0
	local abs dir="" part
	abs=$(realpath -m -- "$PG_DIR")
	local -a parts
	IFS=/ read -r -a parts <<<"${abs#/}"
	for part in "${parts[@]}"; do
		dir+="/$part"
		[[ -d $dir ]] || break
		runuser -u "$PG_OS_USER" -- test -x "$dir" ||
			die "PostgreSQL runs as user $PG_OS_USER, who cannot enter $dir (mode $(stat -c %a "$dir"), owner $(stat -c %U "$dir")): choose a FOODPIPE_TESTBED_DIR whose parent directories $PG_OS_USER can enter, or: chmod o+x $dir"
	done
}

init_pg() {
	local t0
	t0=$(now)
	if ((EUID == 0)); then
		id "$PG_OS_USER" >/dev/null 2>&1 ||
			die "user $PG_OS_USER does not exist (initdb refuses root; set FOODPIPE_TESTBED_PG_OS_USER)"
	fi
	rm -rf "$PG_DIR"
	mkdir -p "$PG_DIR"
	pg_user_can_enter_run_dir
	if ((EUID == 0)); then
		chown "$PG_OS_USER:" "$PG_DIR"
	fi
	chmod 700 "$PG_DIR"
	PG_PORT=${FOODPIPE_TESTBED_PG_PORT:-$(free_port "$KAFKA_PORT" "$CONTROLLER_PORT")}
	port_in_use "$PG_PORT" && die "PostgreSQL port 127.0.0.1:$PG_PORT is already in use"
	save_state
	log "initdb $PGDATA_DIR ..."
	if ! as_pg "$PG_BIN/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust --encoding=UTF8 --no-locale \
		>"$PG_DIR/initdb.log" 2>&1; then
		cat "$PG_DIR/initdb.log" >&2
		die "initdb failed"
	fi
	# The Unix socket lives in the run dir; socket paths are limited to ~107 bytes.
	local socket_dir=$PG_DIR
	((${#PG_DIR} > 90)) && socket_dir=""
	cat >>"$PGDATA_DIR/postgresql.conf" <<EOF

# ---- foodpipe test bed (scripts/testbed.sh) ----
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$socket_dir'
max_connections = 200
shared_buffers = 256MB
# Durability stays exactly as in production (fsync, synchronous_commit and
# full_page_writes on) so benchmark numbers for the exactly-once sink are honest:
# every committed batch really reaches the disk. Only the WAL budget is raised so
# that benchmarks are not dominated by forced checkpoints.
fsync = on
synchronous_commit = on
full_page_writes = on
max_wal_size = 2GB
timezone = 'UTC'
log_timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
EOF
	configure_pg_tls
	configure_pg_commit_times
	log "PostgreSQL cluster initialized in $(elapsed "$t0")"
}

# configure_pg_commit_times keeps every transaction's commit time, so that
# bench e2e can measure latency to the commit that made a row visible
# (pg_xact_commit_timestamp). It costs a few bytes per transaction. A
# cluster made by an older test bed gets it on its next start.
configure_pg_commit_times() {
	grep -q "^track_commit_timestamp = on" "$PGDATA_DIR/postgresql.conf" 2>/dev/null && return 0
	cat >>"$PGDATA_DIR/postgresql.conf" <<EOF

# ---- foodpipe test bed: commit times for bench e2e (scripts/testbed.sh) ----
track_commit_timestamp = on
EOF
}

pg_tls_configured() { grep -q "^ssl = on" "$PGDATA_DIR/postgresql.conf" 2>/dev/null; }

# configure_pg_tls lets PostgreSQL accept TLS with the test bed's server
# certificate, for clients that verify it (sslmode=verify-full); plain
# connections keep working (pg_hba's "host" lines match both). The key must
# belong to the server's user and be private, or postgres refuses it.
configure_pg_tls() {
	pg_tls_configured && return 0
	cp "$TLS_DIR/server.pem" "$PGDATA_DIR/server.crt"
	cp "$TLS_DIR/server.key" "$PGDATA_DIR/server.key"
	if ((EUID == 0)); then
		chown "$PG_OS_USER:" "$PGDATA_DIR/server.crt" "$PGDATA_DIR/server.key"
	fi
	chmod 600 "$PGDATA_DIR/server.key"
	cat >>"$PGDATA_DIR/postgresql.conf" <<EOF

# ---- foodpipe test bed: TLS (scripts/testbed.sh) ----
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
ssl_min_protocol_version = 'TLSv1.2'
EOF
}

start_pg() {
	local t0
	t0=$(now)
	port_in_use "$PG_PORT" && die "PostgreSQL port 127.0.0.1:$PG_PORT is already in use"
	configure_pg_commit_times
	log "starting PostgreSQL on 127.0.0.1:$PG_PORT ..."
	# 9>&-: the server must not inherit the run dir lock.
	if ! as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$PG_LOG" -w -t 60 start >/dev/null 2>"$PG_DIR/pg_ctl.err" 9>&-; then
		cat "$PG_DIR/pg_ctl.err" >&2
		pg_log_tail
		die "pg_ctl start failed"
	fi
	local i
	for ((i = 0; i < 60; i++)); do
		"$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2 && break
		sleep 0.5
	done
	"$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 5 || {
		pg_log_tail
		die "PostgreSQL is not ready on 127.0.0.1:$PG_PORT"
	}
	local exists
	exists=$("$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -At \
		-c "select 1 from pg_database where datname = 'foodpipe'")
	if [[ $exists != 1 ]]; then
		"$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c 'create database foodpipe' >/dev/null
	fi
	log "PostgreSQL ready on 127.0.0.1:$PG_PORT in $(elapsed "$t0")"
}

stop_pg() {
	pg_running || return 0
	log "stopping PostgreSQL ..."
	if ! as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w -t 60 stop >/dev/null 2>"$PG_DIR/pg_ctl.err"; then
		cat "$PG_DIR/pg_ctl.err" >&2
		log "fast shutdown failed, trying immediate"
		as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
	fi
	pg_running && die "PostgreSQL is still running (PGDATA $PGDATA_DIR)"
	log "PostgreSQL stopped"
}

# ---------------------------------------------------------------- commands

cmd_up() {
	local t0
	t0=$(now)
	find_java
	find_pg_bin
	lock_run_dir
	ensure_kafka_libs
	load_state || true

	ensure_tls

	if pg_running; then
		log "PostgreSQL already running on 127.0.0.1:$PG_PORT, keeping it"
		if ! pg_tls_configured; then
			# TLS settings take effect on reload: no client is disconnected.
			log "PostgreSQL was started by an older testbed.sh without TLS; turning TLS on (reload)"
			configure_pg_tls
			as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" reload >/dev/null
		fi
	elif pg_initialized && [[ -n $PG_PORT ]]; then
		log "PostgreSQL cluster exists but is stopped, starting it"
		configure_pg_tls
		start_pg
	else
		init_pg
		start_pg
	fi

	if kafka_running && ! kafka_secured; then
		log "Kafka was started by an older testbed.sh without the SASL_SSL and SSL listeners; restarting it (same ports, fresh storage)"
		stop_kafka
	fi
	if kafka_running; then
		log "Kafka already running on 127.0.0.1:$KAFKA_PORT (pid $(kafka_pid)), keeping it"
	else
		start_kafka
	fi
	log "test bed up in $(elapsed "$t0"); use:  eval \"\$($SCRIPT_PATH env)\""
}

cmd_down() {
	if [[ ! -d $RUN_DIR ]]; then
		log "nothing to do: $RUN_DIR does not exist"
		return 0
	fi
	[[ -f $MARKER_FILE ]] || die "$RUN_DIR is not a test bed run dir (no $MARKER_FILE); not touching it"
	lock_run_dir
	stop_kafka
	if pg_initialized; then
		find_pg_bin
		stop_pg
	fi
	rm -rf "$RUN_DIR"
	log "test bed down, $RUN_DIR removed"
}

cmd_env() {
	load_state || die "test bed is not up (no $STATE_FILE); run: $SCRIPT_PATH up"
	kafka_running || die "Kafka is not running; run: $SCRIPT_PATH up"
	find_pg_bin
	pg_initialized || die "PostgreSQL is not initialized; run: $SCRIPT_PATH up"
	echo "export FOODPIPE_TEST_BROKERS=127.0.0.1:$KAFKA_PORT FOODPIPE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$PG_PORT/foodpipe?sslmode=disable"
	if kafka_secured && pg_tls_configured; then
		echo "export FOODPIPE_TEST_SASL_BROKERS=127.0.0.1:$SASL_PORT FOODPIPE_TEST_MTLS_BROKERS=127.0.0.1:$MTLS_PORT" \
			"FOODPIPE_TEST_TLS_CA=$(shquote "$TLS_DIR/ca.pem")" \
			"FOODPIPE_TEST_TLS_CLIENT_CERT=$(shquote "$TLS_DIR/client.pem")" \
			"FOODPIPE_TEST_TLS_CLIENT_KEY=$(shquote "$TLS_DIR/client.key")" \
			"FOODPIPE_TEST_DATABASE_TLS_URL=$(shquote "postgres://postgres@127.0.0.1:$PG_PORT/foodpipe?sslmode=verify-full&sslrootcert=$TLS_DIR/ca.pem")"
		echo "export FOODPIPE_TEST_SASL_PLAIN_USER=$PLAIN_USER FOODPIPE_TEST_SASL_PLAIN_PASSWORD=$PLAIN_PASSWORD" \
			"FOODPIPE_TEST_SASL_SCRAM_SHA_256_USER=$SCRAM256_USER FOODPIPE_TEST_SASL_SCRAM_SHA_256_PASSWORD=$SCRAM256_PASSWORD" \
			"FOODPIPE_TEST_SASL_SCRAM_SHA_512_USER=$SCRAM512_USER FOODPIPE_TEST_SASL_SCRAM_SHA_512_PASSWORD=$SCRAM512_PASSWORD"
	fi
	echo "export FOODPIPE_TESTBED_SCRIPT=$(shquote "$SCRIPT_PATH")"
	echo "export FOODPIPE_TESTBED_DIR=$(shquote "$RUN_DIR")"
	echo "export FOODPIPE_TESTBED_KAFKA_VERSION=$(shquote "$KAFKA_VERSION")"
	echo "export FOODPIPE_TESTBED_KAFKA_CLASSPATH=$(shquote "$KAFKA_CLASSPATH")"
	echo "export FOODPIPE_TESTBED_KAFKA_LOG=$(shquote "$KAFKA_LOG_DIR/server.log")"
	echo "export FOODPIPE_TESTBED_PG_BIN=$(shquote "$PG_BIN")"
	echo "export FOODPIPE_TESTBED_PGDATA=$(shquote "$PGDATA_DIR")"
	echo "export FOODPIPE_TESTBED_PG_LOG=$(shquote "$PG_LOG")"
}

cmd_status() {
	local ok=0
	load_state || true
	if kafka_running; then
		echo "kafka:    running  pid $(kafka_pid)  127.0.0.1:$KAFKA_PORT (controller 127.0.0.1:$CONTROLLER_PORT, SASL_SSL 127.0.0.1:${SASL_PORT:-none}, SSL 127.0.0.1:${MTLS_PORT:-none})  version $KAFKA_VERSION"
	else
		echo "kafka:    stopped"
		ok=1
	fi
	if [[ -d $PG_DIR ]] && pg_initialized; then
		find_pg_bin
		if pg_running; then
			echo "postgres: running  pid $(head -n 1 "$PGDATA_DIR/postmaster.pid")  127.0.0.1:$PG_PORT  data $PGDATA_DIR"
		else
			echo "postgres: stopped  127.0.0.1:$PG_PORT  data $PGDATA_DIR (kept; pg-start starts it)"
			ok=1
		fi
	else
		echo "postgres: not initialized"
		ok=1
	fi
	echo "run dir:  $RUN_DIR"
	return "$ok"
}

cmd_pg_stop() {
	find_pg_bin
	load_state || die "test bed is not up (no $STATE_FILE)"
	pg_initialized || die "no PostgreSQL cluster in $PGDATA_DIR"
	lock_run_dir
	if ! pg_running; then
		log "PostgreSQL is already stopped"
		return 0
	fi
	stop_pg
}

cmd_pg_start() {
	find_pg_bin
	load_state || die "test bed is not up (no $STATE_FILE)"
	pg_initialized || die "no PostgreSQL cluster in $PGDATA_DIR; run: $SCRIPT_PATH up"
	[[ -n $PG_PORT ]] || die "no PostgreSQL port in $STATE_FILE"
	lock_run_dir
	if pg_running; then
		log "PostgreSQL is already running on 127.0.0.1:$PG_PORT"
		return 0
	fi
	start_pg
}

cmd_kafka_stop() {
	load_state || die "test bed is not up (no $STATE_FILE)"
	lock_run_dir
	if ! kafka_running; then
		log "Kafka is already stopped"
		return 0
	fi
	stop_kafka
}

cmd_kafka_start() {
	find_java
	load_state || die "test bed is not up (no $STATE_FILE)"
	[[ -f $KAFKA_PROPS && -n $KAFKA_PORT ]] || die "no Kafka broker in $KAFKA_DIR; run: $SCRIPT_PATH up"
	lock_run_dir
	ensure_kafka_libs
	if kafka_running; then
		log "Kafka is already running on 127.0.0.1:$KAFKA_PORT"
		return 0
	fi
	local t0
	t0=$(now)
	log "starting Kafka again on 127.0.0.1:$KAFKA_PORT ..."
	launch_kafka
	log "Kafka ready on 127.0.0.1:$KAFKA_PORT (pid $(kafka_pid)) in $(elapsed "$t0")"
}

cmd_kafka_run() {
	(($# >= 1)) || die "usage: $SCRIPT_PATH kafka-run CLASS [ARGS...]"
	find_java
	ensure_kafka_libs
	exec_java_tool "$@"
}

main() {
	local sub=${1:-help}
	(($# > 0)) && shift
	case $sub in
	up) cmd_up ;;
	down) cmd_down ;;
	env) cmd_env ;;
	status) cmd_status ;;
	pg-stop) cmd_pg_stop ;;
	pg-start) cmd_pg_start ;;
	kafka-stop) cmd_kafka_stop ;;
	kafka-start) cmd_kafka_start ;;
	kafka-run) cmd_kafka_run "$@" ;;
	help | -h | --help) usage ;;
	*)
		usage >&2
		die "unknown command: $sub"
		;;
	esac
}

main "$@"
