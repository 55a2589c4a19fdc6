#!/usr/bin/env bash
# demo-check.sh: run `foodpipe demo` the way a new user does — a plain build,
# an ordinary (non-root) user with a HOME of its own and an empty cache —
# twice: the first run downloads PostgreSQL into the cache, the second must
# start from the cache with no network at all. The first run is two demos,
# as a user who opens two terminals would run them: the second starts while
# the first is extracting PostgreSQL into the shared, empty cache, and both
# must work. Each run must exit 0 with counts that add up. CI calls it
# (.ci/run); so can you.
#
# As root (CI here is root, and PostgreSQL refuses root), the demo runs as the
# `postgres` user if there is one, else `nobody`, through runuser; the second
# run gets a network namespace with only loopback (unshare -n). As a normal
# user it runs as you, and the second run is only offline if unshare works.
#
#   DEMO_DURATION   how long each run produces (default 10s)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DEMO_DURATION:-10s}

work=$(mktemp -d /tmp/foodpipe-demo-check-XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
home=$work/home
mkdir -p "$home" "$work/tmp"
chmod 1777 "$work/tmp" # the runs' temp dirs (the embedded server's data) live here

echo "demo-check: building foodpipe"
(cd "$REPO" && go build -o "$work/foodpipe" .)
chmod 755 "$work/foodpipe"

as_user=()
if [ "$(id -u)" = 0 ]; then
	user=postgres
	id -u "$user" >/dev/null 2>&1 || user=nobody
	chown "$user" "$home"
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
	grep -E '^(ready in|produced|stored|dead-lettered|check) ' "$work/$r.out"
done
echo "demo-check: run 1 took $(($(date +%s) - start))s"

offline=()
if command -v ip >/dev/null && unshare -n true 2>/dev/null; then
	offline=(unshare -n sh -c 'ip link set lo up && exec "$@"' sh)
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
python3 - "$work/run2.out" <<'EOF' 2>/dev/null || grep -E '"(produced|rows|dead_letters|startup_seconds)"' "$work/run2.out"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["produced"] == r["rows"] + r["dead_letters"] and r["rows"] == r["orders"], r
print("run 2: produced %d = stored %d + dead-lettered %d, ready in %.1fs" % (r["produced"], r["rows"], r["dead_letters"], r["startup_seconds"]))
EOF
echo "demo-check: run 2 took $(($(date +%s) - start))s"

# Run 3: the ways a demo ends early. Its stdout closed (demo | true): the
# summary cannot be written, exit 1, and it still stops its PostgreSQL. A
# second Ctrl-C while the first one's stop is under way (the consumers held
# in their first transactions by the test hook): it ends at once, but not
# before it has shut its PostgreSQL down (which runs detached, and would
# otherwise outlive it).
echo "demo-check: run 3 (stdout closed early; a second Ctrl-C)"
demo --duration 3s 2>"$work/run3a.err" | true || true
if ! grep -q "broken pipe" "$work/run3a.err"; then
	echo "demo-check: run 3: a demo whose stdout was closed did not say so:" >&2
	tail -5 "$work/run3a.err" >&2
	exit 1
fi
"${as_user[@]}" env -i HOME="$home" TMPDIR="$work/tmp" PATH=/usr/bin:/bin FOODPIPE_TEST_PAUSE=in-transaction=1m \
	"$work/foodpipe" demo --duration 0 --log-level debug >/dev/null 2>"$work/run3b.err" &
waitlog() { # waitlog PATTERN: until the run's log has it (60 s at most)
	for _ in $(seq 600); do
		grep -q "$1" "$work/run3b.err" && return 0
		sleep 0.1
	done
	echo "demo-check: run 3: no '$1' in the log:" >&2
	tail -20 "$work/run3b.err" >&2
	exit 1
}
waitlog '"point":"in-transaction"'
pkill -INT -f "^$work/foodpipe demo" || true
waitlog '"msg":"stopping: '
pkill -INT -f "^$work/foodpipe demo" || true
wait $! 2>/dev/null || true

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
echo "demo-check: ok"
