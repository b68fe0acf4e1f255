-- SMTP relaying with deliver.smtp (RFC 5321 client side): Postfix's
-- smtp-sink as the next hop (envelope, 8BITMIME, PIPELINING, fault
-- injection), a scripted next hop (pipelining on the wire, hostile
-- replies), a second luasmtpd (STARTTLS, verification, AUTH, SIZE), and
-- examples/relay.lua (no open relay).
local H = require "spec.helpers"
local peers = require "spec.support.peers"
local socket = require "socket"

local PASSWORD = "Sm4rt-h0st-secret"
local WRONG = "not-the-Passw0rd"

-- A Lua literal for a flat table of strings, numbers, booleans and tables.
local function literal(v)
  if type(v) == "table" then
    local parts = {}
    for k, x in pairs(v) do parts[#parts + 1] = ("[%q] = %s"):format(k, literal(x)) end
    table.sort(parts)
    return "{ " .. table.concat(parts, ", ") .. " }"
  elseif type(v) == "string" then
    return ("%q"):format(v)
  end
  return tostring(v)
end

-- The relay under test: recipients at <case>.test go out with cases[case].
local function relay_config(cases, hook_timeout)
  local lines = {}
  for name, opts in pairs(cases) do
    lines[#lines + 1] = ("cases[%q] = %s"):format(name, literal(opts))
  end
  return H.basic_config:gsub("function hooks.rcpt.*$", "") .. [[
local deliver = require "luasmtpd.deliver"
local delivery = require "luasmtpd.delivery"
hostname = "relay.example.test"
timeouts = { hook = ]] .. (hook_timeout or 30) .. [[ }
local cases = {}
]] .. table.concat(lines, "\n") .. [[

function hooks.rcpt(s, rcpt) return smtp.accept() end
function hooks.message(s, msg)
  local case = msg.rcpts[1].address:match("@([%w_-]+)%.test$")
  local res = deliver.smtp(cases[case])
  local parts = {}
  for _, o in ipairs(res) do
    parts[#parts + 1] = ("%s=%d/%s"):format(o.address, o.code, o.ecode)
  end
  s:log(("relay-result case=%s %s error=%s"):format(case, table.concat(parts, " "),
    tostring(res.error)))
  return delivery.verdict(res)
end
]]
end

-- Send one message through the relay; returns code, text.
local function relay(port, rcpts, opts)
  opts = opts or {}
  local c = H.connect(port, nil, 30)
  c:expect(220)
  c:cmd("EHLO client.test", 250)
  c:cmd("MAIL FROM:<" .. (opts.from or "sender@client.test") .. ">" .. (opts.mail_params or ""),
    250)
  for _, r in ipairs(rcpts) do c:cmd("RCPT TO:<" .. r .. ">", 250) end
  c:cmd("DATA", 354)
  c:send(opts.body or "Subject: relayed\r\n\r\nthrough the relay\r\n..leading dot\r\n.\r\n")
  if opts.no_reply then return c end
  local code, text = c:reply(30)
  c:cmd("QUIT", 221)
  c:close()
  return code, text
end

local function queued(srv)
  local out = {}
  for _, f in ipairs(H.files(srv.dir .. "/spool/queue")) do
    out[#out + 1] = H.read_file(f)
  end
  return out
end

describe("deliver.smtp to smtp-sink #e2e", function()
  local srv, sinks, refused_port = nil, {}, nil

  lazy_setup(function()
    sinks.plain = peers.smtp_sink{ dump = true }
    sinks.nopipe = peers.smtp_sink{ dump = true, args = { "-p" } }
    sinks.no8bit = peers.smtp_sink{ dump = true, args = { "-8" } }
    sinks.noesmtp = peers.smtp_sink{ dump = true, args = { "-e" } }
    sinks.v6 = peers.smtp_sink{ dump = true, host = "::1" }
    sinks.rcpt450 = peers.smtp_sink{ dump = true, faults = { "-r", "RCPT" } }
    sinks.rcpt5xx = peers.smtp_sink{ dump = true, faults = { "-f", "RCPT" } }
    sinks.mail421 = peers.smtp_sink{ dump = true, faults = { "-Q", "MAIL" } }
    sinks.data421 = peers.smtp_sink{ dump = true, faults = { "-Q", "DATA" } }
    sinks.rcptquit = peers.smtp_sink{ dump = true, faults = { "-q", "RCPT" } }
    -- -p: with pipelining, smtp-sink -W answers the pipelined DATA (503)
    -- before the delayed RCPT, out of order.
    sinks.slow = peers.smtp_sink{ dump = true, faults = { "-p", "-W", "RCPT:4" } }
    sinks.abort = peers.smtp_sink{ dump = true, faults = { "-A", "0" } }
    refused_port = peers.free_port()
    local cases = {
      required = { host = "127.0.0.1", port = sinks.plain.port, starttls = "required" },
      refused = { host = "127.0.0.1", port = refused_port },
      unknown = { host = "no-such-host.invalid", port = 25 },
      slow = { host = "127.0.0.1", port = sinks.slow.port, timeout = 1.5 },
      plaintextauth = { host = "127.0.0.1", port = sinks.plain.port, starttls = "none",
                        auth = { user = "alice", pass = PASSWORD } },
    }
    for name, sink in pairs(sinks) do
      if not cases[name] then cases[name] = { host = sink.host, port = sink.port } end
    end
    srv = H.start_server{ config = relay_config(cases) }
  end)
  -- Stops whatever started, even after a failed setup.
  lazy_teardown(function()
    if srv then srv:stop() end
    for _, s in pairs(sinks) do s:stop() end
  end)

  it("relays with the right envelope, 8BITMIME and pipelining (smtp-sink offers both)", function()
    local code, text = relay(srv.port, { "one@plain.test", "two@plain.test" },
      { from = "origin@client.test", mail_params = " BODY=8BITMIME" })
    assert.equals(250, code, text)
    assert.truthy(text:find("^250 2%.0%.0 Ok: delivered as"), text)
    local msg = sinks.plain:wait_messages(1)[1]
    assert.truthy(msg:find("X-Mail-Args: <origin@client.test> BODY=8BITMIME\n", 1, true), msg)
    assert.truthy(msg:find("X-Rcpt-Args: <one@plain.test>\nX-Rcpt-Args: <two@plain.test>\n",
      1, true), msg)
    assert.truthy(msg:find("X-Helo-Args: relay.example.test", 1, true), msg)
    -- Our Received: header first, the body dot-stuffed on the wire and intact.
    assert.truthy(msg:find("Received: from client.test", 1, true), msg)
    assert.truthy(msg:find("\nthrough the relay\n.leading dot\n", 1, true), msg)
    srv:wait_log("deliver smtp tx=%S+ to=<two@plain%.test> target=127%.0%.0%.1:%d+ " ..
      "result=delivered code=250 ecode=2%.0%.0")
  end)

  it("relays without pipelining when it is not offered (smtp-sink -p)", function()
    local code, text = relay(srv.port, { "a@nopipe.test", "b@nopipe.test", "c@nopipe.test" })
    assert.equals(250, code, text)
    local msg = sinks.nopipe:wait_messages(1)[1]
    assert.truthy(msg:find("X-Rcpt-Args: <a@nopipe.test>\nX-Rcpt-Args: <b@nopipe.test>\n" ..
      "X-Rcpt-Args: <c@nopipe.test>\n", 1, true), msg)
  end)

  it("leaves BODY=8BITMIME out when the next hop does not offer 8BITMIME (-8)", function()
    local code, text = relay(srv.port, { "x@no8bit.test" }, { mail_params = " BODY=8BITMIME" })
    assert.equals(250, code, text)
    local msg = sinks.no8bit:wait_messages(1)[1]
    assert.truthy(msg:find("X-Mail-Args: <sender@client.test>\n", 1, true), msg)
  end)

  it("relays to an IPv6 next hop (host = \"::1\")", function()
    local code, text = relay(srv.port, { "x@v6.test" })
    assert.equals(250, code, text)
    assert.truthy(sinks.v6:wait_messages(1)[1]:find("X-Rcpt-Args: <x@v6.test>", 1, true))
    srv:wait_log("deliver smtp tx=%S+ to=<x@v6%.test> target=%[::1%]:%d+ result=delivered")
  end)

  it("falls back to HELO when EHLO is refused (-e), with no ESMTP parameters", function()
    local code, text = relay(srv.port, { "x@noesmtp.test" }, { mail_params = " BODY=8BITMIME" })
    assert.equals(250, code, text)
    local msg = sinks.noesmtp:wait_messages(1)[1]
    assert.truthy(msg:find("X-Helo-Args: relay.example.test\n", 1, true), msg)
    assert.truthy(msg:find("X-Mail-Args: <sender@client.test>\n", 1, true), msg)
  end)

  it("maps a 450 to RCPT (-r RCPT) to a temporary failure", function()
    local code, text = relay(srv.port, { "x@rcpt450.test" })
    -- luasmtpd.delivery: all temporary -> 451 with the next hop's enhanced code.
    assert.equals(451, code, text)
    assert.truthy(text:find("^451 4%.3%.0 Error: command failed"), text)
    srv:wait_log("relay%-result case=rcpt450 x@rcpt450%.test=450/4%.3%.0 error=nil")
    assert.same({}, sinks.rcpt450:messages())
  end)

  it("maps a 5xx to RCPT (-f RCPT) to a permanent refusal", function()
    local code, text = relay(srv.port, { "x@rcpt5xx.test", "y@rcpt5xx.test" })
    -- All refused for good -> 550 with the next hop's enhanced code.
    assert.equals(550, code, text)
    assert.truthy(text:find("^550 5%.3%.0 "), text)
    srv:wait_log("relay%-result case=rcpt5xx x@rcpt5xx%.test=500/5%.3%.0 " ..
      "y@rcpt5xx%.test=500/5%.3%.0")
  end)

  it("maps 421 and a closed connection after MAIL (-Q MAIL) to 451", function()
    local code, text = relay(srv.port, { "x@mail421.test" })
    assert.equals(451, code, text)
    srv:wait_log("relay%-result case=mail421 x@mail421%.test=451/4%.0%.0 error=" ..
      "127%.0%.0%.1:%d+ said: 421 4%.0%.0 Server closing connection %(in reply to MAIL FROM%)")
  end)

  it("maps 421 after DATA (-Q DATA) to 451 and delivers nothing", function()
    local code, text = relay(srv.port, { "x@data421.test" })
    assert.equals(451, code, text)
    srv:wait_log("relay%-result case=data421 x@data421%.test=451/")
    assert.same({}, sinks.data421:messages())
  end)

  it("maps a silent close after RCPT (-q RCPT) to 451", function()
    local code, text = relay(srv.port, { "x@rcptquit.test" })
    assert.equals(451, code, text)
    assert.truthy(text:find("^451 4%.4%.2 Error: 127%.0%.0%.1:%d+: lost connection during " ..
      "RCPT TO"), text)
  end)

  it("maps a 550 in the middle of the data (-A 0) to a permanent refusal", function()
    local code, text = relay(srv.port, { "x@abort.test" })
    assert.equals(550, code, text)
    assert.truthy(text:find("^550 5%.%d+%.%d+ "), text)
    assert.same({}, sinks.abort:messages())
  end)

  it("times out on a slow next hop (-W RCPT:4 > timeout 1.5) while serving others", function()
    local c = relay(srv.port, { "x@slow.test" }, { no_reply = true })
    srv:wait_log("smtp rcpt tx=%S+ to=<x@slow%.test>")
    -- Another session is served while the first one's hook waits.
    local other = H.connect(srv.port)
    other:expect(220)
    other:cmd("EHLO other.test", 250)
    other:cmd("NOOP", 250)
    other:cmd("QUIT", 221)
    other:close()
    assert.is_nil(srv:log():find("relay-result case=slow", 1, true))
    local code, text = c:reply(30)
    assert.equals(451, code, text)
    assert.truthy(text:find("^451 4%.4%.2 Error: 127%.0%.0%.1:%d+: timed out waiting for " ..
      "the reply to RCPT TO"), text)
    c:close()
    srv:wait_log("smtpc failed target=127%.0%.0%.1:%d+ stage=RCPT TO code=451")
  end)

  it("does not send the message in plaintext when STARTTLS is required", function()
    local before = #sinks.plain:messages()
    local code, text = relay(srv.port, { "x@required.test" })
    assert.equals(451, code, text)
    assert.truthy(text:find("^451 4%.7%.4 Error: .*STARTTLS is required but not offered"), text)
    H.sleep(0.2)
    assert.equals(before, #sinks.plain:messages())
  end)

  it("refuses to send credentials without TLS", function()
    local before = #sinks.plain:messages()
    local code, text = relay(srv.port, { "x@plaintextauth.test" })
    assert.equals(451, code, text)
    assert.truthy(text:find("refusing to send credentials without TLS", 1, true), text)
    assert.equals(before, #sinks.plain:messages())
  end)

  it("answers 451 for a refused connection, and logs it", function()
    local code, text = relay(srv.port, { "x@refused.test" })
    assert.equals(451, code, text)
    assert.truthy(text:find("^451 4%.4%.1 Error: 127%.0%.0%.1:" .. refused_port ..
      ": connect to 127%.0%.0%.1:" .. refused_port .. ": Connection refused"), text)
    srv:wait_log("smtpc connect%-failed target=127%.0%.0%.1:" .. refused_port)
    srv:wait_log("deliver smtp tx=%S+ to=<x@refused%.test> target=127%.0%.0%.1:" ..
      refused_port .. " result=tempfail code=451 ecode=4%.4%.1")
  end)

  it("answers 451 for a host name that does not resolve, and logs it", function()
    local code, text = relay(srv.port, { "x@unknown.test" })
    assert.equals(451, code, text)
    assert.truthy(text:find("^451 4%.4%.[34] Error: no%-such%-host%.invalid:25: cannot " ..
      "resolve no%-such%-host%.invalid"), text)
    srv:wait_log("deliver smtp tx=%S+ to=<x@unknown%.test> target=no%-such%-host%.invalid:25 " ..
      "result=tempfail code=451")
  end)

  it("kept serving throughout", function()
    assert.is_true(srv:alive())
    assert.equals(0, srv:count_log("hook error"))
  end)
end)

-- ---- a scripted next hop: what goes over the wire ----

local Fake = {}
Fake.__index = Fake

local function fake_server()
  local srv = assert(socket.bind("127.0.0.1", 0))
  srv:settimeout(15)
  local _, port = srv:getsockname()
  return setmetatable({ srv = srv, port = tonumber(port) }, Fake)
end

function Fake:accept()
  local s = assert(self.srv:accept())
  s:settimeout(10)
  self.s = s
  return self
end

function Fake:send(data) assert(self.s:send(data)) end

-- One line, or nil, "timeout" when nothing came within t seconds.
function Fake:line(t)
  self.s:settimeout(t or 10)
  local l, err = self.s:receive("*l")
  self.s:settimeout(10)
  return l, err
end

function Fake:close() if self.s then self.s:close() end end

describe("deliver.smtp on the wire (a scripted next hop) #e2e", function()
  local srv, fake

  lazy_setup(function()
    fake = fake_server()
    srv = H.start_server{ config = relay_config{
      fake = { host = "127.0.0.1", port = fake.port, timeout = 5 } } }
  end)
  lazy_teardown(function()
    if srv then srv:stop() end
    fake.srv:close()
  end)

  it("sends MAIL, every RCPT and DATA in one go when PIPELINING is offered", function()
    local c = relay(srv.port, { "a@fake.test", "b@fake.test" }, { no_reply = true })
    fake:accept()
    fake:send("220 fake ESMTP\r\n")
    assert.equals("EHLO relay.example.test", fake:line())
    fake:send("250-fake\r\n250-PIPELINING\r\n250-SIZE 100000\r\n250 8BITMIME\r\n")
    local mail = fake:line()
    assert.truthy(mail:find("^MAIL FROM:<sender@client%.test> SIZE=%d+$"), mail)
    -- No reply sent yet, and the rest of the envelope is already here.
    assert.equals("RCPT TO:<a@fake.test>", fake:line(3))
    assert.equals("RCPT TO:<b@fake.test>", fake:line(3))
    assert.equals("DATA", fake:line(3))
    fake:send("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n")
    local lines = {}
    repeat
      local l = fake:line()
      lines[#lines + 1] = l
    until l == "." or l == nil
    local body = table.concat(lines, "\n")
    -- Transparency: the client's "..leading dot" is "..leading dot" again on the wire.
    assert.truthy(body:find("\nthrough the relay\n..leading dot\n.$"), body)
    local size = tonumber(mail:match("SIZE=(%d+)"))
    assert.truthy(size > #body - 20, mail)
    fake:send("250 2.0.0 Ok: queued\r\n")
    assert.equals("QUIT", fake:line())
    fake:send("221 Bye\r\n")
    fake:close()
    local code, text = c:reply(15)
    assert.equals(250, code, text)
    c:close()
  end)

  it("waits for each reply when PIPELINING is not offered", function()
    local c = relay(srv.port, { "a@fake.test", "b@fake.test" }, { no_reply = true })
    fake:accept()
    fake:send("220 fake ESMTP\r\n")
    fake:line()
    fake:send("250-fake\r\n250 8BITMIME\r\n")
    assert.truthy(fake:line():find("^MAIL FROM:<sender@client%.test>$"))
    local l, err = fake:line(1)
    assert.is_nil(l)
    assert.equals("timeout", err)
    fake:send("250 2.1.0 Ok\r\n")
    assert.equals("RCPT TO:<a@fake.test>", fake:line())
    fake:send("550 5.1.1 no such user a\r\n")
    assert.equals("RCPT TO:<b@fake.test>", fake:line())
    fake:send("250 2.1.5 Ok\r\n")
    assert.equals("DATA", fake:line())
    fake:send("354 go ahead\r\n")
    repeat l = fake:line() until l == "." or l == nil
    fake:send("250 2.0.0 Ok: queued\r\n")
    assert.equals("QUIT", fake:line())
    fake:close()
    -- One delivered, one refused: 451 (the documented mapping for a mix).
    local code, text = c:reply(15)
    assert.equals(451, code, text)
    c:close()
    srv:wait_log("relay%-result case=fake a@fake%.test=550/5%.1%.1 b@fake%.test=250/2%.0%.0")
  end)

  it("reads multi-line replies and takes their enhanced code", function()
    local c = relay(srv.port, { "a@fake.test" }, { no_reply = true })
    fake:accept()
    fake:send("220-fake ESMTP\r\n220 second line\r\n")
    fake:line()
    fake:send("250-fake\r\n250 PIPELINING\r\n")
    fake:line()
    fake:line()
    fake:line()
    fake:send("250 2.1.0 Ok\r\n550-5.7.1 first line\r\n550-5.7.1 second line\r\n" ..
      "550 5.7.1 third line\r\n554 5.5.1 no valid recipients\r\n")
    assert.equals("QUIT", fake:line())
    fake:close()
    local code, text = c:reply(15)
    assert.equals(550, code, text)
    assert.truthy(text:find("^550 5%.7%.1 Error: first line second line third line$"), text)
  end)

  it("does not accept a garbage greeting: 451, protocol error", function()
    local c = relay(srv.port, { "a@fake.test" }, { no_reply = true })
    fake:accept()
    fake:send("hello, I am not an SMTP server\r\n")
    local code, text = c:reply(15)
    assert.equals(451, code, text)
    assert.truthy(text:find("^451 4%.5%.0 Error: .*protocol error during greeting: " ..
      "malformed reply line"), text)
    fake:close()
    c:close()
  end)

  it("does not accept a reply line longer than 2048 octets", function()
    local c = relay(srv.port, { "a@fake.test" }, { no_reply = true })
    fake:accept()
    fake:send("220 " .. ("x"):rep(3000) .. "\r\n")
    local code, text = c:reply(15)
    assert.equals(451, code, text)
    assert.truthy(text:find("reply line too long", 1, true), text)
    fake:close()
    c:close()
  end)

  it("does not accept a reply code of 6xx or 1xx", function()
    for _, greeting in ipairs{ "600 six hundred\r\n", "199 one-ninety-nine\r\n" } do
      local c = relay(srv.port, { "a@fake.test" }, { no_reply = true })
      fake:accept()
      fake:send(greeting)
      local code, text = c:reply(15)
      assert.equals(451, code, text)
      assert.truthy(text:find("reply code out of range", 1, true), text)
      fake:close()
      c:close()
    end
  end)

  it("does not take plaintext sent after the 220 to STARTTLS", function()
    local s2 = H.start_server{ config = relay_config{
      fake = { host = "127.0.0.1", port = fake.port, timeout = 5, starttls = "required",
               verify = false } } }
    local c = relay(s2.port, { "a@fake.test" }, { no_reply = true })
    fake:accept()
    fake:send("220 fake ESMTP\r\n")
    fake:line()
    fake:send("250-fake\r\n250 STARTTLS\r\n")
    assert.equals("STARTTLS", fake:line())
    fake:send("220 2.0.0 go ahead\r\n250 2.1.0 injected\r\n")
    local code, text = c:reply(15)
    assert.equals(451, code, text)
    assert.truthy(text:find("data after the 220 to STARTTLS", 1, true), text)
    fake:close()
    c:close()
    s2:stop()
  end)

  it("stops the delivery when the hook is abandoned (timeouts.hook), and goes on", function()
    local s2 = H.start_server{ config = relay_config({
      fake = { host = "127.0.0.1", port = fake.port, timeout = 20 } }, 1) }
    local c = relay(s2.port, { "a@fake.test" }, { no_reply = true })
    fake:accept()
    fake:send("220 fake ESMTP\r\n")
    assert.equals("EHLO relay.example.test", fake:line())
    -- Say nothing more: the hook times out first, and its delivery must go.
    local code, text = c:reply(15)
    assert.equals(451, code, text)
    assert.truthy(text:find("^451 4%.3%.0 "), text)
    local l, err = fake:line(5)
    assert.is_nil(l)
    assert.equals("closed", err)
    s2:wait_log("hook error hook=message error=\"hook timed out")
    assert.is_nil(s2:log():find("relay-result", 1, true))
    -- The session and the server are fine: another message goes through.
    c:cmd("RSET", 250)
    c:cmd("QUIT", 221)
    c:close()
    fake:close()
    assert.is_true(s2:alive())
    s2:stop()
  end)

  it("times out a next hop that says nothing", function()
    local c = relay(srv.port, { "a@fake.test" }, { no_reply = true })
    fake:accept()
    local code, text = c:reply(30)
    assert.equals(451, code, text)
    assert.truthy(text:find("timed out waiting for the reply to greeting", 1, true), text)
    fake:close()
    c:close()
  end)
end)

-- ---- a second luasmtpd as the next hop: STARTTLS, verification, AUTH ----

local function target_config(cert, key, users)
  return H.basic_config:gsub('listen = smtp.var%("listen"%)', "")
    :gsub("function hooks.rcpt.*$", "") .. ([[
local passwd = require "luasmtpd.passwd"
local users = assert(passwd.load(%q))
listen = { address = smtp.var("listen"), tls = "starttls", auth = true }
tls = { certs = { { cert = %q, key = %q } } }
auth_failure_delay = 0
limits = { max_message_size = tonumber(smtp.var("max_size", "1000000")) }
function hooks.auth(s, user, password)
  if passwd.check(users, user, password) then return smtp.accept() end
  return smtp.reject()
end
function hooks.mail(s, sender, params)
  s:log(("target-mail from=%%s SIZE=%%s BODY=%%s SMTPUTF8=%%s auth=%%s"):format(sender,
    tostring(params.SIZE), tostring(params.BODY), tostring(params.SMTPUTF8),
    s.auth and s.auth.user or "none"))
end
function hooks.rcpt(s, rcpt) return smtp.accept() end
]]):format(users, cert, key)
end

describe("deliver.smtp to a luasmtpd with STARTTLS and AUTH #e2e #tls", function()
  local target, tiny, srv, cert

  lazy_setup(function()
    local dir = H.tmpdir()
    local key
    cert, key = H.make_cert(dir, "mx.tls.test")
    local users = dir .. "/users"
    H.write_file(users, "alice:{PLAIN}" .. PASSWORD .. "\n")
    target = H.start_server{ dir = dir, config = target_config(cert, key, users) }
    tiny = H.start_server{ config = target_config(cert, key, users),
                           defines = { max_size = "1024" } }
    local function to(port, extra)
      local o = { host = "127.0.0.1", port = port, timeout = 5 }
      for k, v in pairs(extra) do o[k] = v end
      return o
    end
    srv = H.start_server{ config = relay_config{
      noverify = to(target.port, { starttls = "required", verify = false }),
      opportunistic = to(target.port, {}),
      ca = to(target.port, { starttls = "required", ca = cert, verify_name = "mx.tls.test" }),
      wrongname = to(target.port, { starttls = "required", ca = cert,
                                    verify_name = "wrong.tls.test" }),
      systemca = to(target.port, { starttls = "required" }),
      auth = to(target.port, { starttls = "required", verify = false,
                               auth = { user = "alice", pass = PASSWORD } }),
      badauth = to(target.port, { starttls = "required", verify = false,
                                  auth = { user = "alice", pass = WRONG } }),
      tiny = to(tiny.port, { starttls = "none" }),
      utf8sink = to(target.port, { starttls = "none" }),
    } }
  end)
  lazy_teardown(function()
    if srv then srv:stop() end
    if target then target:stop() end
    if tiny then tiny:stop() end
  end)

  local function target_got(rcpt)
    for _, m in ipairs(queued(target)) do
      if m:find("\nrcpt " .. rcpt .. " ", 1, true) then return true end
    end
    return false
  end

  it("delivers over TLS without verification (verify = false)", function()
    local code, text = relay(srv.port, { "x@noverify.test" }, { mail_params = " BODY=8BITMIME" })
    assert.equals(250, code, text)
    assert.truthy(target_got("x@noverify.test"))
    target:wait_log("tls established version=TLSv1%.[23]")
    srv:wait_log("smtpc tls established target=127%.0%.0%.1:%d+ version=TLSv1%.[23] " ..
      "cipher=%S+ verify=no")
    -- SIZE and BODY=8BITMIME passed on, as the target offers them.
    local size = tonumber(target:wait_log("target%-mail from=sender@client%.test SIZE=(%d+) " ..
      "BODY=8BITMIME"))
    assert.truthy(size > 50)
  end)

  it("uses STARTTLS when offered in opportunistic mode", function()
    local n = target:count_log("tls established")
    local code, text = relay(srv.port, { "x@opportunistic.test" })
    assert.equals(250, code, text)
    assert.truthy(target_got("x@opportunistic.test"))
    assert.equals(n + 1, target:count_log("tls established"))
  end)

  it("delivers over TLS verified with ca and verify_name", function()
    local code, text = relay(srv.port, { "x@ca.test" })
    assert.equals(250, code, text)
    assert.truthy(target_got("x@ca.test"))
    srv:wait_log("smtpc tls established target=127%.0%.0%.1:%d+ version=%S+ cipher=%S+ verify=yes")
  end)

  it("does not deliver when the certificate has the wrong name", function()
    local code, text = relay(srv.port, { "x@wrongname.test" })
    assert.equals(451, code, text)
    assert.truthy(text:find("^451 4%.7%.5 Error: .*TLS handshake failed"), text)
    assert.is_false(target_got("x@wrongname.test"))
  end)

  it("does not deliver when the certificate does not chain to a system CA", function()
    local code, text = relay(srv.port, { "x@systemca.test" })
    assert.equals(451, code, text)
    assert.truthy(text:find("certificate verify failed", 1, true), text)
    assert.is_false(target_got("x@systemca.test"))
  end)

  it("authenticates with AUTH after STARTTLS", function()
    local code, text = relay(srv.port, { "x@auth.test" })
    assert.equals(250, code, text)
    assert.truthy(target_got("x@auth.test"))
    target:wait_log("auth success user=\"alice\" mechanism=PLAIN")
    target:wait_log("target%-mail from=sender@client%.test SIZE=%d+ BODY=nil SMTPUTF8=nil " ..
      "auth=alice")
    srv:wait_log("smtpc auth ok target=127%.0%.0%.1:%d+ user=alice mech=PLAIN")
  end)

  it("answers 451 when the password is wrong, and never logs a password", function()
    local code, text = relay(srv.port, { "x@badauth.test" })
    assert.equals(451, code, text)
    assert.truthy(text:find("^451 4%.7%.8 Error: .*said: 535 5%.7%.8 .*in reply to AUTH"), text)
    assert.is_false(target_got("x@badauth.test"))
    target:wait_log("auth failure user=\"alice\"")
    srv:wait_log("smtpc auth failed target=%S+ user=alice code=535")
    for _, log in ipairs{ srv:log(), target:log() } do
      for _, secret in ipairs{ PASSWORD, WRONG, H.b64("\0alice\0" .. PASSWORD),
                               H.b64("\0alice\0" .. WRONG) } do
        assert.is_nil(log:find(secret, 1, true))
      end
    end
  end)

  it("refuses a message larger than the next hop's SIZE before sending it", function()
    local big = "Subject: big\r\n\r\n" .. ("0123456789abcdef"):rep(4):rep(20, "\r\n") ..
      "\r\n.\r\n"
    local code, text = relay(srv.port, { "x@tiny.test" }, { body = big })
    -- The outcome is 552 5.3.4; the reply maps "all refused" to 550.
    assert.equals(550, code, text)
    assert.truthy(text:find("^550 5%.3%.4 Error: .*exceeds the server's limit of 1024"), text)
  end)

  it("passes SMTPUTF8 on to a next hop that offers it", function()
    local code, text = relay(srv.port, { "x@utf8sink.test" },
      { from = "jos\195\169@client.test", mail_params = " SMTPUTF8" })
    assert.equals(250, code, text)
    target:wait_log("target%-mail from=jos\\xc3\\xa9@client%.test SIZE=%d+ BODY=nil " ..
      "SMTPUTF8=true")
  end)
end)

describe("deliver.smtp with SMTPUTF8 to a next hop without it #e2e", function()
  local sink, srv

  lazy_setup(function()
    sink = peers.smtp_sink{ dump = true }
    srv = H.start_server{ config = relay_config{
      sink = { host = "127.0.0.1", port = sink.port } } }
  end)
  lazy_teardown(function()
    if srv then srv:stop() end
    if sink then sink:stop() end
  end)

  it("refuses for good with 553 5.6.7 (no downgrade)", function()
    local code, text = relay(srv.port, { "x@sink.test" },
      { from = "jos\195\169@client.test", mail_params = " SMTPUTF8" })
    assert.equals(550, code, text)
    assert.truthy(text:find("^550 5%.6%.7 Error: .*needs SMTPUTF8"), text)
    assert.same({}, sink:messages())
  end)
end)

-- ---- examples/relay.lua: who may relay ----

describe("examples/relay.lua #e2e", function()
  local sink, trusted, strict, dir

  lazy_setup(function()
    sink = peers.smtp_sink{ dump = true }
    dir = H.tmpdir()
    local users = dir .. "/users"
    H.write_file(users, "bob:{PLAIN}builder\n")
    local common = { smarthost = "127.0.0.1:" .. sink.port, hostname = "relay.example.test",
                     tls_cert = dir .. "/cert.pem", tls_key = dir .. "/key.pem" }
    trusted = H.start_server{ config_file = H.root .. "/examples/relay.lua",
      defines = common }
    local d2 = {}
    for k, v in pairs(common) do d2[k] = v end
    d2.trusted = "::1"
    d2.users = users
    strict = H.start_server{ config_file = H.root .. "/examples/relay.lua", defines = d2 }
  end)
  lazy_teardown(function()
    if trusted then trusted:stop() end
    if strict then strict:stop() end
    if sink then sink:stop() end
  end)

  it("relays for a trusted client address to the smarthost", function()
    local code, text = relay(trusted.port, { "far@away.test" })
    assert.equals(250, code, text)
    local msg = sink:wait_messages(1)[1]
    assert.truthy(msg:find("X-Rcpt-Args: <far@away.test>", 1, true), msg)
    assert.truthy(msg:find("X-Helo-Args: relay.example.test", 1, true), msg)
  end)

  it("is not an open relay: an untrusted, unauthenticated client gets 554", function()
    local c = H.connect(strict.port)
    c:expect(220)
    c:cmd("EHLO client.test", 250)
    c:cmd("MAIL FROM:<sender@client.test>", 250)
    c:cmd("RCPT TO:<far@away.test>", 554, "^554 5%.7%.1 Error: relay access denied")
    c:cmd("QUIT", 221)
    c:close()
  end)

  it("relays for an authenticated client", function()
    local before = #sink:messages()
    local c = H.connect(strict.port)
    c:expect(220)
    c:cmd("EHLO client.test", 250)
    c:cmd("STARTTLS", 220)
    H.starttls(c)
    c:cmd("EHLO client.test", 250)
    c:cmd("AUTH PLAIN " .. H.b64("\0bob\0builder"), 235)
    c:cmd("MAIL FROM:<bob@client.test>", 250)
    c:cmd("RCPT TO:<far@away.test>", 250)
    c:cmd("DATA", 354)
    c:send("Subject: authenticated\r\n\r\nfrom bob\r\n.\r\n")
    c:expect(250)
    c:cmd("QUIT", 221)
    c:close()
    local msgs = sink:wait_messages(before + 1)
    assert.truthy(msgs[#msgs]:find("X-Mail-Args: <bob@client.test>", 1, true))
  end)
end)
