-- 30-dns_spec.lua — require "luasmtpd.dns" in the real binary, against the
-- real NSD of spec/support/dns.lua (zones in spec/fixtures/dns/): every
-- query type, status and the DNSSEC secure/bogus flags; the list
-- functions; iprev pass/fail/permerror/temperror; DNSBL listed or not,
-- with codes and TXT; helo_check; three lookups in one smtp.all; a hook
-- waiting on the never-answering zone times out alone while another
-- client's whole transaction goes through; a session that leaves while its
-- lookup is pending; misuse raises; and the `dns` setting's checks.
--
-- The config's rcpt hook runs checks[<local part>] under pcall and writes
-- what it returned, as a Lua literal, to -D results/<local part>; the
-- specs load that file.  #e2e #dns

local H = require "spec.helpers"
local dnspeer = require "spec.support.dns"

-- The config's part that records results; shared with 31-spf_spec.lua's
-- shape (each spec keeps its own copy so it reads alone).
local RECORD = [[
local results = smtp.var("results")
local function ser(v)
  local t = type(v)
  if t == "string" then return string.format("%q", v) end
  if t == "number" or t == "boolean" or t == "nil" then return tostring(v) end
  if t == "table" then
    local parts = {}
    for k, x in pairs(v) do parts[#parts + 1] = "[" .. ser(k) .. "]=" .. ser(x) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return string.format("%q", tostring(v))
end
local function record(name, ...)
  local f = assert(io.open(results .. "/" .. name, "w"))
  f:write("return " .. ser({ n = select("#", ...), ... }))
  f:close()
end
]]

local DNS_SETTING = [[
dns = {
  servers = { smtp.var("dns_server") },
  stubs = { ["slow.test."] = smtp.var("dns_slow"), ["servfail.test."] = smtp.var("dns_server") },
  nodefault = { "test.", "2.0.192.in-addr.arpa.", "8.b.d.0.1.0.0.2.ip6.arpa." },
  trust_anchor_file = smtp.var("dns_anchors"),
  timeout = 5,
}
]]

local config = [[
local smtp = require "luasmtpd"
listen = smtp.var("listen")
spool = smtp.var("spool")
hostname = "mx.example.test"
timeouts = { hook = 20 }
]] .. DNS_SETTING .. [[
-- After the `dns` setting: a local named dns would take its assignment.
local dns = require "luasmtpd.dns"
local spf = require "luasmtpd.spf"
]] .. RECORD .. [[
local checks = {}
local q = dns.query

checks.q_a = function() return q("www.rr.test", "A") end
checks.q_a_lower = function() return q("www.rr.test", "a") end
checks.q_aaaa = function() return q("www.rr.test", "AAAA") end
checks.q_mx = function() return q("mx.rr.test", "MX") end
checks.q_txt = function() return q("txt.rr.test", "TXT") end
checks.q_ptr = function() return q("10.2.0.192.in-addr.arpa", "PTR") end
checks.q_tlsa = function() return q("_25._tcp.mx1.rr.test", "TLSA") end
checks.q_cname = function() return q("alias.rr.test", "CNAME") end
checks.q_follow = function() return q("alias.rr.test", "A") end
checks.q_soa = function() return q("rr.test", 6) end
checks.q_nx = function() return q("nx.rr.test", "A") end
checks.q_nodata = function() return q("onlytxt.rr.test", "A") end
checks.q_servfail = function() return q("x.servfail.test", "A") end
checks.q_timeout = function() return q("q.slow.test", "A", { timeout = 0.5 }) end
checks.q_secure = function() return q("www.secure.test", "A") end
checks.q_secure_tlsa = function() return q("_25._tcp.mx.secure.test", "TLSA") end
checks.q_bogus = function() return q("www.bogus.test", "A") end
checks.q_badname = function() return q("a..b.rr.test", "A") end

checks.l_a = function() return dns.a("www.rr.test") end
checks.l_aaaa = function() return dns.aaaa("www.rr.test") end
checks.l_mx = function() return dns.mx("multi.mx.test") end
checks.l_nullmx = function() return dns.mx("nullmx.mx.test") end
checks.l_nomx = function() return dns.mx("implicit.mx.test") end
checks.l_txt = function() return dns.txt("txt.rr.test") end
checks.l_ptr4 = function() return dns.ptr("192.0.2.10") end
checks.l_ptr6 = function() return dns.ptr("2001:db8::10") end
checks.l_tlsa = function() return dns.tlsa("_25._tcp.mx.secure.test") end
checks.l_nx = function() return dns.a("nx.rr.test") end
checks.l_nodata = function() return dns.aaaa("onlytxt.rr.test") end
checks.l_servfail = function() return dns.a("x.servfail.test") end
checks.l_bogus = function() return dns.a("www.bogus.test") end
checks.l_timeout = function() return dns.txt("t.slow.test", { timeout = 0.5 }) end

checks.iprev_pass = function() return dns.iprev("192.0.2.10") end
checks.iprev_pass6 = function() return dns.iprev("2001:db8::10") end
checks.iprev_second = function() return dns.iprev("192.0.2.15") end
checks.iprev_fail = function() return dns.iprev("192.0.2.11") end
checks.iprev_none = function() return dns.iprev("192.0.2.12") end
checks.iprev_servfail = function() return dns.iprev("192.0.2.13") end
checks.iprev_timeout = function() return dns.iprev("192.0.2.14", { timeout = 0.7 }) end

checks.bl_listed = function() return dns.dnsbl("127.0.0.2", "dnsbl.test") end
checks.bl_listed6 = function() return dns.dnsbl("2001:db8::2", "dnsbl.test") end
checks.bl_mapped = function() return dns.dnsbl("::ffff:127.0.0.2", "dnsbl.test") end
checks.bl_two = function() return dns.dnsbl("127.0.0.3", "dnsbl.test") end
checks.bl_outside = function() return dns.dnsbl("127.0.0.4", "dnsbl.test") end
checks.bl_clean = function() return dns.dnsbl("127.0.0.1", "dnsbl.test") end
checks.bl_servfail = function() return dns.dnsbl("127.0.0.2", "servfail.test") end

local function helo(name) return function(s) return dns.helo_check(name, s.remote_ip) end end
checks.h_match = helo("ns.rr.test")
checks.h_mismatch = helo("www.rr.test")
checks.h_unresolvable = helo("nx.rr.test")
checks.h_nodata = helo("onlytxt.rr.test")
checks.h_single = helo("localhost")
checks.h_bare_ip = helo("192.0.2.1")
checks.h_invalid = helo("bad_name!.test")
checks.h_empty = helo("")
checks.h_literal = helo("[127.0.0.1]")
checks.h_literal6 = helo("[IPv6:::ffff:127.0.0.1]")
checks.h_foreign = helo("[192.0.2.1]")
checks.h_badliteral = helo("[300.1.1.1]")
checks.h_servfail = helo("x.servfail.test")
checks.h_session = function(s) return dns.helo_check(s) end

-- SPF, a DNSBL and a PTR lookup at once; each returns its first result.
checks.all3 = function()
  local t0 = smtp.now()
  local r, listed, ptr = smtp.all(
    function() return spf.check{ ip = "192.0.2.1", helo = "c.test", sender = "a@pass.spf.test" } end,
    function() return dns.dnsbl("127.0.0.2", "dnsbl.test") end,
    function() return dns.ptr("192.0.2.10") end)
  return r.result, listed, ptr[1], smtp.now() - t0
end

-- Misuse raises inside a hook.
checks.bad_type = function() return q("www.rr.test", "BOGUS") end
checks.meta_type = function() return q("www.rr.test", 255) end
checks.bad_opt = function() return dns.a("www.rr.test", { tmeout = 1 }) end
checks.bad_timeout = function() return dns.a("www.rr.test", { timeout = 0 }) end
checks.bad_name = function() return dns.a({}) end
checks.long_name = function() return dns.a(string.rep("a", 1100)) end
checks.bad_ip = function() return dns.ptr("not-an-address") end
checks.bad_zone = function() return dns.dnsbl("127.0.0.2") end
checks.own_co = function()
  local co = coroutine.create(function() return dns.a("www.rr.test") end)
  return coroutine.resume(co)
end

-- Waits on the zone that never answers, for its own timeout.
checks.slow = function() return dns.a("w.slow.test", { timeout = 3 }) end
checks.slowclose = function() return dns.a("c.slow.test", { timeout = 2 }) end
checks.slowclose_spf = function()
  return spf.check{ ip = "192.0.2.1", sender = "a@slow.spf.test", timeout = 2 }
end

function hooks.rcpt(s, rcpt)
  local name = rcpt:match("^([^@]+)@")
  local fn = checks[name]
  if not fn then
    if rcpt:match("@example%.test$") then return smtp.accept() end
    return smtp.reject()
  end
  record(name, pcall(fn, s))
  return smtp.accept()
end
]]

local function load_result(dir, name)
  local text = assert(H.read_file(dir .. "/" .. name), "no result for " .. name)
  return assert(loadstring(text))()
end

local function sorted(list)
  local t = {}
  for i, v in ipairs(list) do t[i] = v end
  table.sort(t)
  return t
end

-- The server's -D settings for the peer.
local function defines(peer, results)
  return { dns_server = peer.server, dns_slow = peer.stubs[1].addr,
           dns_anchors = peer.trust_anchor_file, results = results }
end

describe("luasmtpd.dns against NSD #e2e #dns", function()
  local peer, srv, results, c

  lazy_setup(function()
    peer = dnspeer.start{}
    local dir = H.tmpdir()
    results = dir .. "/results"
    assert(os.execute("mkdir -p " .. H.q(results)) == 0)
    srv = H.start_server{ dir = dir, config = config, defines = defines(peer, results) }
    c = H.session(srv.port, { rcpts = {} })
  end)
  lazy_teardown(function()
    if c then c:close() end
    if srv then srv:stop() end
    if peer then peer:stop() end
  end)

  -- Run checks[name] in the server; returns pcall's results as a table.
  local function run(name)
    c:cmd("RCPT TO:<" .. name .. "@example.test>", 250)
    return load_result(results, name)
  end
  -- The first result of a check that must not raise.
  local function ok(name)
    local r = run(name)
    assert(r[1] == true, name .. " raised: " .. tostring(r[2]))
    return r[2], r[3], r[4], r[5]
  end
  local function raises(name, pattern)
    local r = run(name)
    assert.is_false(r[1])
    assert.matches(pattern, r[2])
  end

  describe("dns.query", function()
    it("returns A records with status, rcode, ttl and the flags", function()
      local r = ok("q_a")
      assert.equal("ok", r.status)
      assert.equal(0, r.rcode)
      assert.is_false(r.secure)
      assert.is_false(r.bogus)
      assert.is_false(r.truncated)
      assert.truthy(r.ttl > 0 and r.ttl <= 300)
      assert.same({ "192.0.2.1", "192.0.2.2" }, sorted(r.answers))
      assert.same(sorted(r.answers), sorted(ok("q_a_lower").answers))
    end)

    it("returns AAAA, MX, TXT, PTR, TLSA and CNAME records in their shapes", function()
      assert.same({ "2001:db8::1" }, ok("q_aaaa").answers)
      local mx = ok("q_mx").answers
      table.sort(mx, function(a, b) return a.pref < b.pref end)
      assert.same({ { pref = 10, host = "mx1.rr.test" }, { pref = 20, host = "mx2.rr.test" } }, mx)
      assert.same({ "first parts", "second" }, sorted(ok("q_txt").answers))
      assert.same({ "mail.fcrdns.test" }, ok("q_ptr").answers)
      assert.same({ { usage = 3, selector = 1, mtype = 1,
        data = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" } },
        ok("q_tlsa").answers)
      assert.same({ "www.rr.test" }, ok("q_cname").answers)
    end)

    it("follows a CNAME and names the canonical name", function()
      local r = ok("q_follow")
      assert.equal("ok", r.status)
      assert.equal("www.rr.test", r.canonname)
      assert.same({ "192.0.2.1", "192.0.2.2" }, sorted(r.answers))
    end)

    it("returns other types (by number) as record data", function()
      local r = ok("q_soa")
      assert.equal("ok", r.status)
      assert.equal(1, #r.answers)
      assert.truthy(#r.answers[1] > 20)
    end)

    it("says nxdomain, nodata and servfail", function()
      local nx = ok("q_nx")
      assert.equal("nxdomain", nx.status)
      assert.equal(3, nx.rcode)
      assert.same({}, nx.answers)
      local nodata = ok("q_nodata")
      assert.equal("nodata", nodata.status)
      assert.equal(0, nodata.rcode)
      assert.same({}, nodata.answers)
      local sf = ok("q_servfail")
      assert.equal("servfail", sf.status)
      assert.is_false(sf.bogus)
    end)

    it("returns nil, \"timeout\" after the call's own timeout", function()
      local r, err = ok("q_timeout")
      assert.is_nil(r)
      assert.equal("timeout", err)
    end)

    it("returns nil, \"error: ...\" for a name the resolver refuses", function()
      local r, err = ok("q_badname")
      assert.is_nil(r)
      assert.matches("^error: ", err)
    end)

    it("marks DNSSEC-validated answers secure", function()
      local r = ok("q_secure")
      assert.equal("ok", r.status)
      assert.is_true(r.secure)
      assert.same({ "192.0.2.1" }, r.answers)
      local t = ok("q_secure_tlsa")
      assert.is_true(t.secure)
      assert.equal(3, t.answers[1].usage)
    end)

    it("marks a broken signature bogus and keeps none of its records", function()
      local r = ok("q_bogus")
      assert.equal("servfail", r.status)
      assert.is_true(r.bogus)
      assert.is_false(r.secure)
      assert.same({}, r.answers)
      assert.truthy(r.why_bogus)
    end)
  end)

  describe("the list functions", function()
    it("return addresses, and whether they were validated", function()
      local list, secure = ok("l_a")
      assert.same({ "192.0.2.1", "192.0.2.2" }, sorted(list))
      assert.is_false(secure)
      assert.same({ "2001:db8::1" }, (ok("l_aaaa")))
    end)

    it("sort MX records by preference", function()
      local mx = ok("l_mx")
      assert.equal(3, #mx)
      assert.same({ pref = 10, host = "mx1.mx.test" }, mx[1])
      assert.equal(20, mx[2].pref)
      assert.equal(20, mx[3].pref)
      assert.is_nil(mx.null)
    end)

    it("report a null MX as such, and no MX as an empty list", function()
      local mx = ok("l_nullmx")
      assert.same({ pref = 0, host = "." }, mx[1])
      assert.is_true(mx.null)
      assert.same({}, (ok("l_nomx")))
    end)

    it("return TXT strings joined, PTR names of IPv4 and IPv6, TLSA records", function()
      assert.same({ "first parts", "second" }, sorted(ok("l_txt")))
      assert.same({ "mail.fcrdns.test" }, (ok("l_ptr4")))
      assert.same({ "mail6.fcrdns.test" }, (ok("l_ptr6")))
      local tlsa, secure = ok("l_tlsa")
      assert.is_true(secure)
      assert.same({ usage = 3, selector = 1, mtype = 1,
        data = "8bd1da95272f7fa4ffb24137fc0ed03aae67e5c4d8b3c50734e1050a7920b922" }, tlsa[1])
    end)

    it("give an empty list for NXDOMAIN and NODATA", function()
      assert.same({}, (ok("l_nx")))
      assert.same({}, (ok("l_nodata")))
    end)

    it("return nil, err for servfail, bogus and timeout", function()
      assert.same({ nil, "servfail" }, { ok("l_servfail") })
      assert.same({ nil, "bogus" }, { ok("l_bogus") })
      assert.same({ nil, "timeout" }, { ok("l_timeout") })
    end)
  end)

  describe("dns.iprev (RFC 8601 iprev)", function()
    it("passes when the PTR name leads back to the address (IPv4 and IPv6)", function()
      local r = ok("iprev_pass")
      assert.equal("pass", r.result)
      assert.equal("mail.fcrdns.test", r.name)
      assert.same({ "mail.fcrdns.test" }, r.names)
      local r6 = ok("iprev_pass6")
      assert.equal("pass", r6.result)
      assert.equal("mail6.fcrdns.test", r6.name)
    end)

    it("passes with the name that leads back among several", function()
      local r = ok("iprev_second")
      assert.equal("pass", r.result)
      assert.equal("multi.fcrdns.test", r.name)
      assert.same({ "liar.fcrdns.test", "multi.fcrdns.test" }, sorted(r.names))
    end)

    it("fails when no name leads back, permerror without a PTR", function()
      local f = ok("iprev_fail")
      assert.equal("fail", f.result)
      assert.is_nil(f.name)
      assert.same({ "liar.fcrdns.test" }, f.names)
      local p = ok("iprev_none")
      assert.equal("permerror", p.result)
      assert.same({}, p.names)
    end)

    it("is a temperror when a lookup fails or times out", function()
      local s = ok("iprev_servfail")
      assert.equal("temperror", s.result)
      assert.equal("servfail", s.error)
      assert.same({ "x.servfail.test" }, s.names)
      local t = ok("iprev_timeout")
      assert.equal("temperror", t.result)
      assert.equal("timeout", t.error)
    end)
  end)

  describe("dns.dnsbl (RFC 5782)", function()
    it("reports a listed IPv4 address with its codes and TXT reason", function()
      local listed, info = ok("bl_listed")
      assert.is_true(listed)
      assert.same({ "127.0.0.2" }, info.codes)
      assert.equal("listed: see https://dnsbl.test/lookup?ip=127.0.0.2", info.text)
    end)

    it("reports a listed IPv6 address (nibbles) and an IPv4-mapped one", function()
      local listed, info = ok("bl_listed6")
      assert.is_true(listed)
      assert.equal("listed (IPv6)", info.text)
      assert.is_true((ok("bl_mapped")))
    end)

    it("returns every code, and no text when the list has none", function()
      local listed, info = ok("bl_two")
      assert.is_true(listed)
      assert.same({ "127.0.0.10", "127.0.0.2" }, sorted(info.codes))
      assert.is_nil(info.text)
    end)

    it("does not list for an answer outside 127.0.0.0/8, nor for NXDOMAIN", function()
      local listed, info = ok("bl_outside")
      assert.is_false(listed)
      assert.same({ "192.0.2.99" }, info.codes)
      local clean, cinfo = ok("bl_clean")
      assert.is_false(clean)
      assert.same({}, cinfo.codes)
    end)

    it("returns nil, err when the list cannot be asked", function()
      assert.same({ nil, "servfail" }, { ok("bl_servfail") })
    end)
  end)

  describe("dns.helo_check", function()
    local function result(name) return ok(name).result end

    it("matches a name that resolves to the client, and the client's literal", function()
      local r = ok("h_match")
      assert.equal("match", r.result)
      assert.is_true(r.fqdn)
      assert.is_false(r.literal)
      assert.same({ "127.0.0.1" }, r.addresses)
      assert.equal("match", result("h_literal"))
      assert.equal("match", result("h_literal6"))
    end)

    it("reads the HELO name and the address from a session", function()
      local s = H.connect(srv.port)
      s:expect(220)
      s:cmd("EHLO ns.rr.test", 250)
      s:cmd("MAIL FROM:<a@remote.test>", 250)
      s:cmd("RCPT TO:<h_session@example.test>", 250)
      s:cmd("QUIT", 221)
      s:close()
      assert.equal("match", load_result(results, "h_session")[2].result)
    end)

    it("tells a mismatch, a name without addresses and a name of one label", function()
      local m = ok("h_mismatch")
      assert.equal("mismatch", m.result)
      assert.same({ "192.0.2.1", "192.0.2.2", "2001:db8::1" }, sorted(m.addresses))
      assert.equal("unresolvable", result("h_unresolvable"))
      assert.equal("unresolvable", result("h_nodata"))
      assert.equal("not_fqdn", result("h_single"))
    end)

    it("refuses what is no domain, and someone else's address literal", function()
      assert.equal("invalid", result("h_bare_ip"))
      assert.equal("invalid", result("h_invalid"))
      assert.equal("invalid", result("h_empty"))
      assert.equal("invalid", result("h_badliteral"))
      local f = ok("h_foreign")
      assert.equal("foreign_literal", f.result)
      assert.is_true(f.literal)
    end)

    it("returns nil, err when the name's lookups fail", function()
      assert.same({ nil, "servfail" }, { ok("h_servfail") })
    end)
  end)

  it("runs SPF, a DNSBL and a PTR lookup at once in smtp.all #task", function()
    local spf, listed, ptr = ok("all3")
    assert.equal("pass", spf)
    assert.is_true(listed)
    assert.equal("mail.fcrdns.test", ptr)
  end)

  describe("misuse", function()
    it("raises on a wrong type, option, name or address", function()
      raises("bad_type", "bad argument #2 to 'dns.query'")
      raises("meta_type", "bad argument #2 to 'dns.query'")
      raises("bad_opt", "dns.a: unknown option 'tmeout'")
      raises("bad_timeout", "dns.a: timeout must be")
      raises("bad_name", "bad argument #1 to 'dns.a'")
      raises("long_name", "bad argument #1 to 'dns.a'")
      raises("bad_ip", "bad argument #1 to 'dns.ptr'")
      raises("bad_zone", "bad argument #2 to 'dns.dnsbl'")
    end)

    it("raises from a coroutine of the config's own", function()
      local r = run("own_co")
      assert.is_true(r[1])
      assert.is_false(r[2])
      assert.matches("dns.a: not from a coroutine of your own", r[3])
    end)

    it("raises outside a hook (at load time)", function()
      local dir = H.tmpdir()
      for _, call in ipairs{ 'require("luasmtpd.dns").a("www.rr.test")',
                             'require("luasmtpd.dns").iprev("192.0.2.1")',
                             'require("luasmtpd.spf").check{ ip = "192.0.2.1" }' } do
        H.write_file(dir .. "/c.lua", 'listen = "127.0.0.1:0"\n' .. call .. "\n")
        local out, rc = H.sh(H.q(H.binary) .. " -t -c " .. H.q(dir .. "/c.lua"))
        assert.are_not.equal(0, rc)
        assert.matches("only inside a hook", out)
      end
    end)
  end)
end)

describe("a hook waiting on a DNS server that never answers #e2e #dns #slow", function()
  local peer, srv, results

  lazy_setup(function()
    peer = dnspeer.start{}
    local dir = H.tmpdir()
    results = dir .. "/results"
    assert(os.execute("mkdir -p " .. H.q(results)) == 0)
    srv = H.start_server{ dir = dir, config = config, defines = defines(peer, results) }
  end)
  lazy_teardown(function()
    if srv then srv:stop() end
    if peer then peer:stop() end
  end)

  it("times out alone while another client's whole transaction goes through", function()
    local socket = require "socket"
    local slow = H.session(srv.port, { rcpts = {} })
    local t0 = socket.gettime()
    slow:send("RCPT TO:<slow@example.test>\r\n")
    -- A second client: a lookup of its own and a whole message.
    local c = H.session(srv.port, { rcpts = { "l_a@example.test" } })
    c:cmd("DATA", 354)
    c:send("Subject: meanwhile\r\n\r\nserved while the other hook waits\r\n.\r\n")
    c:expect(250)
    c:cmd("QUIT", 221)
    c:close()
    local t_other = socket.gettime()
    -- The slow client has no answer yet, then gets its own.
    assert.same({ nil, "timeout" }, { slow:line(0) })
    slow:expect(250, nil, 10)
    local t_slow = socket.gettime()
    assert.truthy(t_other < t_slow)
    local r = load_result(results, "slow")
    assert.same({ n = 3, true, nil, "timeout" }, r)
    assert.truthy(t_slow - t0 >= 2.5, "the hook waited for its own timeout")
    slow:cmd("QUIT", 221)
    slow:close()
  end)

  it("drops a pending lookup (DNS and SPF) when its client leaves", function()
    for _, name in ipairs{ "slowclose", "slowclose_spf" } do
      local s = H.session(srv.port, { rcpts = {} })
      s:send("RCPT TO:<" .. name .. "@example.test>\r\n")
      H.sleep(0.2)
      s:close()
    end
    srv:wait_log("client%-gone while=rcpt")
    -- The checks ended without their hooks: nothing was recorded.
    H.sleep(2.5)
    assert.is_nil(H.read_file(results .. "/slowclose"))
    assert.is_nil(H.read_file(results .. "/slowclose_spf"))
    assert.truthy(srv:alive())
    assert.truthy(H.transaction_works(srv.port))
  end)
end)

describe("the dns setting #e2e #dns #config", function()
  local dir

  lazy_setup(function() dir = H.tmpdir() end)

  local function check(setting)
    H.write_file(dir .. "/c.lua", 'listen = "127.0.0.1:0"\n\n' .. setting .. "\n")
    return H.sh(H.q(H.binary) .. " -t -c " .. H.q(dir .. "/c.lua"))
  end

  it("accepts a complete table", function()
    H.write_file(dir .. "/anchors", "")
    local out, rc = check(([[dns = { servers = { "127.0.0.1@5353", "::1" },
      stubs = { ["slow.test."] = "127.0.0.1@5354" }, nodefault = { "test." },
      trust_anchors = { "secure.test. IN DS 2371 13 2 ]] ..
      [[1F987B3D4F4B6E5F2A7C7A0E3C9C5B8F7A6D5C4B3A2918171615141312111009" },
      trust_anchor_file = "%s", resolv_conf = false, timeout = 2 }]]):format(dir .. "/anchors"))
    assert.equal(0, rc, out)
  end)

  it("refuses each bad setting with the file and line", function()
    local cases = {
      { 'dns = "127.0.0.1"', "c.lua:3: dns must be a table" },
      { "dns = { sever = {} }", "c.lua:3: unknown setting dns.sever" },
      { 'dns = { servers = "127.0.0.1" }', "dns.servers must be a list" },
      { 'dns = { servers = { "mx.example.test" } }', 'dns.servers%[1%]: "mx.example.test" is not ip or ip@port' },
      { 'dns = { servers = { "127.0.0.1@99999" } }', "is not ip or ip@port" },
      { 'dns = { stubs = { ["slow test"] = "127.0.0.1" } }', "is not a zone name" },
      { 'dns = { stubs = { ["x.test."] = "nowhere" } }', "is not ip or ip@port" },
      { 'dns = { nodefault = { "a..b" } }', "is not a zone name" },
      { 'dns = { trust_anchor_file = "/nonexistent/anchors" }', "cannot read" },
      { 'dns = { trust_anchors = { "this is no record" } }', "c.lua:3: dns: libunbound" },
      { "dns = { resolv_conf = 1 }", "dns.resolv_conf must be true or false" },
      { "dns = { timeout = 0 }", "dns.timeout must be" },
      { "dns = { timeout = 61 }", "dns.timeout must be" },
    }
    for _, case in ipairs(cases) do
      local out, rc = check(case[1])
      assert.are_not.equal(0, rc, case[1])
      assert(out:find(case[2]), case[1] .. " gave: " .. out)
    end
  end)
end)
