-- policy_spec.lua — luasmtpd.policy, the helpers the ready policies share:
-- address and CIDR parsing, network keys, CIDR sets, rate strings,
-- printable text, option checks, per-session caches and tags.  Pure Lua:
-- the server's modules are faked (spec/support/policy_fakes.lua).

local fakes = require "spec.support.policy_fakes"

insulate("luasmtpd.policy", function()
  local f = fakes.install()
  local P = require "luasmtpd.policy"

  local function hex(b) return (b:gsub(".", function(c) return ("%02x"):format(c:byte()) end)) end

  describe("parse_ip", function()
    local good = {
      { "192.0.2.1", "c0000201" },
      { "0.0.0.0", "00000000" },
      { "255.255.255.255", "ffffffff" },
      { "::", ("00"):rep(16) },
      { "::1", ("00"):rep(15) .. "01" },
      { "2001:db8::1", "20010db8" .. ("00"):rep(11) .. "01" },
      { "1:2:3:4:5:6:7:8", "00010002000300040005000600070008" },
      { "2001:DB8::", "20010db8" .. ("00"):rep(12) },
      { "1::", "0001" .. ("00"):rep(14) },
      { "1:2:3:4:5:6:7::", "0001000200030004000500060007" .. "0000" },
      { "::ffff:192.0.2.1", "c0000201" },                 -- mapped: IPv4
      { "64:ff9b::192.0.2.1", "0064ff9b" .. ("00"):rep(8) .. "c0000201" },
    }
    for _, c in ipairs(good) do
      it("parses " .. c[1], function() assert.equals(c[2], hex(assert(P.parse_ip(c[1])))) end)
    end
    local bad = { "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.-1", " 1.2.3.4",
      "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "::g", ":1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8::",
      "fe80::1%eth0", "::1.2.3", "[::1]", "example.org", "1.2.3.4/24" }
    for _, s in ipairs(bad) do
      it("refuses " .. ("%q"):format(s), function() assert.is_nil(P.parse_ip(s)) end)
    end
    it("refuses what is not a string", function() assert.is_nil(P.parse_ip(42)) end)
  end)

  describe("parse_cidr", function()
    it("parses networks and addresses", function()
      local b, len = P.parse_cidr("192.0.2.0/24")
      assert.equals("c0000200", hex(b))
      assert.equals(24, len)
      assert.equals(32, select(2, P.parse_cidr("192.0.2.7")))
      assert.equals(32, select(2, P.parse_cidr("2001:db8::/32")))
      assert.equals(128, select(2, P.parse_cidr("::1")))
      assert.equals(0, select(2, P.parse_cidr("0.0.0.0/0")))
    end)
    it("counts a mapped network's prefix in IPv6 bits", function()
      local b, len = P.parse_cidr("::ffff:192.0.2.0/120")
      assert.equals(4, #b)
      assert.equals(24, len)
    end)
    it("refuses a prefix past the family's bits, and junk", function()
      assert.is_nil(P.parse_cidr("192.0.2.0/33"))
      assert.is_nil(P.parse_cidr("2001:db8::/129"))
      assert.is_nil(P.parse_cidr("192.0.2.0/"))
      assert.is_nil(P.parse_cidr("192.0.2.0/x"))
      assert.is_nil(P.parse_cidr("example.org/24"))
    end)
  end)

  describe("cidr_set", function()
    local set = P.cidr_set{ "192.0.2.0/24", "198.51.100.7", "10.0.0.0/8", "10.1.0.0/16",
      "2001:db8::/32", "2001:db8:1:2::/64", "0.0.0.0/0" }
    local v6only = P.cidr_set{ "2001:db8::/32" }

    it("finds the most specific network holding an address", function()
      assert.equals("192.0.2.0/24", set:match("192.0.2.200"))
      assert.equals("198.51.100.7/32", set:match("198.51.100.7"))
      assert.equals("10.1.0.0/16", set:match("10.1.2.3"))
      assert.equals("10.0.0.0/8", set:match("10.2.0.1"))
      assert.equals("2001:db8:1:2:0:0:0:0/64", set:match("2001:db8:1:2::99"))
      assert.equals("2001:db8:0:0:0:0:0:0/32", set:match("2001:db8:ffff::1"))
    end)
    it("matches partial bytes at the prefix edge", function()
      local s = P.cidr_set{ "192.0.2.64/26" }
      assert.equals("192.0.2.64/26", s:match("192.0.2.127"))
      assert.is_nil(s:match("192.0.2.128"))
      assert.is_nil(s:match("192.0.2.63"))
    end)
    it("keeps the families apart, and takes a mapped client address as IPv4", function()
      assert.is_nil(v6only:match("192.0.2.1"))
      assert.is_nil(P.cidr_set{ "0.0.0.0/0" }:match("2001:db8::1"))
      assert.equals("192.0.2.0/24", set:match("::ffff:192.0.2.9"))
    end)
    it("answers nil for what is not an address", function()
      assert.is_nil(set:match("example.org"))
      assert.is_nil(set:match("unix"))
    end)
    it("raises on a bad entry", function()
      assert.has_error(function() P.cidr_set{ "192.0.2.0/40" } end)
    end)
  end)

  describe("network", function()
    it("is the client's /24 or /64 as text", function()
      assert.equals("192.0.2.0/24", P.network("192.0.2.77"))
      assert.equals("2001:db8:1:2:0:0:0:0/64", P.network("2001:db8:1:2:3:4:5:6"))
      assert.equals("192.0.0.0/16", P.network("192.0.2.77", 16, 48))
      assert.equals("2001:db8:1:0:0:0:0:0/48", P.network("2001:db8:1:2::1", 16, 48))
      assert.equals("192.0.2.0/24", P.network("::ffff:192.0.2.1"))
      assert.is_nil(P.network("nothing"))
    end)
  end)

  describe("parse_rate", function()
    local good = { { "100/1h", 100, 3600 }, { "100/h", 100, 3600 }, { "10/30s", 10, 30 },
      { "5/5m", 5, 300 }, { "1000/1d", 1000, 86400 }, { "100/3600", 100, 3600 },
      { " 3 / 2m ", 3, 120 }, { "1/0.5", 1, 0.5 } }
    for _, c in ipairs(good) do
      it("reads " .. c[1], function()
        local n, p = P.parse_rate(c[1])
        assert.equals(c[2], n)
        assert.equals(c[3], p)
      end)
    end
    for _, s in ipairs{ "100", "0/1h", "x/1h", "100/", "100/1w", "100/0", "-1/1h", "1.5/1h",
                        "100/1h30m", "", "5/.h", "5/." } do
      it("refuses " .. ("%q"):format(s), function()
        local n, err = P.parse_rate(s)
        assert.is_nil(n)
        assert.is_string(err)
      end)
    end
  end)

  describe("printable and lower", function()
    it("turns controls and high bytes into ?, and cuts", function()
      assert.equals("a?b?c", P.printable("a\rb\255c"))
      assert.equals("abc", P.printable("abcdef", 3))
    end)
    it("lowers ASCII letters only", function()
      assert.equals("abc\195\137", P.lower("ABC\195\137"))
    end)
  end)

  describe("options", function()
    local spec = { delay = P.positive(true), mode = P.one_of("a", "b"), name = "string",
      code = P.code(4), ecode = P.ecode(4) }
    it("passes known options and the common ones", function()
      local o = P.options({ delay = 3, mode = "a", name = "x", ip = function() end,
        exempt_auth = true, code = 450, ecode = "4.7.1" }, spec, "x")
      assert.equals(3, o.delay)
      assert.same({}, P.options(nil, spec, "x"))
    end)
    local bad = {
      { { dealy = 3 }, "x: unknown option 'dealy'" },
      { { delay = 1.5 }, "x: delay must be a positive whole number" },
      { { delay = -1 }, "x: delay must be a positive whole number" },
      { { mode = "c" }, "x: mode must be one of a, b" },
      { { name = 5 }, "x: name must be a string, not a number" },
      { { code = 550 }, "x: code must be a 4xx code" },
      { { ecode = "5.7.1" }, "x: ecode must be an enhanced code 4.x.x" },
      { { exempt = true }, "x: exempt must be a function, not a boolean" },
    }
    for _, c in ipairs(bad) do
      it("raises: " .. c[2], function()
        local ok, err = pcall(P.options, c[1], spec, "x")
        assert.is_false(ok)
        assert.truthy(err:find(c[2], 1, true), err)
      end)
    end
  end)

  describe("sessions", function()
    it("caches per session and sub, and tags a transaction once", function()
      local s = f.session{ sender = "a@example.org" }
      local key, tag = {}, {}
      local n = 0
      local function get() n = n + 1; return n end
      assert.equals(1, P.cached(s, key, "x", get))
      assert.equals(1, P.cached(s, key, "x", get))
      assert.equals(2, P.cached(s, key, "y", get))
      assert.is_true(P.tag(s, tag, "X-A", "1"))
      assert.is_true(P.tag(s, tag, "X-A", "1"))
      assert.same({ "X-A: 1" }, s.headers)
      f.new_tx(s, "b@example.org")
      P.tag(s, tag, "X-A", "2")
      assert.same({ "X-A: 1", "X-A: 2" }, s.headers)
      assert.is_false(P.tag(f.session{}, tag, "X-A", "3"))
    end)
    it("judges s.remote_ip unless ip is given, and exempts", function()
      local s = f.session{ remote_ip = "192.0.2.9", auth = { user = "u" } }
      assert.equals("192.0.2.9", P.client_ip(s, {}))
      assert.equals("198.51.100.1", P.client_ip(s, { ip = function() return "198.51.100.1" end }))
      assert.is_true(P.exempt(s, { exempt_auth = true }))
      assert.is_false(P.exempt(s, {}))
      assert.is_true(P.exempt(s, { exempt = function(_, x) return x == "r" end }, "r"))
    end)
  end)
end)
