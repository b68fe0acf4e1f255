# luasmtpd — build, run and test.
#
#   make          build build/luasmtpd
#   make run      build and start the server with examples/default.lua
#   make test     every test suite; the last line is "N passed, N failed"
#   make fuzz     every libFuzzer target for FUZZ_SECONDS (default 60) each
#   make install  [PREFIX=/usr/local] [DESTDIR=] (see "make install" below)
#   make uninstall
#   make clean
#
# Missing Debian packages are installed first (scripts/deps.sh): with
# apt-get as root, otherwise the exact command is printed.

VERSION    = 0.1.0
CC        ?= cc
BUILD      = build
PKGS       = luajit openssl hiredis lmdb libcurl opendkim libpcre2-8
# libunbound has no usable .pc on Debian 12 (it requires libevent.pc), so it
# is linked by name below, like libspf2 and libopendmarc which ship none.

# Deferred (=): pkg-config must run after scripts/deps.sh installed it.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS))

WARN       = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
             -Wmissing-prototypes -Wpointer-arith -Wno-unused-parameter \
             -Wno-format-truncation -Wno-unknown-warning-option
OPT       ?= -O2 -g
# Hardening (Debian's dpkg-buildflags and more): a stack overflow aborts
# instead of reaching a return address, FORTIFY turns an overflowing
# memcpy/snprintf into an abort, PIE + full RELRO + BIND_NOW leave no
# writable GOT.  spec/unit/hardening_spec.lua checks the built binary.
# The sanitizer build (below) sets FORTIFY= because ASan replaces the
# fortified functions with its own checks.
FORTIFY   ?= -D_FORTIFY_SOURCE=2
HARDEN     = -fstack-protector-strong -fstack-clash-protection \
             -fcf-protection -fPIE -Wformat -Werror=format-security
HARDEN_LD  = -pie -Wl,-z,relro,-z,now -Wl,-z,noexecstack
CFLAGS     = -std=c11 $(OPT) $(WARN) $(HARDEN) -fno-strict-aliasing
# Where the binary finds lua/luasmtpd/*.lua (LUASMTPD_LUA_DIR overrides it
# at run time): the tree's lua/ for development, $(LUADIR) for the binary
# `make install` builds in $(BUILD)/install.
LUA_DIR    = $(CURDIR)/lua
CPPFLAGS   = -D_GNU_SOURCE -Isrc $(PKG_CFLAGS) $(FORTIFY) \
             -DLUASMTPD_VERSION='"$(VERSION)"' \
             -DLUASMTPD_LUA_DIR='"$(LUA_DIR)"'
LDLIBS     = $(PKG_LIBS) -lunbound -lspf2 -lopendmarc -lev -lresolv -lpthread -lm -lcrypt

SRCS      := $(shell find src -name '*.c' | sort)
OBJS       = $(SRCS:src/%.c=$(BUILD)/obj/%.o)

.PHONY: all run test fuzz clean deps-build deps-run deps-test FORCE bench \
        install uninstall

all: $(BUILD)/luasmtpd

deps-build:
	@scripts/deps.sh build

deps-run:
	@scripts/deps.sh run

deps-test:
	@scripts/deps.sh test

$(BUILD)/obj/%.o: src/%.c | deps-build
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/luasmtpd: $(OBJS)
	$(CC) $(CFLAGS) $(HARDEN_LD) -o $@ $(OBJS) $(LDLIBS)

# LUA_DIR is compiled into lua_vm.o only: the stamp changes (and lua_vm.o
# is rebuilt) exactly when LUA_DIR does, e.g. on an install to another
# PREFIX.
$(BUILD)/lua_dir.stamp: FORCE
	@mkdir -p $(dir $@)
	@echo '$(LUA_DIR)' | cmp -s - $@ || echo '$(LUA_DIR)' > $@
$(BUILD)/obj/lua/lua_vm.o: $(BUILD)/lua_dir.stamp

-include $(OBJS:.o=.d)

# ---- make run: the embedded default, everything under the work tree ----
# RUN_ARGS adds options, e.g. make run RUN_ARGS="-D listen=127.0.0.1:2626"
RUN_ARGS  ?=
run: deps-run $(BUILD)/luasmtpd
	@mkdir -p var/mail var/spool
	exec $(BUILD)/luasmtpd -c examples/default.lua $(RUN_ARGS)

