#!/usr/bin/env bash
# demo-check.sh: run `foodpipe demo` the way a new user does — a plain build,
# an ordinary (non-root) user with a HOME of its own and an empty cache —
# twice: the first run downloads PostgreSQL into the cache, the second must
# start from the cache with no network at all. The first run is two demos,
# as a user who opens two terminals would run them: the second starts while
# the first is extracting PostgreSQL into the shared, empty cache, and both
# must work. Each run must exit 0 with counts that add up. Before them, a
# run with an empty cache and no network must fail at once with one line
# saying what to do; after them, a short run from installed binaries
# (--pg-bin). CI calls it (.ci/run); so can you.
#
# As root (CI here is root, and PostgreSQL refuses root), the demo runs as the
# `postgres` user if there is one, else `nobody`, through runuser; the second
# run gets a network namespace with only loopback (unshare -n). As a normal
# user it runs as you, and the second run is only offline if unshare works.
#
#   DEMO_DURATION   how long each run produces (default 10s)
#   FOODPIPE_TESTBED_PG_BIN   installed PostgreSQL binaries for the --pg-bin
#                   run (default /usr/lib/postgresql/15/bin; skipped if none)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DEMO_DURATION:-10s}
PG_BIN=${FOODPIPE_TESTBED_PG_BIN:-/usr/lib/postgresql/15/bin}
began=$(date +%s)

