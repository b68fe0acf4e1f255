#!/usr/bin/env bash
# bench.sh — `make bench`: luasmtpd against Postfix and smtp-sink, on
# loopback, and BENCHMARKS.md at the repository root written from scratch.
#
#   make bench                     the full bench (13-17 minutes on a 2-core VM)
#   BENCH_QUICK=1 make bench       a smoke run (about 2 minutes): small
#                                  counts, one run per case
#
# What runs, one after the other, with Postfix's smtp-source as the load:
#   servers  sink      smtp-sink -u nobody (a trivial C sink: the ceiling)
#            postfix   a throw-away Postfix instance, smtpd + cleanup (fsync)
#                      + qmgr + discard(8)       scripts/bench/postfix-*.cf.in
#            lua-a     luasmtpd, a Lua hook at every stage, smtp.discard()
#                                                scripts/bench/discard.lua
#            lua-b     luasmtpd, deliver.maildir (fsync) scripts/bench/maildir.lua
#            lua-c     luasmtpd, deliver.lmtp to a throw-away Dovecot
#                      scripts/bench/lmtp.lua, scripts/bench/dovecot.conf.in
#   cases    1, 20, 200 sessions x 1 KB, 100 KB x one message per connection
#            or many (smtp-source -d); every server gets the same count per
#            case, BENCH_RUNS runs each (median), the servers interleaved.
#   idle     memory per idle session after the greeting (scripts/bench/idle.py):
#            10,000 for smtp-sink and luasmtpd (a), 200 for Postfix
#   hooks    N pipelined VRFY in one session: no hook, a hook, a hook that
#            yields once (scripts/bench/vrfy.py, scripts/bench/vrfy.lua)
#
# Bounds: every run has a message count and a time limit (BENCH_RUN_TIMEOUT);
# once BENCH_MAX_SECONDS have passed, the remaining load runs are skipped
# (and reported as skipped).  Everything listens on 127.0.0.1 or on unix
# sockets in the temp dir.  Every process started here is stopped by its PID
# (Postfix with `postfix -c DIR stop`, then whatever of that instance is left,
# found by its MAIL_CONFIG); the temp dir is removed at the end unless
# BENCH_KEEP=1.  The raw results (CSV, JSON lines) live in the temp dir only.
#
# Settings (environment):
#   BENCH_QUICK=1         smoke run
#   BENCH_RUNS=n          runs per server and case (3; quick: 1)
#   BENCH_RUN_TIMEOUT=s   seconds one smtp-source run may take (120; quick: 30)
#   BENCH_MAX_SECONDS=s   budget for the load runs (1500; quick: 150)
#   BENCH_OUT=path        the report (BENCHMARKS.md at the repository root)
#   BENCH_KEEP=1          keep the temp dir (logs, raw results) and say where
#
# Needs root (smtp-sink -u nobody, Postfix, Dovecot), smtp-source, smtp-sink,
# postfix, dovecot (with dovecot-lmtpd), /usr/bin/python3, util-linux script.
set -u
set -o pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$ROOT/scripts/bench
BIN=$ROOT/build/luasmtpd
PY=/usr/bin/python3

QUICK=${BENCH_QUICK:-0}
[ "$QUICK" = 0 ] || QUICK=1
if [ "$QUICK" = 1 ]; then
	RUNS=${BENCH_RUNS:-1}
	RUN_TIMEOUT=${BENCH_RUN_TIMEOUT:-30}
	MAX_SECONDS=${BENCH_MAX_SECONDS:-150}
	IDLE_N=1000		# luasmtpd and smtp-sink
	IDLE_PF=50		# Postfix: one smtpd process per session
	VRFY_N=50000
	VRFY_RUNS=1
else
	RUNS=${BENCH_RUNS:-3}
	RUN_TIMEOUT=${BENCH_RUN_TIMEOUT:-120}
	MAX_SECONDS=${BENCH_MAX_SECONDS:-1500}
	IDLE_N=10000
	IDLE_PF=200
	VRFY_N=300000
	VRFY_RUNS=5
fi
OUT=${BENCH_OUT:-$ROOT/BENCHMARKS.md}
KEEP=${BENCH_KEEP:-0}

