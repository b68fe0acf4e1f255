-- dns_spec.lua — the resolver of src/dns (libunbound on the event loop)
-- against a real authoritative server: spec/support/dns.lua starts NSD with
-- the zones of spec/fixtures/dns/ (two of them DNSSEC-signed), and the C
-- driver spec/c/test_dns.c (ASan, UBSan, LeakSanitizer) resolves through it:
-- every record type, rcode, the secure and bogus flags, MX/DNSBL/FCrDNS
-- data, a zone that never answers timing out alone while other queries
-- complete, cancel, and dns_query_wait() from threads.  #dns

local cdriver = require "spec.support.cdriver"
local dns = require "spec.support.dns"

local peer
cdriver.describe(describe, it, "resolver (src/dns) against NSD #dns", "test_dns", function()
  peer = dns.start{}
  return peer.env
end, function()
  if peer then peer:stop() end
end)
