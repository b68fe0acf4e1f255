-- 60-policies_spec.lua — the ready policies (lua/luasmtpd/policy/*.lua) in
-- hooks of the real binary, against the real NSD of spec/support/dns.lua
-- and a real redis-server: DNSBL listed, not listed, weights, codes and the
-- tag; FCrDNS pass, fail, permerror, temperror; HELO checks; deny and allow
-- lists from files, reloaded when a file changes and kept when it breaks;
-- greylisting (first attempt 451, a retry before the delay 451, after the
-- delay 250, auto-allow, exemptions), its state shared by two luasmtpd on
-- one Redis and kept by LMDB across a restart; a rate limit counted across
-- both nodes; SPF refusing a fail and tagging a softfail (the Received-SPF
-- header in the Maildir copy).  #e2e #policy #dns #kv
--
-- The client is always 127.0.0.1.  The zones of policy.example list it;
-- the FCrDNS, list and SPF cases judge documentation addresses instead,
-- named by the test client with "VRFY ip=ADDR" (the config's vrfy hook
-- keeps it in s.data; the policies' `ip` option reads it).  The rcpt hook
-- runs the policy the recipient's local part names ("grey+1@..." -> grey).
-- Waits are bounded; nothing asserts on timing beyond "after the delay".

local socket = require "socket"
local H = require "spec.helpers"
local dnspeer = require "spec.support.dns"
local peers = require "spec.support.peers"

local WAIT = 10        -- seconds, for every bounded wait
local DELAY = 2        -- the greylisting delay of most cases

local config = [[
local smtp = require "luasmtpd"
local deliver = require "luasmtpd.deliver"
local util = require "luasmtpd.util"
listen = { address = smtp.var("listen"), auth = true, auth_plaintext = true }
spool = smtp.var("spool")
hostname = "mx.example.test"
timeouts = { hook = 20 }
dns = {
  servers = { smtp.var("dns_server") },
  stubs = { ["servfail.test."] = smtp.var("dns_server") },
  nodefault = { "test.", "2.0.192.in-addr.arpa." },
  timeout = 3,
}
local redis = smtp.var("redis", "")
if redis ~= "" then kv = { backend = "redis", redis = redis, prefix = "spec60:" } end

local dnsbl = require "luasmtpd.policy.dnsbl"
local fcrdns = require "luasmtpd.policy.fcrdns"
local helo = require "luasmtpd.policy.helo"
local lists = require "luasmtpd.policy.lists"
local greylist = require "luasmtpd.policy.greylist"
local ratelimit = require "luasmtpd.policy.ratelimit"
local spf = require "luasmtpd.policy.spf"

-- Test scaffolding: "VRFY ip=192.0.2.11": the address the policies judge.
function hooks.vrfy(s, arg)
  local ip = arg:match("^ip=(%S+)$")
  if ip then
    s.data.ip = ip
    return smtp.accept("ip set")
  end
end
local function ip(s) return s.data.ip or s.remote_ip end

function hooks.auth(s, user, password)
  if password == "secret" then return smtp.accept() end
  return smtp.reject()
end

local delay = tonumber(smtp.var("delay"))
local check_helo = helo.new{ not_fqdn = "reject", unresolvable = "tempfail", mismatch = "tag" }
local check_spf = spf.new{ ip = ip, temperror = "tempfail" }
local per_sender = ratelimit.new{ by = "sender", rate = "2/1h" }
local allowed = lists.allow{ file = smtp.var("allow"), ip = ip, interval = 1 }

local policies = {
  ["bl-listed"] = dnsbl.new{ zones = { "bl.policy.example" } },
  ["bl-clean"] = dnsbl.new{ zones = { "clean.policy.example", "dnsbl.test" } },
  ["bl-weights"] = dnsbl.new{ zones = { { "bl.policy.example", 5 }, { "bl2.policy.example", 3 },
    { "wl.policy.example", -10 } }, reject = 5 },
  ["bl-sum"] = dnsbl.new{ zones = { { "bl.policy.example", 3 }, { "bl2.policy.example", 3 } },
    reject = 6 },
  ["bl-codes"] = dnsbl.new{ zones = { { zone = "bl2.policy.example",
    codes = { ["127.0.0.10"] = 4, ["127.0.0.2"] = 0 } } }, reject = 5, header = "X-Listed" },
  ["iprev"] = fcrdns.new{ ip = ip, fail = "reject", temperror = "tempfail", permerror = "tag",
    pass = "tag" },
  ["iprev-loopback"] = fcrdns.new{ pass = "tag", fail = "reject", permerror = "reject" },
  ["deny"] = lists.deny{ file = smtp.var("deny"), subdomains = true, ip = ip, interval = 1 },
  ["grey"] = greylist.new{ delay = delay, auto_allow = false },
  ["grey-auto"] = greylist.new{ delay = 1, auto_allow = 2, prefix = "greyauto:" },
  ["grey-exempt"] = greylist.new{ delay = delay, exempt = allowed, prefix = "greyex:" },
  ["rl-ip"] = ratelimit.new{ rate = "3/1h", name = "ip3" },
}

function hooks.helo(s, name) return check_helo(s, name) end

function hooks.mail(s, sender)
  local v = check_helo(s)            -- the tag needs the transaction
  if v then return v end
  if sender:match("%.spf%.test$") then return check_spf(s, sender) end
  if sender:match("^rl%-") then return per_sender(s) end
end

function hooks.rcpt(s, rcpt)
  local policy = policies[rcpt:match("^([%a%-]+)")]
  return policy and policy(s, rcpt) or smtp.accept()
end

local maildir = smtp.var("maildir")
local local_domains = { ["example.test"] = true }
function hooks.message(s, msg)
  for _, r in ipairs(msg.rcpts) do
    assert(deliver.maildir(util.maildir_path(maildir, local_domains, r.address), r))
  end
  return smtp.accept()
end
]]

-- A server of this config (dir: its files; defines: more -D).
local function start(dns, dir, defines)
  local d = { dns_server = dns.server, delay = tostring(DELAY), maildir = dir .. "/mail",
    deny = dir .. "/deny", allow = dir .. "/allow" }
  for k, v in pairs(defines or {}) do d[k] = v end
  if not H.read_file(d.deny) then
    H.write_file(d.deny, "# denied\n192.0.2.0/24\nspam.example\nbad@example.org\n")
  end
  if not H.read_file(d.allow) then H.write_file(d.allow, "198.51.100.77\n") end
  return H.start_server{ config = config, dir = dir, defines = d }
end

-- Greeted (EHLO helo), then VRFY ip=... and AUTH when asked.
local function greet(srv, o)
  o = o or {}
  local c = H.connect(srv.port)
  c:expect(220)
  c:cmd("EHLO " .. (o.helo or "[127.0.0.1]"), 250)
  if o.ip then c:cmd("VRFY ip=" .. o.ip, 250) end
  if o.auth then c:cmd("AUTH PLAIN " .. H.b64("\0user\0secret"), 235) end
  return c
end

-- The reply to RCPT TO:<rcpt> in a new transaction: code, text.
local function rcpt(srv, to, o)
  o = o or {}
  local c = greet(srv, o)
  c:cmd("MAIL FROM:<" .. (o.from or "sender@remote.example") .. ">", 250)
  c:send("RCPT TO:<" .. to .. ">\r\n")
  local code, text = c:reply()
  if o.data and code == 250 then
    c:cmd("DATA", 354)
    c:send("Subject: policies\r\n\r\nhello\r\n.\r\n")
    c:expect(250)
  end
  c:cmd("QUIT", 221)
  c:close()
  return code, text
end

-- Retry until the RCPT gets want (bounded); returns the last code.
local function until_code(srv, to, want, o)
  local code, text
  H.wait_for(function()
    code, text = rcpt(srv, to, o)
    return code == want
  end, WAIT, ("RCPT %s -> %d (last: %s %s)"):format(to, want, tostring(code), tostring(text)))
  return code
end

-- The messages in a Maildir under the server's mail root, with header
-- fields unfolded (RFC 5322 §2.2.3: long added fields are folded at 78).
local function messages(dir, localpart)
  local out = {}
  for _, p in ipairs(H.files(dir .. "/mail/example.test/" .. localpart .. "/new")) do
    out[#out + 1] = (H.read_file(p):gsub("\r?\n([ \t])", "%1"))
  end
  return out
end

describe("the ready policies through the real binary #e2e #policy", function()
  local dns, srv, dir

  lazy_setup(function()
    dns = dnspeer.start{}
    dir = H.tmpdir()
    srv = start(dns, dir)
  end)
  lazy_teardown(function()
    if srv then srv:stop() end
    if dns then dns:stop() end
  end)

  describe("dnsbl", function()
    it("refuses a listed client 554 5.7.1 with the list's TXT reason", function()
      local code, text = rcpt(srv, "bl-listed@example.test")
      assert.equals(554, code)
      assert.equals("554 5.7.1 Service unavailable; client [127.0.0.1] blocked using " ..
        "bl.policy.example: listed by bl.policy.example: see " ..
        "https://bl.policy.example/?ip=127.0.0.1", text)
    end)

    it("lets a client through that no zone lists, and tags nothing", function()
      assert.equals(250, (rcpt(srv, "bl-clean@example.test", { data = true })))
      local m = messages(dir, "bl-clean")
      assert.equals(1, #m)
      assert.is_nil(m[1]:find("X-DNSBL", 1, true))
    end)

    it("weighs: a listing under the threshold tags the message, an allow list subtracts",
      function()
        assert.equals(250, (rcpt(srv, "bl-weights@example.test", { data = true })))
        local m = messages(dir, "bl-weights")
        assert.equals(1, #m)
        assert.truthy(m[1]:find("X-DNSBL: score=-2; bl.policy.example=127.0.0.2 (+5); " ..
          "bl2.policy.example=127.0.0.2,127.0.0.10 (+3); wl.policy.example=127.0.10.1 (-10)",
          1, true), m[1])
      end)

    it("refuses when the weights of two lists add up to the threshold", function()
      local code, text = rcpt(srv, "bl-sum@example.test")
      assert.equals(554, code)
      assert.matches("blocked using bl%.policy%.example", text)
    end)

    it("weighs the codes a list returns", function()
      assert.equals(250, (rcpt(srv, "bl-codes@example.test", { data = true })))
      assert.truthy(messages(dir, "bl-codes")[1]:find(
        "X-Listed: score=4; bl2.policy.example=127.0.0.2,127.0.0.10 (+4)", 1, true))
    end)
  end)

  describe("fcrdns", function()
    it("tags a pass with the verified name", function()
      assert.equals(250, (rcpt(srv, "iprev+pass@example.test", { ip = "192.0.2.10",
        data = true })))
      assert.truthy(messages(dir, "iprev+pass")[1]:find(
        "X-FCrDNS: pass ip=192.0.2.10 name=mail.fcrdns.test", 1, true))
    end)

    it("refuses a fail 550 5.7.25, naming the address only", function()
      local code, text = rcpt(srv, "iprev@example.test", { ip = "192.0.2.11" })
      assert.equals(550, code)
      assert.equals("550 5.7.25 Client host rejected: the reverse DNS name of [192.0.2.11] " ..
        "does not lead back to it", text)
    end)

    it("tags a permerror (no PTR) and tempfails a temperror (SERVFAIL)", function()
      assert.equals(250, (rcpt(srv, "iprev+none@example.test", { ip = "192.0.2.12",
        data = true })))
      assert.truthy(messages(dir, "iprev+none")[1]:find("X-FCrDNS: permerror ip=192.0.2.12",
        1, true))
      local code, text = rcpt(srv, "iprev@example.test", { ip = "192.0.2.13" })
      assert.equals(450, code)
      assert.matches("^450 4%.7%.25 ", text)
    end)

    it("passes the loopback client (the resolver's own localhost data)", function()
      assert.equals(250, (rcpt(srv, "iprev-loopback@example.test", { data = true })))
      assert.truthy(messages(dir, "iprev-loopback")[1]:find(
        "X-FCrDNS: pass ip=127.0.0.1 name=localhost", 1, true))
    end)
  end)

  describe("helo", function()
    local cases = {
      { "localhost", 550, "need a fully%-qualified hostname" },
      { "nx.rr.test", 450, "host not found" },
      { "[192.0.2.1]", 550, "the address literal is not your address" },
      { "mx.example.test", 550, "you are not me" },
      { "MX.Example.Test.", 550, "you are not me" },
      { "[127.0.0.1]", 250 },
      { "ns.rr.test", 250 },
    }
    for _, c in ipairs(cases) do
      it((c[2] == 250 and "greets " or "refuses %d for "):format(c[2]) .. c[1], function()
        local conn = H.connect(srv.port)
        conn:expect(220)
        local text = conn:cmd("EHLO " .. c[1], c[2])
        if c[3] then assert.matches(c[3], text) end
        conn:cmd("QUIT", 221)
        conn:close()
      end)
    end

    it("tags a mismatch in the message (checked again at MAIL, looked up once)", function()
      assert.equals(250, (rcpt(srv, "helo+tag@example.test", { helo = "www.rr.test",
        data = true })))
      assert.truthy(messages(dir, "helo+tag")[1]:find("X-HELO-Check: mismatch " ..
        "name=www.rr.test", 1, true))
    end)
  end)

  describe("lists", function()
    it("refuses a listed client network, sender domain (and subdomain), address", function()
      assert.equals(554, (rcpt(srv, "deny@example.test", { ip = "192.0.2.99" })))
      assert.equals(554, (rcpt(srv, "deny@example.test", { ip = "198.51.100.1",
        from = "x@mail.spam.example" })))
      assert.equals(554, (rcpt(srv, "deny@example.test", { ip = "198.51.100.1",
        from = "BAD@example.org" })))
      assert.equals(250, (rcpt(srv, "deny@example.test", { ip = "198.51.100.1" })))
    end)

    it("reloads a file that changed, and keeps the old entries of a broken one", function()
      local path = dir .. "/deny"
      H.write_file(path .. ".new", "198.51.100.0/24\n")
      assert(os.rename(path .. ".new", path))
      until_code(srv, "deny@example.test", 554, { ip = "198.51.100.1" })
      assert.equals(250, (rcpt(srv, "deny@example.test", { ip = "192.0.2.99" })))
      -- Broken: the old entries stay, the log says why.
      H.write_file(path .. ".new", "198.51.100.0/24\n300.0.0.0/8\n")
      assert(os.rename(path .. ".new", path))
      H.wait_for(function()
        rcpt(srv, "deny@example.test", { ip = "198.51.100.1" })   -- a call checks the file
        return srv:log():find("keeping the entries read before", 1, true)
      end, WAIT, "the broken list in the log")
      assert.truthy(srv:log():find(path .. ":2: not an IP address or network", 1, true))
      assert.equals(554, (rcpt(srv, "deny@example.test", { ip = "198.51.100.1" })))
      assert.equals(250, (rcpt(srv, "deny@example.test", { ip = "192.0.2.99" })))
    end)
  end)

  describe("greylisting", function()
    it("says 451 4.7.1 at first and before the delay, 250 after it", function()
      local code, text = rcpt(srv, "grey+first@example.test")
      assert.equals(451, code)
      assert.equals("451 4.7.1 Greylisted: first attempt from your network for this sender " ..
        "and recipient, please try again in " .. DELAY .. " seconds", text)
      code, text = rcpt(srv, "grey+first@example.test")
      assert.equals(451, code)
      assert.matches("please try again in %d seconds", text)
      socket.sleep(DELAY)
      until_code(srv, "grey+first@example.test", 250)
      -- Another sender or recipient is a new triplet.
      assert.equals(451, (rcpt(srv, "grey+other@example.test")))
      assert.equals(451, (rcpt(srv, "grey+first@example.test", { from = "new@remote.example" })))
    end)

    it("lets a network through after two passed triplets (auto_allow = 2)", function()
      for _, r in ipairs{ "grey-auto+1@example.test", "grey-auto+2@example.test" } do
        assert.equals(451, (rcpt(srv, r)))
        socket.sleep(1)
        until_code(srv, r, 250)
      end
      assert.equals(250, (rcpt(srv, "grey-auto+3@example.test", { from = "new@x.example" })))
    end)

    it("exempts authenticated clients, and what an allow list holds", function()
      assert.equals(250, (rcpt(srv, "grey+auth@example.test", { auth = true })))
      assert.equals(250, (rcpt(srv, "grey-exempt@example.test", { ip = "198.51.100.77" })))
      assert.equals(451, (rcpt(srv, "grey-exempt@example.test", { ip = "198.51.100.78" })))
    end)
  end)

  describe("spf", function()
    it("refuses a fail 550 5.7.23 with the explanation", function()
      local c = greet(srv, { ip = "192.0.2.200" })
      c:cmd("MAIL FROM:<carol@pass.spf.test>", 550, "^550 5%.7%.23 SPF: ")
      c:cmd("QUIT", 221)
      c:close()
    end)

    it("tags a softfail: the Received-SPF header is in the Maildir copy", function()
      assert.equals(250, (rcpt(srv, "spf+soft@example.test", { ip = "192.0.2.1",
        from = "f@softfail.spf.test", data = true })))
      local m = messages(dir, "spf+soft")
      assert.equals(1, #m)
      assert.truthy(m[1]:find("\nReceived-SPF: softfail (mx.example.test: domain of " ..
        "transitioning f@softfail.spf.test does not designate 192.0.2.1 as permitted sender)",
        1, true), m[1])
    end)

    it("tempfails a temperror 451 4.7.24 (temperror = \"tempfail\")", function()
      local c = greet(srv, { ip = "192.0.2.1" })
      c:cmd("MAIL FROM:<t@temperror.spf.test>", 451, "^451 4%.7%.24 ")
      c:cmd("QUIT", 221)
      c:close()
    end)
  end)

  describe("ratelimit", function()
    it("counts per sender at MAIL and says when to come back", function()
      for _ = 1, 2 do
        local c = greet(srv)
        c:cmd("MAIL FROM:<rl-bulk@remote.example>", 250)
        c:cmd("QUIT", 221)
        c:close()
      end
      local c = greet(srv)
      c:cmd("MAIL FROM:<rl-bulk@remote.example>", 451,
        "^451 4%.7%.1 Rate limit exceeded %(this sender%), try again in %d+ seconds$")
      c:cmd("MAIL FROM:<rl-other@remote.example>", 250)
      c:cmd("QUIT", 221)
      c:close()
    end)
  end)
end)

describe("the policies' state on two luasmtpd and one Redis #e2e #policy #kv", function()
  local dns, redis, a, b, dir_a

  lazy_setup(function()
    dns = dnspeer.start{}
    redis = peers.redis{}
    local d = { redis = "127.0.0.1:" .. redis.port }
    dir_a = H.tmpdir()
    a = start(dns, dir_a, d)
    b = start(dns, H.tmpdir(), d)
  end)
  lazy_teardown(function()
    if a then a:stop() end
    if b then b:stop() end
    if redis then redis:stop() end
    if dns then dns:stop() end
  end)

  it("a triplet greylisted on node 1 passes on node 2 after the delay", function()
    assert.equals(451, (rcpt(a, "grey+two@example.test")))
    assert.equals(451, (rcpt(b, "grey+two@example.test")))
    socket.sleep(DELAY)
    until_code(b, "grey+two@example.test", 250)
    assert.equals(250, (rcpt(a, "grey+two@example.test")))
    assert.truthy(redis:cmd("GET", "spec60:grey:t:127.0.0.0/24/sender@remote.example/" ..
      "grey+two@example.test"))
  end)

  it("a rate limit counts across both nodes", function()
    assert.equals(250, (rcpt(a, "rl-ip@example.test")))
    assert.equals(250, (rcpt(b, "rl-ip@example.test")))
    assert.equals(250, (rcpt(a, "rl-ip@example.test")))
    local code, text = rcpt(b, "rl-ip@example.test")
    assert.equals(451, code)
    assert.matches("^451 4%.7%.1 Rate limit exceeded %(your address%), try again in %d+ " ..
      "seconds$", text)
    assert.equals(451, (rcpt(a, "rl-ip@example.test")))
  end)
end)

describe("greylisting on LMDB across a restart #e2e #policy #kv", function()
  it("remembers a waiting triplet when the server stops and starts again", function()
    local dns = dnspeer.start{}
    local dir = H.tmpdir()
    local srv = start(dns, dir)
    local ok, err = pcall(function()
      assert.equals(451, (rcpt(srv, "grey+restart@example.test")))
      srv:stop()
      srv = start(dns, dir)
      socket.sleep(DELAY)
      -- A forgotten triplet would be new again: 451, and 250 only after
      -- another delay; until_code would still pass, so look at the first.
      assert.equals(250, (rcpt(srv, "grey+restart@example.test")))
    end)
    srv:stop()
    dns:stop()
    assert(ok, err)
  end)
end)