# Messages per run: the same for every server of a case.  Full runs size
# it from one smtp-sink probe run so that smtp-sink, the fastest server,
# takes about TARGET_SECS, between the probe count and the cap; quick runs
# use the fixed quick counts.
TARGET_SECS=1.2
declare -A CAP=([1024]=8000 [102400]=1000)
declare -A PROBE=([1024]=1000 [102400]=200)
declare -A STEP=([1024]=500 [102400]=100)
declare -A QUICK_N=([1024]=1000 [102400]=150)

SENDER=bench@client.test
RCPT=bench@example.test
HELO=client.test
SERVERS="sink postfix lua-a lua-b lua-c"

say() { printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "error: $*"; exit 1; }

# ---- preconditions -------------------------------------------------------

[ "$(id -u)" = 0 ] || die "must run as root (smtp-sink -u nobody, Postfix, Dovecot)"
for c in smtp-source smtp-sink postfix postconf dovecot script timeout; do
	command -v "$c" >/dev/null || die "missing $c (scripts/deps.sh test installs it)"
done
[ -x "$PY" ] || die "missing $PY"
[ -x "$BIN" ] || die "missing $BIN (make)"
[ -x /usr/lib/dovecot/lmtp ] || die "missing Dovecot's lmtp (dovecot-lmtpd)"
# Every config must load; lmtp.lua also asserts that deliver.lmtp exists.
for conf in discard maildir lmtp vrfy; do
	out=$("$BIN" -t -c "$B/$conf.lua" -D listen=127.0.0.1:0 -D spool=/nonexistent \
	    -D maildir=/nonexistent -D lmtp=unix:/nonexistent 2>&1) ||
	    die "$B/$conf.lua does not load: $out"
done

T=$(mktemp -d /tmp/luasmtpd-bench.XXXXXX) || die "mktemp failed"
chmod 0755 "$T"		# Dovecot delivers as nobody below it
R=$T/results
mkdir -p "$R"
# Run a copy: a rebuild of build/luasmtpd during the bench must not change
# the server under test halfway.
cp "$BIN" "$T/luasmtpd" || die "cannot copy $BIN"
BIN_MTIME=$(date -u -r "$BIN" '+%Y-%m-%d %H:%M:%S UTC')
BIN=$T/luasmtpd

# ---- processes: started here, stopped by PID -----------------------------

declare -A PID		# name -> pid of a direct child of this shell
PF_DIRS=()		# Postfix instances (their dirs) not stopped yet

# The start time of pid (field 22 of /proc/pid/stat), to tell it from a
# later process that got the same number.
proc_start() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	s=${s##*) }
	set -- $s
	echo "${20}"
}

# pid and every descendant as "pid:starttime" words.
proc_tree() {
	local p=$1 c st
	st=$(proc_start "$p") || return 0
	echo "$p:$st"
	for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do
		proc_tree "$c"
	done
}

# Wait until none of the "pid:starttime" words runs any more (at most $2 s).
wait_gone() {
	local list=$1 secs=$2 end left w
	end=$(( $(date +%s%N) + secs * 1000000000 ))
	while :; do
		left=""
		for w in $list; do
			[ "$(proc_start "${w%%:*}")" = "${w#*:}" ] && left="$left $w"
		done
		[ -z "$left" ] && return 0
		[ "$(date +%s%N)" -ge "$end" ] && { echo "$left"; return 1; }
		sleep 0.05
	done
}

kill_words() {		# signal, "pid:starttime" words (split here)
	local sig=$1 w
	shift
	# shellcheck disable=SC2048  # the words are split on purpose
	for w in $*; do
		[ "$(proc_start "${w%%:*}")" = "${w#*:}" ] && kill "-$sig" "${w%%:*}" 2>/dev/null
	done
	return 0
}

# Stop the child called $1 and its descendants: TERM, 10 s, then KILL.
stop_child() {
	local name=$1 pid=${PID[$1]:-} tree left
	[ -n "$pid" ] || return 0
	tree=$(proc_tree "$pid")
	kill -TERM "$pid" 2>/dev/null
	left=$(wait_gone "$tree" 10) || {
		# The main process is gone or stuck; its children get TERM too.
		kill_words TERM "$left"
		left=$(wait_gone "$left" 5) || {
			say "warning: $name: SIGKILL to$left"
			kill_words KILL "$left"
			wait_gone "$left" 5 >/dev/null || say "warning: $name: still running:$left"
		}
	}
	wait "$pid" 2>/dev/null
	unset "PID[$name]"
}

