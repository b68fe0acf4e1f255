#!/bin/sh
# deps.sh — make sure the Debian packages a target needs are installed.
#
#   scripts/deps.sh build   compiler and libraries (make)
#   scripts/deps.sh run     + swaks with its TLS modules (make run's README
#                           example: swaks -tls needs Net::SSLeay)
#   scripts/deps.sh test    + busted, peers and clients the tests start
#
# As root, missing packages are installed with apt-get.  Otherwise the
# exact command is printed and the script fails, so nothing is skipped.
set -eu

# One package per line: branches that add one do not conflict.
build_pkgs="
gcc
make
pkg-config
libluajit-5.1-dev
libev-dev
libssl-dev
libspf2-dev
libpcre2-dev
libunbound-dev
libhiredis-dev
liblmdb-dev
libcurl4-openssl-dev
libopendkim-dev
libopendmarc-dev
publicsuffix
openssl
lua-rex-pcre2
lua-cjson
lua-filesystem
"
run_pkgs="$build_pkgs
swaks
libnet-ssleay-perl
libio-socket-ssl-perl
"
test_pkgs="$run_pkgs
luajit
lua-busted
lua-socket
lua-sec
python3
python3-dkim
python3-prometheus-client
postfix
dovecot-core
dovecot-lmtpd
haproxy
redis-server
nginx-light
nsd
ldnsutils
libclang-rt-14-dev
clang
procps
binutils
man-db
groff-base
bsdextrautils
systemd
"

case "${1:-build}" in
build) want=$build_pkgs ;;
run)   want=$run_pkgs ;;
test)  want=$test_pkgs ;;
*) echo "usage: $0 build|run|test" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$status" in
	*"install ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0

cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" != 0 ]; then
	echo "luasmtpd: missing Debian packages:$missing" >&2
	echo "luasmtpd: run as root:  apt-get update && $cmd" >&2
	exit 1
fi
echo "luasmtpd: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# Postfix asks how to configure itself; we only want its tools.
echo "postfix postfix/main_mailer_type select No configuration" |
	debconf-set-selections
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
