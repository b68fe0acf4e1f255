-- dkim_spec.lua — DKIM (src/mailauth/dkim*.c, libopendkim on the CPU pool,
-- key lookups through src/dns) against the keys of
-- spec/fixtures/dns/dkim.test.zone served by NSD (spec/support/dns.lua) and
-- an independent implementation, Python's dkimpy (Debian python3-dkim):
--   spec/c/test_dkim.c         signatures of both key types and both
--                              canonicalizations verified both ways, changed
--                              headers and bodies, key sizes and records, DNS
--                              failures, rsa-sha1, l=, the caps
--   spec/c/test_dkim_stream.c  a 25 MB message verified with bounded memory
--                              while a loop timer keeps firing, the spool
--                              read-back, cancel and timeouts
-- #dns #dkim

local cdriver = require "spec.support.cdriver"
local dns = require "spec.support.dns"

for _, driver in ipairs{ "test_dkim", "test_dkim_stream" } do
  local peer
  cdriver.describe(describe, it, "DKIM (src/mailauth) " .. driver .. " #dkim", driver, function()
    peer = dns.start{}
    return peer.env
  end, function()
    if peer then peer:stop() end
  end)
end
