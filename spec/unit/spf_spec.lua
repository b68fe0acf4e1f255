-- spf_spec.lua — SPF (src/mailauth/spf.c, libspf2 on the CPU pool, its DNS
-- through src/dns) against the real zones of spec/fixtures/dns/spf.test.zone
-- served by NSD (spec/support/dns.lua): every result kind, include and
-- redirect, macros and exp, the 10-term and void-lookup limits across
-- includes, IPv6, the Received-SPF text and its quoting, the CVE-2023-42118
-- guard, a check on a zone that never answers timing out while the loop keeps
-- running, and cancel.  The C driver is spec/c/test_spf.c.  #dns #spf

local cdriver = require "spec.support.cdriver"
local dns = require "spec.support.dns"

local peer
cdriver.describe(describe, it, "SPF (src/mailauth/spf.c) against NSD #spf", "test_spf", function()
  peer = dns.start{}
  return peer.env
end, function()
  if peer then peer:stop() end
end)
