-- authres_spec.lua — the Authentication-Results field (RFC 8601) of
-- src/mailauth/authres.c: built from SPF, DKIM, DMARC and iprev results and
-- checked octet by octet (quoting, comments, folding, the size cap), and
-- the authserv-id read back from existing fields (RFC 8601 §5).  The C
-- driver is spec/c/test_authres.c; it needs no peer.  #authres

local cdriver = require "spec.support.cdriver"

cdriver.describe(describe, it, "Authentication-Results (src/mailauth/authres.c) #authres",
  "test_authres", function() return "" end)
