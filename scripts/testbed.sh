#!/usr/bin/env bash
# The foodpipe test bed: one Apache Kafka broker (KRaft, combined broker +
# controller) and one throwaway PostgreSQL cluster, both on 127.0.0.1, no Docker.
# Run `scripts/testbed.sh help` for usage.
set -euo pipefail

readonly KAFKA_VERSION_DEFAULT=4.1.1

usage() {
	cat <<'EOF'
usage: scripts/testbed.sh COMMAND [ARGS...]

Commands:
  up                  start Kafka and PostgreSQL (downloads Kafka jars on first use);
                      running services are detected and kept, so `up` twice is harmless
  down                stop both services and remove the run dir (data, logs, state)
  env                 print shell exports for the tests, use as:  eval "$(scripts/testbed.sh env)"
                        line 1: export FOODPIPE_TEST_BROKERS=... FOODPIPE_TEST_DATABASE_URL=...
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
  FOODPIPE_TESTBED_KAFKA_PORT, FOODPIPE_TESTBED_CONTROLLER_PORT, FOODPIPE_TESTBED_PG_PORT
                                  fixed ports (default: free ports found by probing)
  FOODPIPE_TESTBED_PG_BIN         PostgreSQL bin dir                 (/usr/lib/postgresql/15/bin)
  FOODPIPE_TESTBED_PG_OS_USER     OS user running PostgreSQL when invoked as root (postgres)

Everything listens on 127.0.0.1 only. Messages go to stderr; `env` and `status`
write to stdout.
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

# Filled from the state file (or chosen by `up`).
KAFKA_PORT=""
CONTROLLER_PORT=""
PG_PORT=""

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

load_state() {
	[[ -f $STATE_FILE ]] || return 1
	local key value
	while IFS='=' read -r key value; do
		case $key in
		KAFKA_PORT) KAFKA_PORT=$value ;;
		CONTROLLER_PORT) CONTROLLER_PORT=$value ;;
		PG_PORT) PG_PORT=$value ;;
		esac
	done <"$STATE_FILE"
	return 0
}

save_state() {
	cat >"$STATE_FILE.tmp" <<EOF
KAFKA_PORT=$KAFKA_PORT
CONTROLLER_PORT=$CONTROLLER_PORT
PG_PORT=$PG_PORT
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
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DIR/data

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
	KAFKA_PORT=${FOODPIPE_TESTBED_KAFKA_PORT:-$(free_port "$PG_PORT")}
	CONTROLLER_PORT=${FOODPIPE_TESTBED_CONTROLLER_PORT:-$(free_port "$PG_PORT" "$KAFKA_PORT")}
	port_in_use "$KAFKA_PORT" && die "Kafka port 127.0.0.1:$KAFKA_PORT is already in use"
	port_in_use "$CONTROLLER_PORT" && die "Kafka controller port 127.0.0.1:$CONTROLLER_PORT is already in use"
	save_state
	write_kafka_props

	# A Kafka cluster id is 16 random bytes in URL-safe base64 without padding.
	local cluster_id
	cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
	log "formatting Kafka storage (cluster id $cluster_id) ..."
	if ! "$JAVA" -Xmx256m "-Dlog4j2.configurationFile=$KAFKA_CONF_DIR/tools-log4j2.properties" \
		-cp "$KAFKA_CLASSPATH" kafka.tools.StorageTool format \
		--config "$KAFKA_PROPS" --cluster-id "$cluster_id" >"$KAFKA_LOG_DIR/format.log" 2>&1; then
		cat "$KAFKA_LOG_DIR/format.log" >&2
		die "kafka.tools.StorageTool format failed"
	fi
	launch_kafka
	log "Kafka ready on 127.0.0.1:$KAFKA_PORT (pid $(kafka_pid)) in $(elapsed "$t0")"
}

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

init_pg() {
	local t0
	t0=$(now)
	rm -rf "$PG_DIR"
	mkdir -p "$PG_DIR"
	if ((EUID == 0)); then
		id "$PG_OS_USER" >/dev/null 2>&1 ||
			die "user $PG_OS_USER does not exist (initdb refuses root; set FOODPIPE_TESTBED_PG_OS_USER)"
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
	log "PostgreSQL cluster initialized in $(elapsed "$t0")"
}

start_pg() {
	local t0
	t0=$(now)
	port_in_use "$PG_PORT" && die "PostgreSQL port 127.0.0.1:$PG_PORT is already in use"
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

	if pg_running; then
		log "PostgreSQL already running on 127.0.0.1:$PG_PORT, keeping it"
	elif pg_initialized && [[ -n $PG_PORT ]]; then
		log "PostgreSQL cluster exists but is stopped, starting it"
		start_pg
	else
		init_pg
		start_pg
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
		echo "kafka:    running  pid $(kafka_pid)  127.0.0.1:$KAFKA_PORT (controller 127.0.0.1:$CONTROLLER_PORT)  version $KAFKA_VERSION"
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
