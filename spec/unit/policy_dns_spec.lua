-- policy_dns_spec.lua — the ready policies built on DNS answers, with the
-- answers faked (spec/support/policy_fakes.lua): luasmtpd.policy.dnsbl
-- (weights, codes, the threshold, the reason, the tag, failed lookups),
-- .fcrdns and .helo (each result's action, one lookup per session), and
-- .spf (the action per result, the Received-SPF tag).  The real resolver
-- and NSD are in spec/e2e/60-policies_spec.lua.

local fakes = require "spec.support.policy_fakes"

insulate("the DNS policies", function()
  local f = fakes.install()
  local dnsbl = require "luasmtpd.policy.dnsbl"
  local fcrdns = require "luasmtpd.policy.fcrdns"
  local helo = require "luasmtpd.policy.helo"
  local spf = require "luasmtpd.policy.spf"

  f.dnsbl["bl.example"] = { ["192.0.2.1"] = { text = "listed: see https://bl.example/" } }
  f.dnsbl["multi.example"] = { ["192.0.2.1"] = { codes = { "127.0.0.2", "127.0.0.10" } } }
  f.dnsbl["wl.example"] = { ["192.0.2.1"] = { codes = { "127.0.10.1" } } }
  f.dnsbl["down.example"] = "servfail"

  local function calls(name) return f.calls[name] or 0 end

  describe("dnsbl", function()
    it("refuses a listed client 554 5.7.1 with the list's reason", function()
      local bl = dnsbl.new{ zones = { "bl.example" } }
      local v = bl(f.session{ sender = "a@x.example" })
      assert.same({ kind = "reject", code = 554, ecode = "5.7.1", text = "Service " ..
        "unavailable; client [192.0.2.1] blocked using bl.example: listed: see " ..
        "https://bl.example/" }, v)
      assert.is_nil(bl(f.session{ remote_ip = "192.0.2.2" }))
    end)

    it("adds weights, allow lists subtract, and below the threshold it tags", function()
      local bl = dnsbl.new{ zones = { { "bl.example", 5 }, { "multi.example", 3 },
        { "wl.example", -10 } }, reject = 5 }
      local s = f.session{ sender = "a@x.example" }
      local v, score, hits = bl(s)
      assert.is_nil(v)
      assert.equals(-2, score)
      assert.equals(3, #hits)
      assert.same({ "X-DNSBL: score=-2; bl.example=127.0.0.2 (+5); multi.example=" ..
        "127.0.0.2,127.0.0.10 (+3); wl.example=127.0.10.1 (-10)" }, s.headers)
    end)

    it("weighs codes when a zone lists them", function()
      local bl = dnsbl.new{ zones = { { zone = "multi.example", codes = {
        ["127.0.0.10"] = 4, ["127.0.0.2"] = 2, ["127.0.0.4"] = 100 } } }, reject = 7 }
      local _, score = bl(f.session{})
      assert.equals(6, score)
      local strict = dnsbl.new{ zones = { { zone = "multi.example",
        codes = { ["127.0.0.10"] = 6 } } }, reject = 6 }
      local v = strict(f.session{})
      assert.equals("Service unavailable; client [192.0.2.1] blocked using multi.example", v.text)
    end)

    it("counts a failed lookup as not listing, and never refuses for it", function()
      local bl = dnsbl.new{ zones = { "down.example", "bl.example" }, reject = 2 }
      local v, score, hits = bl(f.session{})
      assert.is_nil(v)
      assert.equals(1, score)
      assert.equals("bl.example", hits[1].zone)
      local s2, h2, errors = dnsbl.lookup("192.0.2.1", dnsbl.zones{ "down.example" })
      assert.equals(0, s2)
      assert.same({}, h2)
      assert.same({ { zone = "down.example", err = "servfail" } }, errors)
    end)

    it("asks once per session, in any number of hooks, and tags each transaction", function()
      local bl = dnsbl.new{ zones = { "bl.example" }, reject = false, header = "X-BL" }
      local s = f.session{}
      local before = calls("dns.dnsbl")
      bl(s)                                  -- connect: nothing to tag yet
      f.new_tx(s, "a@x.example")
      bl(s)
      bl(s)
      f.new_tx(s, "b@x.example")
      bl(s)
      assert.equals(before + 1, calls("dns.dnsbl"))
      assert.equals(2, #s.headers)
      assert.truthy(s.headers[1]:find("^X%-BL: score=1; bl%.example"))
    end)

    it("says nothing for an exempt client, or one without an address", function()
      local before = calls("dns.dnsbl")
      assert.is_nil(dnsbl.new{ zones = { "bl.example" }, exempt_auth = true }(
        f.session{ auth = { user = "u" } }))
      assert.is_nil(dnsbl.new{ zones = { "bl.example" } }(f.session{ remote_ip = "unix" }))
      assert.equals(before, calls("dns.dnsbl"))
    end)

    it("refuses bad zones and options", function()
      assert.has_error(function() dnsbl.new{} end)
      assert.has_error(function() dnsbl.new{ zones = {} } end)
      assert.has_error(function() dnsbl.new{ zones = { { "bl.example", "x" } } } end)
      assert.has_error(function() dnsbl.new{ zones = { "bad zone" } } end)
      assert.has_error(function() dnsbl.new{ zones = { "bl.example" }, reject = 0 } end)
      local many = {}
      for i = 1, dnsbl.ZONES_MAX + 1 do many[i] = "z" .. i .. ".example" end
      assert.has_error(function() dnsbl.new{ zones = many } end)
    end)
  end)

  describe("fcrdns", function()
    f.iprev["192.0.2.10"] = { result = "pass", names = { "mail.example" }, name = "mail.example" }
    f.iprev["192.0.2.11"] = { result = "fail", names = { "liar.example" } }
    f.iprev["192.0.2.13"] = { result = "temperror", names = {}, error = "servfail" }

    it("does nothing unless asked", function()
      local s = f.session{ remote_ip = "192.0.2.11", sender = "a@x.example" }
      local v, r = fcrdns.new{}(s)
      assert.is_nil(v)
      assert.equals("fail", r.result)
      assert.same({}, s.headers)
    end)

    it("refuses, tempfails or tags per result", function()
      local iprev = fcrdns.new{ fail = "reject", temperror = "tempfail", permerror = "tag",
        pass = "tag" }
      assert.same({ kind = "reject", code = 550, ecode = "5.7.25", text = "Client host " ..
        "rejected: the reverse DNS name of [192.0.2.11] does not lead back to it" },
        iprev(f.session{ remote_ip = "192.0.2.11" }))
      local v = iprev(f.session{ remote_ip = "192.0.2.13" })
      assert.equals(450, v.code)
      assert.equals("4.7.25", v.ecode)
      local s = f.session{ remote_ip = "192.0.2.12", sender = "a@x.example" }
      assert.is_nil(iprev(s))
      assert.same({ "X-FCrDNS: permerror ip=192.0.2.12" }, s.headers)
      s = f.session{ remote_ip = "192.0.2.10", sender = "a@x.example" }
      iprev(s)
      assert.same({ "X-FCrDNS: pass ip=192.0.2.10 name=mail.example" }, s.headers)
    end)

    it("takes replies of its own, checked when the config loads", function()
      local iprev = fcrdns.new{ fail = "reject", replies = { fail = { 554, "5.7.1", "no" } } }
      assert.same({ kind = "reject", code = 554, ecode = "5.7.1", text = "no" },
        iprev(f.session{ remote_ip = "192.0.2.11" }))
      assert.has_error(function() fcrdns.new{ fail = "drop" } end)
      assert.has_error(function() fcrdns.new{ pass = "reject" } end)
    end)
  end)

  describe("helo", function()
    f.helo["nx.example"] = { result = "unresolvable" }
    f.helo["localhost"] = { result = "not_fqdn" }
    f.helo["[192.0.2.99]"] = { result = "foreign_literal" }
    f.helo["other.example"] = { result = "mismatch" }
    f.helo["broken.example"] = "servfail"

    it("refuses invalid names, foreign literals and our own name by default", function()
      local check = helo.new{}
      local s = f.session{}
      assert.equals("Helo command rejected: the address literal is not your address",
        check(s, "[192.0.2.99]").text)
      assert.equals("Helo command rejected: you are not me", check(s, "MX.example.test.").text)
      assert.is_nil(check(s, "localhost"))
      assert.is_nil(check(s, "nx.example"))
      assert.is_nil(check(s, "mail.example"))
    end)

    it("lets trusted networks and authenticated clients use our name", function()
      local check = helo.new{ trusted = { "192.0.2.0/24" } }
      assert.is_nil(check(f.session{}, "mx.example.test"))
      assert.truthy(check(f.session{ remote_ip = "198.51.100.1" }, "mx.example.test"))
      assert.is_nil(check(f.session{ remote_ip = "198.51.100.1", auth = { user = "u" } },
        "mx.example.test"))
      assert.truthy(helo.new{ own_names = { "a.example" } }(f.session{}, "A.example"))
    end)

    it("does what each result is set to, and reads s.helo without a name", function()
      local check = helo.new{ not_fqdn = "reject", unresolvable = "tempfail",
        mismatch = "tag", temperror = "tempfail", ours = false }
      assert.same({ kind = "reject", code = 550, ecode = "5.7.1",
        text = "Helo command rejected: need a fully-qualified hostname" },
        check(f.session{}, "localhost"))
      assert.equals(450, check(f.session{}, "nx.example").code)
      assert.equals("Helo command rejected: cannot check the name, try again later",
        check(f.session{}, "broken.example").text)
      assert.is_nil(check(f.session{}, "mx.example.test"))
      local s = f.session{ helo = "other.example", sender = "a@x.example" }
      assert.same({ nil, "mismatch" }, { check(s) })
      assert.same({ "X-HELO-Check: mismatch name=other.example" }, s.headers)
      assert.is_nil(check(f.session{}))          -- no HELO yet
    end)

    it("looks a name up once per session", function()
      local check = helo.new{}
      local s = f.session{}
      local before = calls("dns.helo_check")
      check(s, "mail.example")
      check(s, "mail.example")
      assert.equals(before + 1, calls("dns.helo_check"))
    end)

    it("refuses bad actions and replies when the config loads", function()
      assert.has_error(function() helo.new{ mismatch = "drop" } end)
      assert.has_error(function() helo.new{ invalid = "reject",
        replies = { invalid = { 450, "4.7.1", "x" } } } end)
      assert.has_error(function() helo.new{ trusted = { "nonsense" } } end)
    end)
  end)

  describe("spf", function()
    f.spf["a@fail.example"] = { result = "fail", explanation = "not\1here" }
    f.spf["a@soft.example"] = { result = "softfail" }
    f.spf["a@temp.example"] = { result = "temperror", reason = "timeout" }
    f.spf["a@perm.example"] = { result = "permerror", reason = "syntax" }
    f.spf["a@pass.example"] = { result = "pass" }

    it("refuses a fail 550 5.7.23 with the explanation, made printable", function()
      local s = f.session{ sender = "a@fail.example" }
      assert.same({ kind = "reject", code = 550, ecode = "5.7.23", text = "SPF: not?here" },
        spf.new{}(s, "a@fail.example"))
      assert.same({}, s.headers)
    end)

    it("tags softfail and the others with Received-SPF, once per transaction", function()
      local check = spf.new{}
      for _, sender in ipairs{ "a@soft.example", "a@temp.example", "a@perm.example",
                               "a@pass.example", "a@none.example" } do
        local s = f.session{ sender = sender }
        local v, r = check(s, sender)
        assert.is_nil(v)
        check(s)
        assert.same({ ("Received-SPF: %s (fake) client-ip=192.0.2.1;"):format(r.result) },
          s.headers)
      end
    end)

    it("tempfails a temperror 451 4.7.24 and refuses a permerror 550 5.7.24 when asked", function()
      local check = spf.new{ temperror = "tempfail", permerror = "reject", softfail = false }
      local v = check(f.session{ sender = "a@temp.example" })
      assert.same({ 451, "4.7.24" }, { v.code, v.ecode })
      v = check(f.session{ sender = "a@perm.example" })
      assert.same({ 550, "5.7.24", "SPF: permanent error in the sender's SPF record: syntax" },
        { v.code, v.ecode, v.text })
      local s = f.session{ sender = "a@soft.example" }
      assert.is_nil(check(s))
      assert.same({}, s.headers)
    end)

    it("skips authenticated clients and sessions without a transaction", function()
      local before = calls("spf.check")
      assert.is_nil(spf.new{}(f.session{ sender = "a@fail.example", auth = { user = "u" } }))
      assert.is_nil(spf.new{}(f.session{}))
      assert.equals(before, calls("spf.check"))
      assert.truthy(spf.new{ exempt_auth = false }(f.session{ sender = "a@fail.example",
        auth = { user = "u" } }))
    end)

    it("refuses bad actions", function()
      assert.has_error(function() spf.new{ fail = "bounce" } end)
      assert.has_error(function() spf.new{ timeout = 0 } end)
    end)
  end)
end)