# Processes of the Postfix instance in $1 (their MAIL_CONFIG names it).
postfix_procs() {
	local conf=$1/conf e p
	for e in /proc/[0-9]*/environ; do
		p=${e#/proc/}
		p=${p%/environ}
		if { tr '\0' '\n' <"$e"; } 2>/dev/null | grep -qx "MAIL_CONFIG=$conf"; then
			st=$(proc_start "$p") && echo "$p:$st"
		fi
	done
}

postfix_stop() {
	local dir=$1 left i before
	before=$(postfix_procs "$dir")
	script -qec "postfix -c $dir/conf stop" /dev/null >>"$dir/stop.out" 2>&1
	left=$(wait_gone "$before $(postfix_procs "$dir")" 15) || {
		say "warning: postfix $dir: still running after stop:$left; TERM, KILL"
		kill_words TERM "$left"
		left=$(wait_gone "$left" 5) || kill_words KILL "$left"
	}
	left=$(postfix_procs "$dir")
	[ -z "$left" ] || say "warning: postfix $dir: left running:$left"
	for i in "${!PF_DIRS[@]}"; do
		[ "${PF_DIRS[$i]}" = "$dir" ] && unset "PF_DIRS[$i]"
	done
	return 0
}

cleanup() {
	local name dir
	trap - EXIT INT TERM
	for name in "${!PID[@]}"; do stop_child "$name"; done
	for dir in "${PF_DIRS[@]}"; do postfix_stop "$dir"; done
	if [ "$KEEP" = 1 ]; then
		say "kept $T (raw results in $R)"
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

# ---- servers ----------------------------------------------------------------

declare -A PORT		# server -> TCP port
declare -A SRVDIR	# server -> its temp dir
declare -A SRVCMD	# server -> its command line (for the report)

freeport() { "$PY" "$B/probe.py" freeport; }

# luasmtpd: name config [-D ...]; port 0, read back from its log.
start_luasmtpd() {
	local name=$1 conf=$2 dir=$T/$1 pid port i logpid
	shift 2
	mkdir -p "$dir/spool"
	SRVDIR[$name]=$dir
	"$BIN" -c "$conf" -D listen=127.0.0.1:0 -D spool="$dir/spool" "$@" \
	    >"$dir/server.log" 2>&1 &
	pid=$!
	PID[$name]=$pid
	for i in $(seq 200); do
		port=$(grep -m1 -o 'net listening addr=127\.0\.0\.1:[0-9]*' "$dir/server.log" |
		    cut -d: -f2)
		[ -n "$port" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	[ -n "$port" ] || die "$name did not start:$(tail -5 "$dir/server.log")"
	logpid=$(grep -m1 -o 'main started .* pid=[0-9]*' "$dir/server.log" | sed 's/.*pid=//')
	[ "$logpid" = "$pid" ] || die "$name: pid $pid but the log says $logpid"
	"$PY" "$B/probe.py" greet "$port" 10 || die "$name does not greet on $port"
	PORT[$name]=$port
	SRVCMD[$name]="build/luasmtpd -c ${conf#"$ROOT"/} -D listen=127.0.0.1:0 -D spool=$T/$name/spool${*:+ $*}"
	say "$name: luasmtpd pid $pid on 127.0.0.1:$port"
}

# smtp-sink: name [extra options]; a probed port, retried if it was taken.
start_sink() {
	local name=$1 dir=$T/$1 pid port
	shift
	mkdir -p "$dir"
	SRVDIR[$name]=$dir
	for _ in 1 2 3 4 5; do
		port=$(freeport)
		smtp-sink -u nobody "$@" "127.0.0.1:$port" 1024 >"$dir/sink.log" 2>&1 &
		pid=$!
		PID[$name]=$pid
		if "$PY" "$B/probe.py" greet "$port" 5 && kill -0 "$pid" 2>/dev/null; then
			PORT[$name]=$port
			SRVCMD[$name]="smtp-sink -u nobody${*:+ $*} 127.0.0.1:PORT 1024"
			say "$name: smtp-sink pid $pid on 127.0.0.1:$port"
			return 0
		fi
		stop_child "$name"
	done
	die "smtp-sink did not start: $(cat "$dir/sink.log")"
}

# Postfix: name; its own config dir, queue and data dirs under $T/name.
start_postfix() {
	local name=$1 dir=$T/$1 port
	for _ in 1 2 3 4 5; do
		rm -rf "$dir"
		mkdir -p "$dir/conf" "$dir/queue" "$dir/data"
		chown postfix "$dir/data"
		port=$(freeport)
		sed "s#@DIR@#$dir#g" "$B/postfix-main.cf.in" >"$dir/conf/main.cf"
		sed -e "s#@DIR@#$dir#g" -e "s#@PORT@#$port#g" "$B/postfix-master.cf.in" \
		    >"$dir/conf/master.cf"
		PF_DIRS+=("$dir")
		# postfix start reports its errors only to a terminal.
		script -qec "postfix -c $dir/conf start" /dev/null >"$dir/start.out" 2>&1
		if "$PY" "$B/probe.py" greet "$port" 15; then
			SRVDIR[$name]=$dir
			PORT[$name]=$port
			SRVCMD[$name]="postfix -c \$T/$name/conf start"
			say "$name: Postfix master pid $(tr -d ' ' <"$dir/queue/pid/master.pid") on 127.0.0.1:$port"
			return 0
		fi
		say "postfix did not start on $port: $(tail -3 "$dir/maillog" 2>/dev/null)"
		postfix_stop "$dir"
	done
	die "Postfix did not start: $(cat "$dir/start.out" "$dir/maillog" 2>/dev/null | tail -5)"
}

postfix_master_pid() { tr -d ' \n' <"${SRVDIR[$1]}/queue/pid/master.pid"; }

# Dovecot: LMTP on a unix socket only, users "bench".
start_dovecot() {
	local name=$1 dir=$T/$1
	mkdir -p "$dir/mail"
	chown nobody:nogroup "$dir/mail"
	SRVDIR[$name]=$dir
	sed "s#@DIR@#$dir#g" "$B/dovecot.conf.in" >"$dir/dovecot.conf"
	echo "bench:::::::" >"$dir/users"
	dovecot -F -c "$dir/dovecot.conf" >"$dir/dovecot.out" 2>&1 &
	PID[$name]=$!
	"$PY" "$B/probe.py" greet "unix:$dir/lmtp.sock" 15 ||
	    die "Dovecot did not start: $(cat "$dir/dovecot.out" "$dir/dovecot.log" 2>/dev/null | tail -5)"
	SRVCMD[$name]="dovecot -F -c \$T/$name/dovecot.conf"
	say "$name: Dovecot pid ${PID[$name]}, LMTP on $dir/lmtp.sock"
}

# The TCP listeners of our processes must all be on 127.0.0.1.
check_loopback() {
	local pids="" n w bad
	for n in "${!PID[@]}"; do
		for w in $(proc_tree "${PID[$n]}"); do pids="$pids|${w%%:*}"; done
	done
	for n in "${PF_DIRS[@]}"; do
		for w in $(postfix_procs "$n"); do pids="$pids|${w%%:*}"; done
	done
	bad=$(ss -Hltnp 2>/dev/null | grep -E "pid=(${pids#|})," | awk '{print $4}' |
	    grep -v '^127\.0\.0\.1:' || true)
	[ -z "$bad" ] || die "a server listens beyond loopback: $bad"
}

# ---- the machine -----------------------------------------------------------

# Percent of all CPUs busy over the next second (others' load on the box).
cpu_busy() {
	local a b
	a=$(head -1 /proc/stat)
	sleep 1
	b=$(head -1 /proc/stat)
	awk -v a="$a" -v b="$b" 'BEGIN {
		n = split(a, x); split(b, y); tot = 0; if (n > 9) n = 9
		for (i = 2; i <= n; i++) tot += y[i] - x[i]
		idle = (y[5] - x[5]) + (y[6] - x[6])
		printf "%.0f%%", (tot > 0 ? 100 * (tot - idle) / tot : 0) }'
}

machine() {
	local fs dev j
	fs=$(findmnt -n -o FSTYPE,SOURCE,OPTIONS -T "$T" 2>/dev/null | head -1 |
	    awk '{print $1 " on " $2 " (" $3 ")"}')
	{
		printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
		printf 'cpu\t%s\n' "$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
		printf 'cores\t%s\n' "$(nproc)"
		printf 'ram\t%s MiB\n' "$(( $(awk '/^MemTotal/ {print $2}' /proc/meminfo) / 1024 ))"
		printf 'kernel\t%s\n' "$(uname -sr)"
		printf 'debian\t%s\n' "$(cat /etc/debian_version)"
		printf 'luasmtpd\t%s, git %s, build/luasmtpd of %s (sha256 %.12s)\n' \
		    "$("$BIN" --version 2>&1 | head -1)" \
		    "$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)" \
		    "$BIN_MTIME" \
		    "$(sha256sum "$BIN" | cut -c1-12)"
		printf 'postfix\t%s\n' "$(postconf -d -h mail_version)"
		printf 'dovecot\t%s\n' "$(dovecot --version)"
		printf 'luajit\t%s\n' "$(pkg-config --modversion luajit 2>/dev/null) ($(dpkg-query -W -f='${Package} ${Version}' libluajit-5.1-2 2>/dev/null))"
		printf 'libev\t%s\n' "$(dpkg-query -W -f='${Version}' libev4 2>/dev/null)"
		printf 'python\t%s\n' "$("$PY" -V 2>&1)"
		printf 'tmpfs\t%s (temp dir %s)\n' "$fs" "${T%.*}.XXXXXX"
		dev=$(findmnt -n -o SOURCE -T "$T" 2>/dev/null | head -1)
		dev=${dev##*/}
		if [ -r "/sys/fs/ext4/$dev/journal_task" ]; then
			j=$(cat "/sys/fs/ext4/$dev/journal_task")
			[ "$j" = "<none>" ] && j="none: ext4 runs without a journal here" ||
			    j="yes ($j)"
			printf 'journal\t%s\n' "$j"
		fi
		printf 'fsync\t%s\n' "$("$PY" - "$T" <<'EOF'
import os, sys, time
d = os.path.join(sys.argv[1], "fsync-probe"); os.mkdir(d)
n = 200; t = time.perf_counter()
for i in range(n):
    p = os.path.join(d, str(i))
    fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o600); os.write(fd, b"x" * 1024)
    os.fsync(fd); os.close(fd)
    dfd = os.open(d, os.O_RDONLY); os.fsync(dfd); os.close(dfd)
print("%.2f ms for write 1 KB + fsync(file) + fsync(dir), mean of %d" %
      ((time.perf_counter() - t) / n * 1000, n))
for i in range(n): os.unlink(os.path.join(d, str(i)))
os.rmdir(d)
EOF
)"
		printf 'load\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
		printf 'quick\t%s\n' "$QUICK"
		printf 'runs\t%s\n' "$RUNS"
		printf 'run_timeout\t%s\n' "$RUN_TIMEOUT"
		printf 'max_seconds\t%s\n' "$MAX_SECONDS"
		printf 'idle_n\t%s\n' "$IDLE_N"
		printf 'idle_pf\t%s\n' "$IDLE_PF"
		printf 'vrfy_n\t%s\n' "$VRFY_N"
		printf 'vrfy_runs\t%s\n' "$VRFY_RUNS"
		printf 'busy\t%s\n' "$(cpu_busy)"
	} >"$R/machine.tsv"
}

# ---- one load run -------------------------------------------------------------

# Per server: what it has done so far, to check each run's deliveries.
count_delivered() {		# server -> messages it reports as done so far
	case $1 in
	sink) echo "" ;;
	postfix) grep -c 'status=sent' "${SRVDIR[postfix]}/maillog" ;;
	lua-a) grep -c ' smtp discarded ' "${SRVDIR[lua-a]}/server.log" ;;
	lua-b) find "${SRVDIR[lua-b]}/mail" -path "*/new/*" -type f 2>/dev/null | wc -l ;;
	lua-c) find "${SRVDIR[dovecot]}/mail" -path "*/new/*" -type f 2>/dev/null | wc -l ;;
	esac
}

