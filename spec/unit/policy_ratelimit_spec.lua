-- policy_ratelimit_spec.lua — luasmtpd.policy.ratelimit on a fake store
-- (GCRA on a fake clock): rates and bursts, the reply with the time to
-- wait, what each `by` counts, exemptions, the store failing, and option
-- checks.  Two nodes on a real Redis are in spec/e2e/60-policies_spec.lua.

local fakes = require "spec.support.policy_fakes"

insulate("luasmtpd.policy.ratelimit", function()
  local f = fakes.install()
  local ratelimit = require "luasmtpd.policy.ratelimit"

  it("makes keys of a name and what is counted, cut to 254 bytes", function()
    assert.equals("rl:ip:3/1h:192.0.2.1", ratelimit.key("rl:", "ip:3/1h", "192.0.2.1"))
    assert.is_nil(ratelimit.key("rl:", "x", nil))
    assert.equals(#"rl:x:" + 254, #ratelimit.key("rl:", "x", ("a"):rep(400)))
  end)

  it("allows the burst, then refuses 451 4.7.1 with the seconds to wait", function()
    local limit = ratelimit.new{ rate = "3/1h" }
    local s = f.session{ remote_ip = "192.0.2.1" }
    assert.same({ nil, 2 }, { limit(s) })
    assert.same({ nil, 1 }, { limit(s) })
    assert.same({ nil, 0 }, { limit(s) })
    local v = limit(s)
    assert.same({ kind = "tempfail", code = 451, ecode = "4.7.1",
      text = "Rate limit exceeded (your address), try again in 1200 seconds" }, v)
    f.clock = f.clock + 1200
    assert.is_nil(limit(s))
    assert.truthy(limit(s))
  end)

  it("counts each address apart, and a network together", function()
    local per_ip = ratelimit.new{ rate = "1/1d", name = "a" }
    local per_net = ratelimit.new{ rate = "1/1d", by = "network", name = "b" }
    assert.is_nil(per_ip(f.session{ remote_ip = "198.51.100.1" }))
    assert.is_nil(per_ip(f.session{ remote_ip = "198.51.100.2" }))
    assert.is_nil(per_net(f.session{ remote_ip = "198.51.100.1" }))
    local v = per_net(f.session{ remote_ip = "198.51.100.2" })
    assert.truthy(v.text:find("(your network)", 1, true), v.text)
  end)

  it("takes a burst apart from the rate", function()
    local limit = ratelimit.new{ rate = "1/1m", burst = 1, code = 450, name = "burst" }
    local s = f.session{ remote_ip = "203.0.113.1" }
    assert.is_nil(limit(s))
    local v = limit(s)
    assert.equals(450, v.code)
    assert.truthy(v.text:find("in 60 seconds", 1, true), v.text)
  end)

  it("counts per sender (lower-cased, never <>) and per user (only after AUTH)", function()
    local per_sender = ratelimit.new{ rate = "1/1h", by = "sender" }
    local per_user = ratelimit.new{ rate = "1/1h", by = "user" }
    assert.is_nil(per_sender(f.session{ sender = "Bulk@remote.example" }))
    local v = per_sender(f.session{ remote_ip = "203.0.113.9", sender = "bulk@REMOTE.example" })
    assert.truthy(v.text:find("(this sender)", 1, true))
    assert.is_nil(per_sender(f.session{ sender = "" }))
    assert.is_nil(per_sender(f.session{ sender = "" }))
    assert.is_nil(per_sender(f.session{}))
    assert.is_nil(per_user(f.session{}))
    assert.is_nil(per_user(f.session{ auth = { user = "alice" } }))
    assert.truthy(per_user(f.session{ auth = { user = "alice" } }))
    assert.is_nil(per_user(f.session{ auth = { user = "bob" } }))
  end)

  it("counts what a function returns, and nothing for nil", function()
    local by_helo = ratelimit.new{ rate = "1/1h", by = function(s) return s.helo end }
    assert.is_nil(by_helo(f.session{ helo = "a.example" }))
    assert.truthy(by_helo(f.session{ helo = "a.example" }))
    assert.is_nil(by_helo(f.session{}))
  end)

  it("exempts, and judges the address ip gives", function()
    local limit = ratelimit.new{ rate = "1/1h", name = "ex", exempt_auth = true,
      ip = function(s) return s.data.ip end }
    local s = f.session{ remote_ip = "127.0.0.1" }
    s.data.ip = "192.0.2.200"
    assert.is_nil(limit(s))
    assert.truthy(limit(s))
    assert.truthy(f.store["rl:ex:192.0.2.200"])
    assert.is_nil(limit(f.session{ remote_ip = "192.0.2.200", auth = { user = "u" } }))
  end)

  it("lets mail through when the store fails, or tempfails 451 4.3.0 if asked", function()
    f.down = true
    assert.is_nil(ratelimit.new{ rate = "1/1h" }(f.session{}))
    local v = ratelimit.new{ rate = "1/1h", on_error = "tempfail" }(f.session{})
    f.down = false
    assert.equals("4.3.0", v.ecode)
  end)

  local bad = {
    { {}, "rate is required" },
    { { rate = "100" }, "rate must be N/PERIOD" },
    { { rate = "1/1h", by = "helo" }, 'by must be "ip", "network", "sender", "user"' },
    { { rate = "1/1h", code = 550 }, "code must be a 4xx code" },
    { { rate = "1/1h", ecode = "5.7.1" }, "ecode must be an enhanced code 4.x.x" },
    { { rate = "1/1h", burst = 0 }, "burst must be a positive whole number" },
    { { rate = "2000000/1s" }, "rate is out of range" },
    { { rate = "1/1h", text = "%s" }, "text may hold one %d" },
    { { rate = "1/1h", rtae = 1 }, "unknown option 'rtae'" },
  }
  for _, c in ipairs(bad) do
    it("raises: " .. c[2], function()
      local ok, err = pcall(ratelimit.new, c[1])
      assert.is_false(ok)
      assert.truthy(err:find(c[2], 1, true), err)
    end)
  end
end)
