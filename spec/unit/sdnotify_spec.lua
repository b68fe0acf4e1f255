-- sdnotify_spec.lua — the C unit driver spec/c/test_sdnotify.c: the
-- sd_notify(3) datagram of src/util/sdnotify.c (path and abstract
-- sockets, the sun_path bound at n-1/n/n+1, refused addresses and states,
-- a full receiver that must not block the start), one `it` per case.
-- Built by `make build/test/test_sdnotify` under ASan and UBSan.  What the
-- server sends when it runs is checked in spec/e2e/40-install_spec.lua.
local cdriver = require "spec.support.cdriver"

cdriver.describe(describe, it, "C unit driver test_sdnotify", "test_sdnotify",
  function() return "" end)
