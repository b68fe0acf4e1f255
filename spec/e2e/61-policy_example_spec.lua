-- 61-policy_example_spec.lua — examples/policy.lua end to end, as shipped,
-- with only -D settings: the real NSD of spec/support/dns.lua (-D dns; the
-- zones of policy.example list the loopback client) and a real
-- redis-server.  A DNSBL listing refused with its reason; greylisting of
-- a new triplet, then delivery into the Maildir after the delay with the
-- Received-SPF header (libspf2 passes loopback clients); relaying refused;
-- the rate limit per client address; the state in LMDB under the spool,
-- or in one Redis shared by two nodes.  #e2e #policy #dns #kv

local socket = require "socket"
local H = require "spec.helpers"
local dnspeer = require "spec.support.dns"
local peers = require "spec.support.peers"

local WAIT = 10        -- seconds, for every bounded wait
local DELAY = 1        -- -D greylist_delay

describe("examples/policy.lua #e2e #policy", function()
  local dns
  local started = {}

  lazy_setup(function() dns = dnspeer.start{} end)
  lazy_teardown(function()
    for _, srv in ipairs(started) do srv:stop() end
    if dns then dns:stop() end
  end)

  -- The example with its -D settings (dnsbl: a zone that lists nobody).
  local function start(defines)
    local dir = H.tmpdir()
    local d = { dns = "127.0.0.1:" .. dns.port, maildir = dir .. "/mail",
      greylist_delay = tostring(DELAY), dnsbl = "clean.policy.example" }
    for k, v in pairs(defines or {}) do d[k] = v end
    local srv = H.start_server{ config_file = H.root .. "/examples/policy.lua", dir = dir,
      defines = d }
    started[#started + 1] = srv
    return srv, dir
  end

  -- MAIL FROM:<from>, RCPT TO:<to> (then DATA if it got 250): the codes
  -- and the RCPT reply's text.
  local function send(srv, from, to)
    local c = H.connect(srv.port)
    c:expect(220)
    c:cmd("EHLO client.example", 250)
    c:send("MAIL FROM:<" .. from .. ">\r\n")
    local mail_code, mail_text = c:reply()
    local code, text = mail_code, mail_text
    if mail_code == 250 then
      c:send("RCPT TO:<" .. to .. ">\r\n")
      code, text = c:reply()
      if code == 250 then
        c:cmd("DATA", 354)
        c:send("Subject: policy example\r\n\r\nhello\r\n.\r\n")
        c:expect(250)
      end
    end
    c:cmd("QUIT", 221)
    c:close()
    return code, text
  end

  local function until_delivered(srv, from, to)
    local code, text
    H.wait_for(function()
      code, text = send(srv, from, to)
      return code == 250
    end, WAIT, ("delivery %s -> %s (last: %s %s)"):format(from, to, tostring(code),
      tostring(text)))
  end

  it("refuses a client the DNSBL lists, with the list's reason", function()
    local srv = start{ dnsbl = "bl.policy.example" }
    local code, text = send(srv, "a@remote.example", "alice@example.test")
    assert.equals(554, code)
    assert.equals("554 5.7.1 Service unavailable; client [127.0.0.1] blocked using " ..
      "bl.policy.example: listed by bl.policy.example: see " ..
      "https://bl.policy.example/?ip=127.0.0.1", text)
  end)

  it("greylists a new triplet, then delivers the retry after the delay, with " ..
    "Received-SPF, and keeps the state in LMDB under the spool", function()
    local srv, dir = start()
    local code, text = send(srv, "b@remote.example", "alice@example.test")
    assert.equals(451, code)
    assert.matches("^451 4%.7%.1 Greylisted: ", text)
    assert.equals(451, (send(srv, "b@remote.example", "alice@example.test")))
    socket.sleep(DELAY)
    until_delivered(srv, "b@remote.example", "alice@example.test")
    local files = H.files(dir .. "/mail/example.test/alice/new")
    assert.equals(1, #files)
    local m = H.read_file(files[1]):gsub("\r?\n([ \t])", "%1")
    assert.truthy(m:find("\nReceived-SPF: pass (localhost: domain of b@remote.example " ..
      "designates 127.0.0.1 as permitted sender) receiver=localhost; client-ip=127.0.0.1;",
      1, true), m)
    assert.truthy(srv:log():find("kv opened backend=lmdb", 1, true))
    assert.truthy(H.read_file(dir .. "/spool/kv/data.mdb"), "no LMDB under the spool")
  end)

  it("refuses to relay", function()
    local srv = start()
    local code, text = send(srv, "c@remote.example", "someone@elsewhere.example")
    assert.equals(554, code)
    assert.matches("relay access denied", text)
  end)

  it("limits the messages of one client address (-D ratelimit=2/60)", function()
    local srv = start{ ratelimit = "2/60" }
    local c = H.connect(srv.port)
    c:expect(220)
    c:cmd("EHLO client.example", 250)
    c:cmd("MAIL FROM:<d@remote.example>", 250)
    c:cmd("RSET", 250)
    c:cmd("MAIL FROM:<d@remote.example>", 250)
    c:cmd("RSET", 250)
    c:cmd("MAIL FROM:<e@remote.example>", 451,
      "^451 4%.7%.1 Rate limit exceeded %(your address%), try again in %d+ seconds$")
    c:cmd("QUIT", 221)
    c:close()
  end)

  it("shares greylisting between two nodes on one Redis (-D redis)", function()
    local redis = peers.redis{}
    local ok, err = pcall(function()
      local a = start{ redis = "127.0.0.1:" .. redis.port }
      local b = start{ redis = "127.0.0.1:" .. redis.port }
      assert.equals(451, (send(a, "f@remote.example", "bob@example.test")))
      socket.sleep(DELAY)
      until_delivered(b, "f@remote.example", "bob@example.test")
      assert.truthy(b:log():find("kv opened backend=redis", 1, true))
      assert.truthy(redis:cmd("GET", "luasmtpd:grey:t:127.0.0.0/24/f@remote.example/" ..
        "bob@example.test"))
    end)
    redis:stop()
    assert(ok, err)
  end)
end)
