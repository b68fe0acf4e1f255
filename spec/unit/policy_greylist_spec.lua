-- policy_greylist_spec.lua — luasmtpd.policy.greylist on a fake store and
-- clock: triplet keys, the life of a triplet (new, waiting, passed,
-- expired), auto-allow of a network, exemptions, the store failing, and
-- option checks.  The real store and two nodes are in
-- spec/e2e/60-policies_spec.lua.

local fakes = require "spec.support.policy_fakes"

insulate("luasmtpd.policy.greylist", function()
  local f = fakes.install()
  local greylist = require "luasmtpd.policy.greylist"

  local function session(ip, sender, o)
    o = o or {}
    return f.session{ remote_ip = ip or "192.0.2.1", sender = sender or "a@remote.example",
      auth = o.auth }
  end

  describe("triplet keys", function()
    it("hold the network, the sender and the recipient, normalized", function()
      assert.equals("grey:t:192.0.2.0/24/a@x.example/b@y.example",
        greylist.triplet("grey:", "192.0.2.0/24", "A@X.example", "b@Y.EXAMPLE"))
      assert.equals("g:t:n/<>/b@y", greylist.triplet("g:", "n", "", "b@y"))
      assert.equals("g:t:n/<>/b@y", greylist.triplet("g:", "n", nil, "b@y"))
    end)
    it("drop a BATV tag from the sender, and cut long addresses", function()
      assert.equals("bounce@x.example", greylist.address("prvs=0123abcd=bounce@x.example"))
      assert.equals(254, #greylist.address(("a"):rep(300) .. "@x.example"))
    end)
  end)

  describe("a triplet", function()
    local grey = greylist.new{ delay = 60, retry_window = 3600, pass_ttl = 86400,
      auto_allow = false }

    it("is refused 451 4.7.1 when new and until the delay, then passes", function()
      local s = session("192.0.2.1", "new@remote.example")
      local v, state = grey(s, "rcpt@example.test")
      assert.equals("new", state)
      assert.same({ kind = "tempfail", code = 451, ecode = "4.7.1", text = "Greylisted: " ..
        "first attempt from your network for this sender and recipient, please try " ..
        "again in 60 seconds" }, v)
      f.clock = f.clock + 59.5
      v, state = grey(s, "rcpt@example.test")
      assert.equals("waiting", state)
      assert.truthy(v.text:find("again in 1 seconds", 1, true), v.text)
      f.clock = f.clock + 0.5
      assert.same({ nil, "passed" }, { grey(s, "rcpt@example.test") })
      -- and keeps passing
      f.clock = f.clock + 80000
      assert.same({ nil, "passed" }, { grey(s, "rcpt@example.test") })
      f.clock = f.clock + 80000        -- each use renewed pass_ttl
      assert.same({ nil, "passed" }, { grey(s, "rcpt@example.test") })
    end)

    it("is shared by the addresses of one /24, not by the next /24", function()
      local s1 = session("198.51.100.1", "net@remote.example")
      assert.truthy(grey(s1, "r@example.test"))
      f.clock = f.clock + 61
      assert.is_nil(grey(session("198.51.100.200", "net@remote.example"), "r@example.test"))
      assert.truthy(grey(session("198.51.101.1", "net@remote.example"), "r@example.test"))
    end)

    it("groups IPv6 clients by /64", function()
      assert.truthy(grey(session("2001:db8:1:2::1", "v6@remote.example"), "r@example.test"))
      f.clock = f.clock + 61
      assert.is_nil(grey(session("2001:db8:1:2:ffff::9", "v6@remote.example"), "r@example.test"))
    end)

    it("starts over when the client does not come back within retry_window", function()
      local s = session("203.0.113.1", "late@remote.example")
      assert.truthy(grey(s, "r@example.test"))
      f.clock = f.clock + 3601
      local v, state = grey(s, "r@example.test")
      assert.truthy(v)
      assert.equals("new", state)
    end)

    it("is forgotten pass_ttl after its last use", function()
      local s = session("203.0.113.2", "gone@remote.example")
      grey(s, "r@example.test")
      f.clock = f.clock + 61
      assert.is_nil(grey(s, "r@example.test"))
      f.clock = f.clock + 86401
      assert.equals("new", select(2, grey(s, "r@example.test")))
    end)

    it("starts over on a value it did not write", function()
      local s = session("203.0.113.3", "odd@remote.example")
      f.store["grey:t:203.0.113.0/24/odd@remote.example/r@example.test"] = { value = "junk" }
      assert.equals("new", select(2, grey(s, "r@example.test")))
    end)
  end)

  describe("auto_allow", function()
    it("lets a network through after N passes, for auto_allow_ttl", function()
      local grey = greylist.new{ delay = 10, auto_allow = 2, auto_allow_ttl = 1000 }
      local s = session("192.0.2.77", "auto@remote.example")
      for _, r in ipairs{ "r1@example.test", "r2@example.test" } do
        assert.truthy(grey(s, r))
        f.clock = f.clock + 11
        assert.is_nil(grey(s, r))
      end
      assert.same({ nil, "allowed" }, { grey(s, "r3@example.test") })
      assert.same({ nil, "allowed" },
        { grey(session("192.0.2.1", "x@y.example"), "r4@example.test") })
      f.clock = f.clock + 1001
      assert.equals("new", select(2, grey(s, "r5@example.test")))
    end)
  end)

  describe("exemptions", function()
    it("skips authenticated clients unless exempt_auth = false", function()
      local s = session("192.0.2.8", "auth@remote.example", { auth = { user = "u" } })
      assert.is_nil(greylist.new{}(s, "r@example.test"))
      assert.truthy(greylist.new{ exempt_auth = false }(s, "r@example.test"))
    end)
    it("asks exempt(s, rcpt)", function()
      local grey = greylist.new{ exempt = function(_, rcpt) return rcpt:match("^postmaster@") end }
      local s = session("192.0.2.9", "ex@remote.example")
      assert.is_nil(grey(s, "postmaster@example.test"))
      assert.truthy(grey(s, "other@example.test"))
    end)
    it("has no opinion without a client network (a unix socket)", function()
      assert.is_nil(greylist.new{}(session("unix"), "r@example.test"))
    end)
  end)

  describe("when the store fails", function()
    after_each(function() f.down = false end)
    it("lets mail through and logs (on_error = accept)", function()
      f.down = true
      local logs = #f.logs
      assert.same({ nil, "error" }, { greylist.new{}(session(), "r@example.test") })
      assert.equals(logs + 1, #f.logs)
      assert.truthy(f.logs[#f.logs]:find("unavailable", 1, true))
    end)
    it("tempfails 451 4.3.0 with on_error = tempfail", function()
      f.down = true
      local v = greylist.new{ on_error = "tempfail" }(session(), "r@example.test")
      assert.equals(451, v.code)
      assert.equals("4.3.0", v.ecode)
    end)
  end)

  describe("options", function()
    it("take a reply of their own", function()
      local v = greylist.new{ code = 450, ecode = "4.7.0", text = "wait %d s" }(
        session("192.0.2.10", "o@remote.example"), "r@example.test")
      assert.same({ kind = "tempfail", code = 450, ecode = "4.7.0", text = "wait 300 s" }, v)
      v = greylist.new{ text = "later", prefix = "g2:" }(
        session("192.0.2.10", "o@remote.example"), "r@example.test")
      assert.equals("later", v.text)
    end)
    local bad = {
      { { delay = 0 }, "delay must be a positive whole number" },
      { { delay = 600, retry_window = 600 }, "delay must be shorter than retry_window" },
      { { auto_allow = 0 }, "auto_allow must be a whole number from 1, or false" },
      { { code = 550 }, "code must be a 4xx code" },
      { { text = "%s" }, "text may hold one %d" },
      { { text = "%d %d" }, "text may hold one %d" },
      { { v4_prefix = 33 }, "v4_prefix must be a positive whole number up to 32" },
      { { pass_ttl = 1e12 }, "pass_ttl must be a positive whole number up to" },
      { { on_error = "drop" }, "on_error must be one of accept, tempfail" },
      { { delya = 1 }, "unknown option 'delya'" },
    }
    for _, c in ipairs(bad) do
      it("raise: " .. c[2], function()
        local ok, err = pcall(greylist.new, c[1])
        assert.is_false(ok)
        assert.truthy(err:find(c[2], 1, true), err)
      end)
    end
  end)
end)
