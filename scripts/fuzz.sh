#!/bin/sh
# fuzz.sh — run every libFuzzer target for a bounded time.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]    (default: 60 seconds, all targets)
#
# Each target starts from its seed corpus in spec/fuzz/corpus/<target>/,
# copied to a scratch directory so the repository is not modified; a crash
# leaves its input in build/fuzz/artifacts/.  Exits non-zero if any target
# found a problem.
set -u
cd "$(dirname "$0")/.."
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-$(ls spec/fuzz/*.c | sed 's|spec/fuzz/||; s|\.c$||')}
status=0
mkdir -p build/fuzz/artifacts
for t in $targets; do
	work=$(mktemp -d /tmp/luasmtpd-fuzz.XXXXXX)
	cp spec/fuzz/corpus/"$t"/* "$work"/ 2>/dev/null
	echo "== $t: ${secs}s"
	if ! build/fuzz/"$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix=build/fuzz/artifacts/"$t"- \
	    "$work" 2>&1 | tail -n 12; then
		status=1
	fi
	# libFuzzer's exit status is lost in the pipe: look for its verdicts.
	if ls build/fuzz/artifacts/"$t"-* >/dev/null 2>&1; then
		echo "== $t: FOUND A PROBLEM, see build/fuzz/artifacts/"
		status=1
	fi
	rm -rf "$work"
done
exit $status
