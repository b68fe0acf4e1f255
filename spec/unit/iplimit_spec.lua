-- iplimit_spec.lua — the C unit driver spec/c/test_iplimit.c (per-client
-- connection counts: IPv4 per address, IPv6 per /64, IPv4-mapped as IPv4),
-- one `it` per case, read like spec/unit/c_units_spec.lua reads its drivers.
-- Built by `make build/test/test_iplimit` under ASan and UBSan.
local H = require "spec.helpers"

local path = H.root .. "/build/test/test_iplimit"
local out, status = H.sh(H.q(path))

describe("C unit driver test_iplimit", function()
  it("is built, exits 0 and has no sanitizer report", function()
    assert(H.read_file(path), path .. " is missing: make build/test/test_iplimit")
    assert.equals(0, status, out)
    assert.is_nil(out:find("runtime error:", 1, true), out)
    assert.is_nil(out:find("Sanitizer", 1, true), out)
    assert.truthy(out:find("^ok ") or out:find("\nok "), out)
  end)

  for line in out:gmatch("[^\n]+") do
    local name = line:match("^ok (.+)$")
    local bad, detail = line:match("^not ok ([^:]+): (.*)$")
    if name or bad then
      it(name or bad, function() assert(name, detail) end)
    end
  end
end)