# ---- tests: C units under ASan+UBSan, then the busted specs ----
SAN        = -fsanitize=address,undefined -fno-omit-frame-pointer \
             -fno-sanitize-recover=all
UNIT_SRCS  = src/smtp/smtp_parse.c src/smtp/smtp_data.c src/deliver/reply_parse.c
UNITS      = test_parse test_data test_reply test_iplimit

$(BUILD)/test/%: spec/c/%.c $(UNIT_SRCS) spec/c/unit.h | deps-build
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Ispec/c $(CFLAGS) -O1 $(SAN) -o $@ $< $(UNIT_SRCS)

# Drivers of other modules name their own sources (run by their own spec,
# e.g. spec/unit/iplimit_spec.lua).
IPLIMIT_SRCS = src/net/iplimit.c src/util/xmalloc.c src/util/log.c
$(BUILD)/test/test_iplimit: spec/c/test_iplimit.c $(IPLIMIT_SRCS) spec/c/unit.h \
    | deps-build
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Ispec/c $(CFLAGS) -O1 $(SAN) -o $@ $< $(IPLIMIT_SRCS)

# The PROXY protocol parser and the trusted-proxy list (spec/unit/proxy_spec.lua).
PROXY_SRCS = src/net/proxy.c src/net/cidr.c
$(BUILD)/test/test_proxy: spec/c/test_proxy.c $(PROXY_SRCS) src/net/proxy.h \
    src/net/cidr.h spec/c/unit.h | deps-build
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Ispec/c $(CFLAGS) -O1 $(SAN) -o $@ $< $(PROXY_SRCS)

# ---- fault injection for commit-path specs (spec/fixtures/faultinject) ----
# faultinject.so is an LD_PRELOAD shim (usage in its file header).  It
# defines open(), write() & co. itself, so it is built without FORTIFY and
# without _FILE_OFFSET_BITS: both would rename or inline the very functions
# it replaces.  The probe is built like the server, and once with ASan, to
# prove the shim reaches what they call (spec/unit/faultinject_spec.lua).
FI_DIR     = spec/fixtures/faultinject
FAULTINJECT = $(BUILD)/test/faultinject.so $(BUILD)/test/faultinject-probe \
             $(BUILD)/test/faultinject-probe-asan

$(BUILD)/test/faultinject.so: $(FI_DIR)/faultinject.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -g $(WARN) -fPIC -shared -o $@ $< \
	    -ldl -lpthread

$(BUILD)/test/faultinject-probe: $(FI_DIR)/probe.c | deps-build
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(HARDEN_LD) -o $@ $<

$(BUILD)/test/faultinject-probe-asan: $(FI_DIR)/probe.c | deps-build
	@mkdir -p $(dir $@)
	$(CC) $(filter-out $(FORTIFY),$(CPPFLAGS)) $(CFLAGS) -O1 $(SAN) -o $@ $<

# The sd_notify(3) datagram (spec/unit/sdnotify_spec.lua runs it).
SDNOTIFY_SRCS = src/util/sdnotify.c src/util/log.c
$(BUILD)/test/test_sdnotify: spec/c/test_sdnotify.c $(SDNOTIFY_SRCS) \
    src/util/sdnotify.h spec/c/unit.h | deps-build
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Ispec/c $(CFLAGS) -O1 $(SAN) -o $@ $< $(SDNOTIFY_SRCS)

# The metrics (src/metrics): counters, histograms, the exposition, shards
# across fork(2) and threads; spec/unit/metrics_spec.lua runs the driver.
METRICS_SRCS = src/metrics/metrics.c src/metrics/metrics_table.c \
             src/util/buf.c src/util/log.c src/util/xmalloc.c
$(BUILD)/test/test_metrics: spec/c/test_metrics.c $(METRICS_SRCS) \
    src/metrics/metrics.h spec/c/unit.h | deps-build
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Ispec/c $(CFLAGS) -O1 $(SAN) -o $@ $< \
	    $(METRICS_SRCS) -lpthread -lm

