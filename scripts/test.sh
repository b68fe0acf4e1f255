#!/bin/sh
# test.sh — run every suite and end with the line CI reads:
#   N passed, N failed
#
# 1. All busted specs under spec/ (the C unit drivers, the fuzz targets and
#    the end-to-end specs) against build/luasmtpd.
# 2. The end-to-end specs again against build/asan/luasmtpd, the server
#    built with AddressSanitizer and UndefinedBehaviorSanitizer, with leak
#    detection; every sanitizer report written meanwhile is a failure.
#
# Specs run under LuaJIT in TAP form so that every test is counted.  A
# skipped (pending) test counts as failed: nothing is skipped silently.
# A busted run that does not finish counts as a failure too.
#
#   scripts/test.sh [spec files or dirs]   only those, and no ASan pass
set -u
cd "$(dirname "$0")/.."

passed=0
failed=0
tmp=$(mktemp -d /tmp/luasmtpd-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# run_busted LABEL ARGS... : one busted run, counted.
run_busted() {
	label=$1
	shift
	out="$tmp/$label.tap"
	echo "# ---- $label"
	busted --lua=luajit -o TAP "$@" 2>&1 | tee "$out"
	p=$(grep -E '^ok [0-9]+' "$out" | grep -vc '# SKIP')
	s=$(grep -E '^ok [0-9]+' "$out" | grep -c '# SKIP')
	n=$(grep -c '^not ok' "$out")
	passed=$((passed + p))
	failed=$((failed + n + s))
	# busted prints "1..N" once the run completed; without it the run broke.
	if ! grep -qE '^1\.\.[0-9]+' "$out"; then
		echo "not ok - $label: busted did not finish its run"
		failed=$((failed + 1))
	fi
}

if [ $# -gt 0 ]; then
	run_busted selected "$@"
else
	run_busted all spec

	san="$tmp/sanitizer"
	mkdir -p "$san"
	LUASMTPD_BIN="$PWD/build/asan/luasmtpd" LUASMTPD_SANITIZED=1 \
	ASAN_OPTIONS="detect_leaks=1:log_path=$san/asan:abort_on_error=0" \
	UBSAN_OPTIONS="print_stacktrace=1:log_path=$san/ubsan" \
	    run_busted asan spec/e2e
	reports=$(ls "$san" | wc -l)
	if [ "$reports" -eq 0 ]; then
		echo "ok - no AddressSanitizer, LeakSanitizer or UBSan report from the e2e pass"
		passed=$((passed + 1))
	else
		for f in "$san"/*; do
			echo "not ok - sanitizer report $(basename "$f")"
			sed 's/^/# /' "$f" | head -n 60
		done
		failed=$((failed + reports))
	fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