work=$(mktemp -d /tmp/foodpipe-demo-check-XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
home=$work/home
mkdir -p "$home" "$work/tmp" "$work/home0" "$work/tmp0"
chmod 1777 "$work/tmp" "$work/tmp0" # the runs' temp dirs (the embedded server's data) live here

echo "demo-check: building foodpipe"
(cd "$REPO" && go build -o "$work/foodpipe" .)
chmod 755 "$work/foodpipe"

as_user=()
if [ "$(id -u)" = 0 ]; then
	user=postgres
	id -u "$user" >/dev/null 2>&1 || user=nobody
	chown "$user" "$home" "$work/home0"
	as_user=(runuser -u "$user" --)
	echo "demo-check: running as $user (PostgreSQL refuses root), HOME=$home"
fi

# demo runs the binary as the user, with only HOME and PATH from here: no
# FOODPIPE_* of the caller's shell (a database URL would bypass the
# embedded server), no cache of the caller's.
demo() {
	"${as_user[@]}" env -i HOME="$home" TMPDIR="$work/tmp" PATH=/usr/bin:/bin "$work/foodpipe" demo --duration "$DURATION" "$@"
}

check() { # check NAME OUTFILE: the summary says the counts add up
	if ! grep -q "every order stored exactly once, every poison record dead-lettered once" "$2"; then
		echo "demo-check: $1: the summary does not say the counts add up:" >&2
		cat "$2" >&2
		exit 1
	fi
}

tables() { # tables NAME OUTFILE: the database's answers, each a table under its heading
	local heading header
	for heading in 'orders by status:/STATUS' 'the 5 best-selling items:/ITEM' 'revenue by hour (UTC):/HOUR'; do
		header=${heading#*/} heading=${heading%/*}
		if ! grep -A1 -xF "$heading" "$2" | grep -q "^$header  "; then
			echo "demo-check: $1: no table under '$heading':" >&2
			cat "$2" >&2
			exit 1
		fi
	done
}

offline=()
if command -v ip >/dev/null && unshare -n true 2>/dev/null; then
	offline=(unshare -n sh -c 'ip link set lo up && exec "$@"' sh)
fi

# Run 0: the start fails. No PostgreSQL cached (a HOME of its own, empty)
# and no network, so the download cannot work: exit 1 at once, one line
# (beside the log's records) saying why and naming the ways round it, and
# nothing left behind: no server's temp dir, no half-written archive.
if [ ${#offline[@]} -gt 0 ]; then
	echo "demo-check: run 0 (empty cache, no network: the start must fail with one line saying what to do)"
	rc=0
	"${offline[@]}" "${as_user[@]}" env -i HOME="$work/home0" TMPDIR="$work/tmp0" PATH=/usr/bin:/bin \
		"$work/foodpipe" demo --duration 5s >"$work/run0.out" 2>"$work/run0.err" || rc=$?
	said=$(grep -v '^{"time":' "$work/run0.err" || true)
	if [ "$rc" != 1 ] || [ "$(printf '%s\n' "$said" | grep -c .)" != 1 ] ||
		[[ $said != *"cannot fetch PostgreSQL"*--pg-bin*--database-url* ]]; then
		echo "demo-check: run 0: exit $rc (want 1); want one line naming the failed fetch, --pg-bin and --database-url:" >&2
		cat "$work/run0.err" >&2
		exit 1
	fi
	if compgen -G "$work/tmp0/foodpipe-demo-pg-*" >/dev/null || compgen -G "$work/home0/.cache/foodpipe/*.txz" >/dev/null ||
		pgrep -f "$work/foodpipe" >/dev/null; then
		echo "demo-check: run 0: the failed start left something behind:" >&2
		ls -la "$work/tmp0" "$work/home0/.cache/foodpipe" >&2 || true
		pgrep -af "$work/foodpipe" >&2 || true
		exit 1
	fi
	echo "$said"
else
	echo "demo-check: run 0 skipped (no unshare -n or ip here: the failed fetch needs a run with no network)"
fi

echo "demo-check: run 1 (two demos; the second starts while the first fills the empty cache)"
start=$(date +%s)
demo >"$work/run1a.out" 2>"$work/run1a.err" &
first=$!
# Wait (at most 60 s) until the first is extracting the binaries: a second
# demo starting then once removed them under the first one's feet.
for _ in $(seq 600); do
	compgen -G "$home/.cache/foodpipe/postgresql-*" >/dev/null && break
	sleep 0.1
done
demo >"$work/run1b.out" 2>"$work/run1b.err" || {
	echo "demo-check: run 1, the second demo failed:" >&2
	tail -20 "$work/run1b.err" >&2
	wait "$first" || true
	exit 1
}
wait "$first" || {
	echo "demo-check: run 1, the first demo failed:" >&2
	tail -20 "$work/run1a.err" >&2
	exit 1
}
if ! grep -q "waiting for another foodpipe" "$work/run1b.err"; then
	echo "demo-check: run 1: the second demo did not wait for the first to fill the cache" >&2
	exit 1
fi
for r in run1a run1b; do
	check "$r" "$work/$r.out"
	tables "$r" "$work/$r.out"
	grep -E '^(ready in|produced|stored|dead-lettered|check) ' "$work/$r.out"
done
echo "demo-check: run 1 took $(($(date +%s) - start))s"

if [ ${#offline[@]} -gt 0 ]; then
	echo "demo-check: run 2 (offline: a network namespace with loopback only; JSON output)"
else
	echo "demo-check: run 2 (no unshare -n or ip here: online, but the cache must serve it; JSON output)"
fi
start=$(date +%s)
"${offline[@]}" "${as_user[@]}" env -i HOME="$home" TMPDIR="$work/tmp" PATH=/usr/bin:/bin "$work/foodpipe" demo --duration "$DURATION" \
	--output json >"$work/run2.out" 2>"$work/run2.err" || {
	echo "demo-check: run 2 failed:" >&2
	tail -20 "$work/run2.err" >&2
	exit 1
}
for want in '"drained": true' '"downloaded": false' '"stopped": "duration"'; do
	if ! grep -q "$want" "$work/run2.out"; then
		echo "demo-check: run 2: no $want in the JSON summary:" >&2
		cat "$work/run2.out" >&2
		exit 1
	fi
done
if command -v python3 >/dev/null; then
	python3 - "$work/run2.out" <<'EOF' || {
import json, sys
r = json.load(open(sys.argv[1]))
if not (r["produced"] == r["rows"] + r["dead_letters"] and r["rows"] == r["orders"] and r["dead_letters"] == len(r["poison"])):
    sys.exit("produced %d (%d orders, %d poison), stored %d, dead-lettered %d" % (r["produced"], r["orders"], len(r["poison"]), r["rows"], r["dead_letters"]))
print("run 2: produced %d = stored %d + dead-lettered %d, ready in %.1fs" % (r["produced"], r["rows"], r["dead_letters"], r["startup_seconds"]))
EOF
		echo "demo-check: run 2: the JSON summary's counts do not add up:" >&2
		cat "$work/run2.out" >&2
		exit 1
	}
else
	echo "demo-check: run 2: no python3 here, so the JSON summary's counts are not checked (run 1 checked the text summary's)"
fi
echo "demo-check: run 2 took $(($(date +%s) - start))s"

# Run 3: a short demo from installed binaries, as --pg-bin runs them:
# nothing downloaded, the summary names them. (Run 4's end checks what
# every run left behind in the temp dir.)
if [ -x "$PG_BIN/pg_ctl" ]; then
	echo "demo-check: run 3 (--pg-bin $PG_BIN, 5s)"
	start=$(date +%s)
	demo --duration 5s --pg-bin "$PG_BIN" >"$work/run3.out" 2>"$work/run3.err" || {
		echo "demo-check: run 3 failed:" >&2
		tail -20 "$work/run3.err" >&2
		exit 1
	}
	check "run 3" "$work/run3.out"
	if ! grep -qF "PostgreSQL from $PG_BIN, data in" "$work/run3.out"; then
		echo "demo-check: run 3: the summary does not name the binaries of --pg-bin:" >&2
		cat "$work/run3.out" >&2
		exit 1
	fi
	grep -E '^(ready in|check) ' "$work/run3.out"
	echo "demo-check: run 3 took $(($(date +%s) - start))s"
else
	echo "demo-check: run 3 skipped (no PostgreSQL binaries in $PG_BIN; set FOODPIPE_TESTBED_PG_BIN)"
fi

# Run 4: the ways a demo ends early. Its stdout closed (demo | true): the
# summary cannot be written, exit 1, and it still stops its PostgreSQL. A
# second Ctrl-C while the first one's stop is under way (the consumers held
# in their first transactions by the test hook): it ends at once, but not
# before it has shut its PostgreSQL down (which runs detached, and would
# otherwise outlive it).
echo "demo-check: run 4 (stdout closed early; a second Ctrl-C)"
start=$(date +%s)
demo --duration 3s 2>"$work/run4a.err" | true || true
if ! grep -q "broken pipe" "$work/run4a.err"; then
	echo "demo-check: run 4: a demo whose stdout was closed did not say so:" >&2
	tail -5 "$work/run4a.err" >&2
	exit 1
fi
"${as_user[@]}" env -i HOME="$home" TMPDIR="$work/tmp" PATH=/usr/bin:/bin FOODPIPE_TEST_PAUSE=in-transaction=1m \
	"$work/foodpipe" demo --duration 0 --log-level debug >/dev/null 2>"$work/run4b.err" &
waitlog() { # waitlog PATTERN: until the run's log has it (60 s at most)
	for _ in $(seq 600); do
		grep -q "$1" "$work/run4b.err" && return 0
		sleep 0.1
	done
	echo "demo-check: run 4: no '$1' in the log:" >&2
	tail -20 "$work/run4b.err" >&2
	exit 1
}
waitlog '"point":"in-transaction"'
pkill -INT -f "^$work/foodpipe demo" || true
waitlog '"msg":"stopping: '
pkill -INT -f "^$work/foodpipe demo" || true
wait $! 2>/dev/null || true
echo "demo-check: run 4 took $(($(date +%s) - start))s"

# Nothing left running or left behind: the embedded servers' data dirs were
# under $work/tmp.
if pgrep -f "$work" >/dev/null; then
	echo "demo-check: a process of the demo is still running:" >&2
	pgrep -af "$work" >&2 || true
	exit 1
fi
if [ -n "$(ls -A "$work/tmp")" ]; then
	echo "demo-check: the demo left files behind in its temp dir:" >&2
	ls -la "$work/tmp" >&2
	exit 1
fi
echo "demo-check: ok in $(($(date +%s) - began))s"