# The HTTP client drivers: src/http/ with libev and libcurl, under ASan+UBSan
# (LeakSanitizer included); spec/unit/http_spec.lua runs them (test_http
# against nginx, test_http_wire against canned answers).
HTTP_SRCS  = src/http/http.c src/http/http_easy.c src/util/log.c \
             src/util/xmalloc.c
HTTP_HDRS  = src/http/http.h src/http/http_internal.h spec/c/unit.h \
             spec/c/http_driver.h

HTTP_UNITS = test_http test_http_wire

$(HTTP_UNITS:%=$(BUILD)/test/%): $(BUILD)/test/%: spec/c/%.c $(HTTP_SRCS) \
    $(HTTP_HDRS) | deps-build
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Ispec/c $(CFLAGS) -O1 $(SAN) -o $@ $< $(HTTP_SRCS) \
	    $$(pkg-config --libs libcurl) -lev -lm
# The kv store's drivers link the store, its util files and the libraries;
# spec/unit/kv_spec.lua runs them (with a real redis-server).
KV_SRCS    = src/kv/kv.c src/kv/kv_lmdb.c src/kv/kv_redis.c src/util/log.c \
             src/util/xmalloc.c src/util/workq.c src/util/fsutil.c
KV_UNITS   = test_kv_lmdb test_kv_redis

$(KV_UNITS:%=$(BUILD)/test/%): $(BUILD)/test/%: spec/c/%.c $(KV_SRCS) \
    src/kv/kv.h src/kv/kv_int.h spec/c/kv_harness.h spec/c/test_kv_fake.h \
    spec/c/unit.h | deps-build
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Ispec/c $(CFLAGS) -O1 $(SAN) -o $@ $< $(KV_SRCS) \
	    $(LDLIBS)
