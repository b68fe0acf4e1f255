-- proxy_spec.lua — the C unit driver spec/c/test_proxy.c: the PROXY
-- protocol v1/v2 header parser (src/net/proxy.c) and the trusted-proxy
-- address list (src/net/cidr.c), one `it` per case, under ASan and UBSan.
-- Built by `make build/test/test_proxy`; the wire side is
-- spec/e2e/50-proxy_spec.lua.
local cdriver = require "spec.support.cdriver"

cdriver.describe(describe, it, "C unit driver test_proxy #proxy", "test_proxy",
  function() return "" end)