# Give every run an empty Maildir (a growing one slows Dovecot down) by
# moving the last one aside, not deleting it: on ext4 without a journal
# (this machine's root) every file created after thousands of deletions
# pays for skipping the recently deleted inodes (ext4's recently_deleted()),
# for a minute or more.  Everything goes when the temp dir does.
TRASH_N=0
reset_store() {
	local dir
	case $1 in
	lua-b) dir=${SRVDIR[lua-b]}/mail ;;
	lua-c) dir=${SRVDIR[dovecot]}/mail ;;
	*) return 0 ;;
	esac
	TRASH_N=$((TRASH_N + 1))
	mkdir -p "$T/trash"
	{ mv "$dir" "$T/trash/$1.$TRASH_N" && mkdir "$dir"; } || die "cannot move $dir aside"
	[ "$1" = lua-c ] && chown nobody:nogroup "$dir"
	return 0
}

# Wait (at most 60 s) until Postfix's queue is empty and its log caught up.
postfix_drain() {
	local q=${SRVDIR[postfix]}/queue i
	for i in $(seq 600); do
		[ -z "$(find "$q/incoming" "$q/active" "$q/deferred" "$q/maildrop" -type f 2>/dev/null | head -1)" ] &&
		    return 0
		sleep 0.1
	done
	say "warning: the Postfix queue did not drain in 60 s"
	return 1
}

