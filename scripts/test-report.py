#!/usr/bin/env python3
"""Summarises `go test -json` output (stdin) for scripts/test.sh.

Prints one line per top-level test, the output of every failed test, every
skipped test or subtest with its reason, and the counts of tests and of
subtests apart: a parent whose subtests all skipped does not read as a pass.
Exits 1 when a test failed, a package failed to build, or nothing ran.
"""
import json
import sys

results = {}   # (package, test) -> action
elapsed = {}
output = {}    # (package, test) -> [lines]
broken = []    # packages that failed without a failing test (build errors)
pkg_fail = set()
pkg_out = {}

for line in sys.stdin:
    try:
        ev = json.loads(line)
    except json.JSONDecodeError:
        print(line, end="")
        continue
    pkg, test, action = ev.get("Package", ""), ev.get("Test"), ev.get("Action")
    if action == "output":
        key = (pkg, test)
        if test:
            output.setdefault(key, []).append(ev.get("Output", ""))
        else:
            pkg_out.setdefault(pkg, []).append(ev.get("Output", ""))
    elif action in ("pass", "fail", "skip"):
        if test:
            results[(pkg, test)] = action
            elapsed[(pkg, test)] = ev.get("Elapsed", 0)
        elif action == "fail":
            pkg_fail.add(pkg)

top = {k: v for k, v in results.items() if "/" not in k[1]}
sub = {k: v for k, v in results.items() if "/" in k[1]}

for (pkg, test), action in sorted(top.items()):
    print(f"--- {action.upper()}: {test} ({elapsed[(pkg, test)]:.2f}s) [{pkg.rsplit('/', 1)[-1]}]")

failed = [k for k, v in results.items() if v == "fail"]
for pkg in sorted(pkg_fail):
    if not any(k[0] == pkg for k in failed):
        broken.append(pkg)
if failed or broken:
    print("\nfailures:")
    for key in sorted(failed):
        if any(f != key and f[0] == key[0] and f[1].startswith(key[1] + "/") for f in failed):
            continue  # its failing subtest shows the output
        print(f"=== {key[1]} ({key[0]})")
        print("".join(l for l in output.get(key, []) if not l.startswith(("=== RUN", "=== PAUSE", "=== CONT", "=== NAME"))), end="")
    for pkg in broken:
        print(f"=== package {pkg} failed:")
        print("".join(pkg_out.get(pkg, [])), end="")

skipped = sorted(k for k, v in results.items() if v == "skip")
if skipped:
    print("\nskipped:")
    for key in skipped:
        reason = [l.strip() for l in output.get(key, []) if l.strip() and not l.startswith(("=== ", "--- "))]
        print(f"  {key[1]}: {reason[-1] if reason else '(no reason given)'}")

def count(d, action):
    return sum(1 for v in d.values() if v == action)

print(f"\ntests: {count(top, 'pass')} passed, {count(top, 'fail')} failed, {count(top, 'skip')} skipped (top level); "
      f"subtests: {count(sub, 'pass')} passed, {count(sub, 'fail')} failed, {count(sub, 'skip')} skipped")
if failed or broken or not top:
    sys.exit(1)