# Drivers against real peers (spec/support/dns.lua), run by their own specs
# (spec/unit/dns_spec.lua, spf_spec.lua): the resolver and SPF with their
# libraries, under the same sanitizers, LeakSanitizer included.
DNS_SRCS   = $(wildcard src/dns/*.c) src/util/log.c src/util/xmalloc.c
SPF_SRCS   = $(DNS_SRCS) $(wildcard src/mailauth/spf*.c) src/util/workq.c
PEER_UNITS = test_dns test_spf
PEER_DEPS  = spec/c/unit.h spec/c/dns_test_util.h $(wildcard src/dns/*.h) \
             $(wildcard src/mailauth/spf*.h) src/util/workq.h

$(BUILD)/test/test_dns: spec/c/test_dns.c $(DNS_SRCS) $(PEER_DEPS) | deps-build
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Ispec/c $(CFLAGS) -O1 $(SAN) -o $@ $< $(DNS_SRCS) \
	    -lunbound -lev -lresolv -lpthread

$(BUILD)/test/test_spf: spec/c/test_spf.c $(SPF_SRCS) $(PEER_DEPS) | deps-build
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Ispec/c $(CFLAGS) -O1 $(SAN) -o $@ $< $(SPF_SRCS) \
	    -lspf2 -lunbound -lev -lresolv -lpthread

# The privacy building blocks (src/privacy): the sealed spool format and
# S/MIME encryption with OpenSSL's libcrypto, under ASan+UBSan (LeakSanitizer
# included); spec/unit/privacy_spec.lua runs them (test_cms with the openssl
# command-line tool, which decrypts what it wrote).
SEALED_SRCS = src/privacy/sealed_file.c src/util/fsutil.c
CMS_SRCS   = src/privacy/cms_encrypt.c src/privacy/cms_recips.c \
             $(SEALED_SRCS)
PRIVACY_HDRS = $(wildcard src/privacy/*.h) spec/c/unit.h
PRIVACY_UNITS = test_sealed test_cms

$(BUILD)/test/test_sealed: spec/c/test_sealed.c $(SEALED_SRCS) \
    $(PRIVACY_HDRS) | deps-build
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Ispec/c $(CFLAGS) -O1 $(SAN) -o $@ $< \
	    $(SEALED_SRCS) -lcrypto

$(BUILD)/test/test_cms: spec/c/test_cms.c $(CMS_SRCS) $(PRIVACY_HDRS) \
    | deps-build
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Ispec/c $(CFLAGS) -O1 $(SAN) -o $@ $< \
	    $(CMS_SRCS) -lcrypto -lpthread
# Message authentication drivers (spec/unit/dkim_spec.lua, dmarc_spec.lua,
# authres_spec.lua): src/mailauth/ with the resolver and the CPU pool,
# against the NSD peer and dkimpy, under the same sanitizers.
MAILAUTH_SRCS = $(DNS_SRCS) $(wildcard src/mailauth/*.c) src/util/workq.c
MAILAUTH_UNITS = test_dkim test_dkim_stream test_dmarc test_authres
MAILAUTH_DEPS = $(PEER_DEPS) $(wildcard src/mailauth/*.h) \
             spec/c/dkim_test_util.h

$(MAILAUTH_UNITS:%=$(BUILD)/test/%): $(BUILD)/test/%: spec/c/%.c \
    $(MAILAUTH_SRCS) $(MAILAUTH_DEPS) | deps-build
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Ispec/c $(CFLAGS) -O1 $(SAN) -o $@ $< \
	    $(MAILAUTH_SRCS) $$(pkg-config --libs opendkim libcrypto) \
	    -lopendmarc -lspf2 -lunbound -lev -lresolv -lpthread

# ---- fuzzing (libFuzzer, clang): make fuzz [FUZZ_SECONDS=60] ----
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = $(patsubst spec/fuzz/%.c,%,$(wildcard spec/fuzz/*.c))
FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined \
             -fno-sanitize-recover=all

$(BUILD)/fuzz/%: spec/fuzz/%.c $(UNIT_SRCS) | deps-test
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -std=c11 $(FUZZ_FLAGS) -o $@ $< $(UNIT_SRCS)

# The DNS reply parser needs its own sources and glibc's libresolv.
DNS_FUZZ_SRCS = src/dns/dns_parse.c src/util/xmalloc.c src/util/log.c
$(BUILD)/fuzz/fuzz_dns_packet: spec/fuzz/fuzz_dns_packet.c $(DNS_FUZZ_SRCS) \
    src/dns/dns.h src/dns/dns_int.h | deps-test
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -std=c11 $(FUZZ_FLAGS) -o $@ $< $(DNS_FUZZ_SRCS) -lresolv

# The PROXY header parser: pure, its own source.
$(BUILD)/fuzz/fuzz_proxy: spec/fuzz/fuzz_proxy.c src/net/proxy.c \
    src/net/proxy.h | deps-test
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -std=c11 $(FUZZ_FLAGS) -o $@ $< src/net/proxy.c

fuzz: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/%)
	scripts/fuzz.sh $(FUZZ_SECONDS)

# ---- the server built with ASan+UBSan for one e2e pass in make test ----
# FORCE: the sub-make tracks header dependencies itself.
$(BUILD)/asan/luasmtpd: FORCE | deps-build
	$(MAKE) --no-print-directory BUILD=$(BUILD)/asan FORTIFY= \
	    OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
	    -fno-sanitize-recover=undefined" $(BUILD)/asan/luasmtpd

# Each module's drivers add themselves with a line `test: their targets`.
test: deps-test $(BUILD)/luasmtpd $(BUILD)/asan/luasmtpd \
    $(UNITS:%=$(BUILD)/test/%) $(FUZZ_TARGETS:%=$(BUILD)/fuzz/%)
	@scripts/test.sh
test: $(FAULTINJECT)
test: $(HTTP_UNITS:%=$(BUILD)/test/%)
test: $(KV_UNITS:%=$(BUILD)/test/%)
test: $(PEER_UNITS:%=$(BUILD)/test/%)
test: $(BUILD)/test/test_sdnotify $(BUILD)/install/luasmtpd
test: $(PRIVACY_UNITS:%=$(BUILD)/test/%)
test: $(MAILAUTH_UNITS:%=$(BUILD)/test/%)
test: $(BUILD)/test/test_proxy
test: $(BUILD)/test/test_metrics

FORCE:

# ---- make bench: luasmtpd vs Postfix and smtp-sink -> BENCHMARKS.md ----
# Not part of make test.  BENCH_QUICK=1 make bench is a ~2 minute smoke run.
bench: deps-test $(BUILD)/luasmtpd
	scripts/bench.sh

# ---- make install / make uninstall ----
# PREFIX is where the files will live, DESTDIR a staging root prepended to
# every path (packaging):  make install DESTDIR=/tmp/stage PREFIX=/usr
#
#   $(SBINDIR)/luasmtpd                       the server
#   $(LUADIR)/luasmtpd/*.lua                  its Lua modules (compiled in)
#   $(LUADIR)/luasmtpd/policy/*.lua           the ready policies
#   $(EXAMPLESDIR)/                           the example configs
#   $(MANDIR)/man8/luasmtpd.8, man5/luasmtpd.conf.5
#   $(UNITDIR)/luasmtpd.service               the systemd unit
#
# The installed binary is built apart, in $(BUILD)/install, with
# LUA_DIR=$(LUADIR), so it runs from any directory and `make` keeps
# building the development binary that uses the tree's lua/.  The man
# pages and the unit get the real paths substituted for @SBINDIR@ and
# the like.  Nothing is written to $(SYSCONFDIR): the unit reads
# $(SYSCONFDIR)/luasmtpd/luasmtpd.lua, which the administrator writes
# (from an example).  $(DATADIR) belongs to luasmtpd alone; uninstall
# removes it whole.
# PREFIX and DESTDIR may come from the environment, as usual; the others
# only from the command line (make install UNITDIR=/etc/systemd/system).
PREFIX     ?= /usr/local
DESTDIR    ?=
SBINDIR     = $(PREFIX)/sbin
DATADIR     = $(PREFIX)/share/luasmtpd
LUADIR      = $(DATADIR)/lua
EXAMPLESDIR = $(DATADIR)/examples
MANDIR      = $(PREFIX)/share/man
UNITDIR     = $(PREFIX)/lib/systemd/system
SYSCONFDIR  = /etc
INSTALL     = install

SUBST      = sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@LUADIR@|$(LUADIR)|g' \
             -e 's|@EXAMPLESDIR@|$(EXAMPLESDIR)|g' \
             -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@VERSION@|$(VERSION)|g'

$(BUILD)/install/luasmtpd: FORCE | deps-build
	$(MAKE) --no-print-directory BUILD=$(BUILD)/install LUA_DIR=$(LUADIR) \
	    $(BUILD)/install/luasmtpd

install: $(BUILD)/install/luasmtpd
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LUADIR)/luasmtpd/policy \
	    $(DESTDIR)$(EXAMPLESDIR) $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(UNITDIR)
	$(INSTALL) -m 0755 $(BUILD)/install/luasmtpd $(DESTDIR)$(SBINDIR)/luasmtpd
	$(INSTALL) -m 0644 lua/luasmtpd/*.lua $(DESTDIR)$(LUADIR)/luasmtpd/
	$(INSTALL) -m 0644 lua/luasmtpd/policy/*.lua $(DESTDIR)$(LUADIR)/luasmtpd/policy/
	$(INSTALL) -m 0644 examples/* $(DESTDIR)$(EXAMPLESDIR)/
	$(SUBST) src/man/luasmtpd.8 > $(BUILD)/install/luasmtpd.8
	$(SUBST) src/man/luasmtpd.conf.5 > $(BUILD)/install/luasmtpd.conf.5
	$(SUBST) src/systemd/luasmtpd.service > $(BUILD)/install/luasmtpd.service
	$(INSTALL) -m 0644 $(BUILD)/install/luasmtpd.8 $(DESTDIR)$(MANDIR)/man8/
	$(INSTALL) -m 0644 $(BUILD)/install/luasmtpd.conf.5 $(DESTDIR)$(MANDIR)/man5/
	$(INSTALL) -m 0644 $(BUILD)/install/luasmtpd.service $(DESTDIR)$(UNITDIR)/

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/luasmtpd $(DESTDIR)$(MANDIR)/man8/luasmtpd.8 \
	    $(DESTDIR)$(MANDIR)/man5/luasmtpd.conf.5 \
	    $(DESTDIR)$(UNITDIR)/luasmtpd.service
	@case '$(DATADIR)' in \
	*/luasmtpd) echo "rm -rf $(DESTDIR)$(DATADIR)"; \
	    rm -rf '$(DESTDIR)$(DATADIR)' ;; \
	*) echo "uninstall: DATADIR=$(DATADIR) does not end in /luasmtpd;" \
	    "not removing it" >&2; exit 1 ;; \
	esac

clean:
	rm -rf $(BUILD)
