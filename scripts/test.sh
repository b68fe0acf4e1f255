#!/bin/sh
# test.sh — run every suite and end with the line CI reads:
#   N passed, N failed
#
# All suites are busted specs under spec/ (the C unit drivers run from
# spec/unit/c_units_spec.lua), run under LuaJIT in TAP form so that every
# test is counted.  A skipped (pending) test counts as failed: nothing is
# skipped silently.  If busted itself fails without a failed test (a spec
# that does not load), that counts as a failure too.
set -u
cd "$(dirname "$0")/.."

out=$(mktemp /tmp/luasmtpd-test.XXXXXX)
trap 'rm -f "$out"' EXIT

# Arguments (spec files or directories) narrow the run; default: all.
[ $# -eq 0 ] && set -- spec
busted --lua=luajit -o TAP "$@" 2>&1 | tee "$out"
status=0
not_ok=$(grep -c '^not ok' "$out")
passed=$(grep -E '^ok [0-9]+' "$out" | grep -vc '# SKIP')
skipped=$(grep -E '^ok [0-9]+' "$out" | grep -c '# SKIP')
failed=$((not_ok + skipped))
# busted prints "1..N" once the run completed; without it the run broke.
if ! grep -qE '^1\.\.[0-9]+' "$out"; then
	echo "# busted did not finish its run" >&2
	failed=$((failed + 1))
fi
[ "$failed" -gt 0 ] && status=1
echo "$passed passed, $failed failed"
exit $status
