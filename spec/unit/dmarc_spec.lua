-- dmarc_spec.lua — DMARC (src/mailauth/dmarc.c: the record through
-- src/dns, parsed by libopendmarc, alignment and disposition) against the
-- records of spec/fixtures/dns/dmarc.test.zone served by NSD
-- (spec/support/dns.lua): p=none, quarantine and reject, pct, sp, strict
-- and relaxed alignment of SPF and DKIM, organizational domains from
-- Debian's public suffix list, malformed and duplicate records, SERVFAIL
-- and timeouts.  The C driver is spec/c/test_dmarc.c; it gets Debian's list
-- with "test" and "dmarc.test" added, so that the test zones have
-- organizational domains of their own.  #dns #dmarc

local cdriver = require "spec.support.cdriver"
local dns = require "spec.support.dns"
local H = require "spec.helpers"

local PSL = "/usr/share/publicsuffix/public_suffix_list.dat"

local peer, dir
cdriver.describe(describe, it, "DMARC (src/mailauth/dmarc.c) against NSD #dmarc", "test_dmarc", function()
  local list = assert(H.read_file(PSL), "no public suffix list at " .. PSL .. " (Debian publicsuffix)")
  dir = (H.sh("mktemp -d /tmp/luasmtpd-dmarc.XXXXXX"):gsub("%s+$", ""))
  local psl = dir .. "/psl.dat"
  H.write_file(psl, list .. "\n// luasmtpd tests\ntest\ndmarc.test\n")
  peer = dns.start{}
  return peer.env .. " DMARC_TEST_PSL=" .. H.q(psl)
end, function()
  if peer then peer:stop() end
  if dir then H.sh("rm -rf " .. H.q(dir)) end
end)