# smtp-source arguments for a case (the same for every server).
source_args() {		# sessions size mode count
	local a="-s $1 -m $4 -l $2"
	[ "$3" = many ] && a="$a -d"
	echo "$a -f $SENDER -t $RCPT -M $HELO"
}

# Run smtp-source once against a server; prints "rc seconds".
load_run() {		# server sessions size mode count
	local srv=$1 t0 t1 rc
	t0=$EPOCHREALTIME
	# shellcheck disable=SC2046
	timeout -k 5 "$RUN_TIMEOUT" smtp-source $(source_args "$2" "$3" "$4" "$5") \
	    "127.0.0.1:${PORT[$srv]}" >"$T/source.out" 2>&1
	rc=$?
	t1=$EPOCHREALTIME
	echo "$rc $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f", b - a}')"
}

BENCH_T0=$(date +%s)
declare -A GAVE_UP	# case:server -> reason (a timeout: no more runs)

# A run that shared the CPUs with somebody else's processes (a test suite
# on the same machine) is run once more: "busy elsewhere" means processes
# outside the bench used more than FOREIGN_MAX of one CPU over the run
# (and at least 0.1 CPU s: one clock tick is 10 ms).
FOREIGN_MAX=0.15

# One measured run: writes a line to runs.csv (the columns are in
# load_cases); cpu_* are CPU seconds during the run (scripts/bench/cpusnap.py).
measure() {		# case sessions size mode count server rep
	local c=$1 s=$2 size=$3 mode=$4 n=$5 srv=$6 rep=$7 before after res rc secs
	local rate delivered note cpu attempt retried=""
	if [ -n "${GAVE_UP[$c:$srv]:-}" ]; then
		echo "$c,$srv,$rep,skip,,,,,,,,${GAVE_UP[$c:$srv]}" >>"$R/runs.csv"
		return
	fi
	for attempt in 1 2; do
		rate="" delivered="" note=""
		if [ $(( $(date +%s) - BENCH_T0 )) -ge "$MAX_SECONDS" ]; then
			echo "$c,$srv,$rep,skip,,,,,,,,time budget (BENCH_MAX_SECONDS=$MAX_SECONDS) used up" >>"$R/runs.csv"
			return
		fi
		before=$(count_delivered "$srv")
		"$PY" "$B/cpusnap.py" snap "$T/cpu.a" $$ "MAIL_CONFIG=$T/"
		res=$(load_run "$srv" "$s" "$size" "$mode" "$n")
		"$PY" "$B/cpusnap.py" snap "$T/cpu.b" $$ "MAIL_CONFIG=$T/"
		cpu=$("$PY" "$B/cpusnap.py" diff "$T/cpu.a" "$T/cpu.b")
		rc=${res% *}
		secs=${res#* }
		[ "$srv" = postfix ] && postfix_drain
		if [ "$rc" = 0 ]; then
			rate=$(awk -v n="$n" -v t="$secs" 'BEGIN {printf "%.1f", n / t}')
		else
			note=$(tr '\n,' ' ;' <"$T/source.out" | cut -c1-200)
			[ "$rc" = 124 ] && note="timed out after ${RUN_TIMEOUT}s; $note" &&
			    GAVE_UP[$c:$srv]="an earlier run timed out"
		fi
		if [ -n "$before" ]; then
			after=$(count_delivered "$srv")
			# Postfix logs through postlogd: give it a moment to catch up.
			if [ "$srv" = postfix ] && [ $((after - before)) -lt "$n" ]; then
				sleep 0.5
				after=$(count_delivered "$srv")
			fi
			delivered=$((after - before))
			[ "$rc" = 0 ] && [ "$delivered" != "$n" ] &&
			    note="$note delivered $delivered of $n"
		fi
		reset_store "$srv"
		# Every run starts with no dirty data of the previous one.
		timeout 30 sync
		say "  $c $srv run $rep: rc=$rc ${secs}s ${rate:-?} msg/s cpu(foreign kernel ours top)=$cpu${note:+ ($note)}"
		if [ "$rc" = 0 ] && [ "$attempt" = 1 ] && [ "$QUICK" = 0 ] &&
		    awk -v f="${cpu%% *}" -v t="$secs" -v m="$FOREIGN_MAX" 'BEGIN {exit !(f > m * t && f >= 0.1)}'; then
			retried="run again: during the first attempt ($rate msg/s) other processes used ${cpu%% *} CPU s in ${secs} s (most: ${cpu##* })"
			continue
		fi
		break
	done
	set -- $cpu
	[ -n "$retried" ] && note="$retried${note:+; $note}"
	echo "$c,$srv,$rep,$rc,$secs,$rate,$delivered,$1,$2,$3,$4,$note" >>"$R/runs.csv"
}

# ---- the load cases -------------------------------------------------------------

load_cases() {
	local s size mode c n res rate rep srv
	echo "case,server,rep,rc,seconds,rate,delivered,cpu_foreign,cpu_kernel,cpu_ours,foreign_top,note" >"$R/runs.csv"
	printf 'case\tsessions\tsize\tmode\tcount\targs\n' >"$R/cases.tsv"
	for size in 1024 102400; do
		for mode in one many; do
			for s in 1 20 200; do
				c="s$s-$size-$mode"
				if [ "$QUICK" = 1 ]; then
					n=${QUICK_N[$size]}
				else
					# Probe smtp-sink once; size the runs from its rate.
					res=$(load_run sink "$s" "$size" "$mode" "${PROBE[$size]}")
					if [ "${res% *}" = 0 ]; then
						rate=$(awk -v n="${PROBE[$size]}" -v t="${res#* }" 'BEGIN {print n / t}')
						n=$(awk -v r="$rate" -v t="$TARGET_SECS" -v st="${STEP[$size]}" \
						    -v lo="${PROBE[$size]}" -v hi="${CAP[$size]}" 'BEGIN {
							n = int((r * t + st - 1) / st) * st
							if (n < lo) n = lo; if (n > hi) n = hi; print n }')
					else
						n=${PROBE[$size]}
					fi
				fi
				printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$s" "$size" "$mode" "$n" \
				    "$(source_args "$s" "$size" "$mode" "$n")" >>"$R/cases.tsv"
				say "case $c: $n messages per run"
				for rep in $(seq "$RUNS"); do
					for srv in $SERVERS; do
						measure "$c" "$s" "$size" "$mode" "$n" "$srv" "$rep"
					done
				done
			done
		done
	done
}

# ---- idle sessions ------------------------------------------------------------------

idle_one() {		# label pid port count [--tree]
	local label=$1 pid=$2 port=$3 n=$4 out
	shift 4
	out=$("$PY" "$B/idle.py" --port "$port" --count "$n" --pid "$pid" "$@" --deadline 120)
	say "idle $label: $out"
	[ -n "$out" ] || out='{"error": "idle.py printed nothing"}'
	echo "{\"server\": \"$label\", ${out#\{}" >>"$R/idle.jsonl"
}

idle_tests() {
	: >"$R/idle.jsonl"
	# Fresh processes, so "before" is a server that has served nobody yet.
	start_sink idle-sink -m $((IDLE_N + 100))
	idle_one sink "${PID[idle-sink]}" "${PORT[idle-sink]}" "$IDLE_N"
	stop_child idle-sink

	start_luasmtpd idle-lua "$B/discard.lua"
	idle_one lua-a "${PID[idle-lua]}" "${PORT[idle-lua]}" "$IDLE_N"
	stop_child idle-lua

	start_postfix idle-postfix
	sleep 1		# let qmgr and postlogd settle
	idle_one postfix "$(postfix_master_pid idle-postfix)" "${PORT[idle-postfix]}" \
	    "$IDLE_PF" --tree --batch 50 --settle 2
	postfix_stop "${SRVDIR[idle-postfix]}"
}

# ---- hook overhead ----------------------------------------------------------------

vrfy_tests() {
	local mode rep out
	: >"$R/vrfy.jsonl"
	for mode in none accept sleep; do
		start_luasmtpd "vrfy-$mode" "$B/vrfy.lua" -D vrfy="$mode"
		for rep in $(seq "$VRFY_RUNS"); do
			out=$("$PY" "$B/vrfy.py" --port "${PORT[vrfy-$mode]}" --count "$VRFY_N" --deadline 60)
			say "vrfy $mode run $rep: $out"
			[ -n "$out" ] || out='{"error": "vrfy.py printed nothing"}'
			echo "{\"mode\": \"$mode\", \"rep\": $rep, ${out#\{}" >>"$R/vrfy.jsonl"
		done
		stop_child "vrfy-$mode"
	done
}

# ---- logs: warnings and errors the servers wrote --------------------------------------

log_summary() {
	local f label n
	: >"$R/logs.tsv"
	for f in "$T"/*/server.log "$T"/*/maillog "$T"/*/dovecot.log "$T"/*/sink.log \
	    "$T"/*/dovecot.out; do
		[ -f "$f" ] || continue
		label=${f#"$T"/}
		n=$(grep -c -E ' (warn|error) |warning:|fatal:|panic:|Error:|Fatal:|Panic:' "$f")
		printf '%s\t%s\t%s\n' "$label" "$n" \
		    "$(grep -m3 -E ' (warn|error) |warning:|fatal:|panic:|Error:|Fatal:|Panic:' "$f" |
		    cut -c1-240 | tr '\t\n' '  ')" >>"$R/logs.tsv"
	done
}

# ---- main -------------------------------------------------------------------------------

say "temp dir $T; quick=$QUICK runs=$RUNS"
machine
start_sink sink
start_postfix postfix
start_luasmtpd lua-a "$B/discard.lua"
mkdir -p "$T/lua-b/mail"
start_luasmtpd lua-b "$B/maildir.lua" -D maildir="$T/lua-b/mail"
start_dovecot dovecot
start_luasmtpd lua-c "$B/lmtp.lua" -D lmtp="unix:$T/dovecot/lmtp.sock"
check_loopback
{
	for n in sink postfix lua-a lua-b lua-c dovecot; do
		printf '%s\t%s\n' "$n" "${SRVCMD[$n]//$T/\$T}"
	done
} >"$R/servers.tsv"

load_cases
for n in lua-c lua-b lua-a; do stop_child "$n"; done
stop_child dovecot
stop_child sink
postfix_stop "${SRVDIR[postfix]}"

idle_tests
vrfy_tests
for n in idle-sink idle-lua idle-postfix; do
	[ -n "${SRVCMD[$n]:-}" ] && printf '%s\t%s\n' "$n" "${SRVCMD[$n]//$T/\$T}" >>"$R/servers.tsv"
done
log_summary
printf 'load_end\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$R/machine.tsv"
printf 'busy_end\t%s\n' "$(cpu_busy)" >>"$R/machine.tsv"
printf 'elapsed\t%s\n' "$(( $(date +%s) - BENCH_T0 ))" >>"$R/machine.tsv"

"$PY" "$B/report.py" "$R" >"$T/report.md" || die "report.py failed"
mv "$T/report.md" "$OUT"
say "wrote $OUT in $(( $(date +%s) - BENCH_T0 )) s"
