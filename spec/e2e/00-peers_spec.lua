-- spec/support/peers.lua: each real peer starts, speaks its protocol, and stops.
local H = require "spec.helpers"
local peers = require "spec.support.peers"
local socket = require "socket"

-- Every PID a peer had (and its descendants), checked at the end.
local started_pids = {}
local function remember(p)
  for _, pid in ipairs(p:pids()) do started_pids[#started_pids + 1] = pid end
end
-- Record the processes as they are now (Dovecot forks lmtp workers on demand), then stop.
local function stop(p)
  remember(p)
  p:stop()
end

-- Send a message after DATA and read one reply per accepted recipient (LMTP).
local function lmtp_data(c, n, body)
  c:cmd("DATA", 354)
  c:send(body or "Subject: peers\r\n\r\nhello from the peers spec, longer than ten bytes\r\n.\r\n")
  local replies = {}
  for i = 1, n do
    local code, text, lines = c:reply()
    assert(code, "no reply " .. i .. " of " .. n .. " after DATA: " .. tostring(text))
    replies[i] = table.concat(lines, "\n")
  end
  return replies
end

describe("peers.dovecot_lmtp #e2e #lmtp", function()
  local lmtp

  lazy_setup(function()
    lmtp = peers.dovecot_lmtp{ users = { "alice", "bob" }, quota_full = { "full" },
                               unwritable = { "stuck" } }
    remember(lmtp)
  end)
  lazy_teardown(function() stop(lmtp) end)

  it("delivers to alice over the unix socket into her Maildir", function()
    local c = H.connect_unix(lmtp.socket)
    c:expect(220)
    local _, lines = c:cmd("LHLO client.test", 250)
    assert.truthy(table.concat(lines, "\n"):find("ENHANCEDSTATUSCODES", 1, true))
    c:cmd("MAIL FROM:<sender@remote.test>", 250)
    c:cmd("RCPT TO:<alice@example.test>", 250, "^250 2%.1%.5 ")
    local r = lmtp_data(c, 1, "Subject: unix\r\n\r\nover the unix socket\r\n.\r\n")
    assert.truthy(r[1]:find("^250 2%.0%.0 <alice@example%.test> .* Saved"), r[1])
    c:cmd("QUIT", 221)
    c:close()
    local msgs = lmtp:wait_messages("alice", 1)
    assert.equals(1, #msgs)
    assert.truthy(msgs[1]:find("Subject: unix\r?\n", 1))
    assert.truthy(msgs[1]:find("over the unix socket", 1, true))
    assert.truthy(lmtp:maildir("alice"):find("/mail/alice/Maildir$"))
  end)

  it("speaks LMTP on the 127.0.0.1 port too", function()
    local c = H.connect(lmtp.port)
    c:expect(220)
    c:cmd("LHLO client.test", 250)
    c:cmd("MAIL FROM:<sender@remote.test>", 250)
    c:cmd("RCPT TO:<bob>", 250)
    local r = lmtp_data(c, 1)
    assert.truthy(r[1]:find("^250 2%.0%.0 <bob> "), r[1])
    c:close()
    assert.equals(1, #lmtp:wait_messages("bob", 1))
  end)

  it("refuses an unknown user at RCPT with 550 5.1.1", function()
    local c = H.connect_unix(lmtp.socket)
    c:expect(220)
    c:cmd("LHLO client.test", 250)
    c:cmd("MAIL FROM:<sender@remote.test>", 250)
    c:cmd("RCPT TO:<nosuchuser@example.test>", 550, "^550 5%.1%.1 ")
    c:cmd("QUIT", 221)
    c:close()
  end)

  it("gives 552 5.2.2 after DATA for the quota-full user, 250 for alice", function()
    local c = H.connect_unix(lmtp.socket)
    c:expect(220)
    c:cmd("LHLO client.test", 250)
    c:cmd("MAIL FROM:<sender@remote.test>", 250)
    c:cmd("RCPT TO:<full@example.test>", 250)
    c:cmd("RCPT TO:<alice@example.test>", 250)
    local r = lmtp_data(c, 2)
    assert.truthy(r[1]:find("^552 5%.2%.2 <full@example%.test> "), r[1])
    assert.truthy(r[2]:find("^250 2%.0%.0 <alice@example%.test> "), r[2])
    c:close()
    assert.same({}, lmtp:messages("full"))
  end)

  it("gives 451 4.2.0 after DATA for the user whose home is not writable", function()
    local c = H.connect_unix(lmtp.socket)
    c:expect(220)
    c:cmd("LHLO client.test", 250)
    c:cmd("MAIL FROM:<sender@remote.test>", 250)
    c:cmd("RCPT TO:<alice@example.test>", 250)
    c:cmd("RCPT TO:<stuck@example.test>", 250)
    local r = lmtp_data(c, 2)
    assert.truthy(r[1]:find("^250 2%.0%.0 <alice@example%.test> "), r[1])
    assert.truthy(r[2]:find("^451 4%.2%.0 <stuck@example%.test> "), r[2])
    c:close()
    assert.same({}, lmtp:messages("stuck"))
    assert.truthy(lmtp:log():find("Permission denied", 1, true))
  end)
end)

describe("peers.smtp_sink #e2e", function()
  local sink, refusing, lmtp_sink

  lazy_setup(function()
    sink = peers.smtp_sink{ dump = true }
    remember(sink)
    refusing = peers.smtp_sink{ faults = { "-r", "RCPT" } }
    remember(refusing)
    lmtp_sink = peers.smtp_sink{ lmtp = true, unix = true, dump = true }
    remember(lmtp_sink)
  end)
  lazy_teardown(function()
    stop(sink)
    stop(refusing)
    stop(lmtp_sink)
  end)

  it("accepts a message and dumps it with its envelope", function()
    local c = H.session(sink.port, { from = "a@remote.test",
                                     rcpts = { "x@example.test", "y@example.test" } })
    c:cmd("DATA", 354)
    c:send("Subject: sink\r\n\r\nsunk\r\n.\r\n")
    c:expect(250)
    c:cmd("QUIT", 221)
    c:close()
    local msgs = sink:wait_messages(1)
    assert.equals(1, #msgs)
    assert.truthy(msgs[1]:find("X-Mail-Args: <a@remote.test>", 1, true))
    assert.truthy(msgs[1]:find("X-Rcpt-Args: <x@example.test>\nX-Rcpt-Args: <y@example.test>", 1, true))
    assert.truthy(msgs[1]:find("Subject: sink\n\nsunk\n", 1, true))
  end)

  it("refuses RCPT with 450 under -r RCPT", function()
    local c = H.connect(refusing.port)
    c:expect(220)
    c:cmd("EHLO client.test", 250)
    c:cmd("MAIL FROM:<a@remote.test>", 250)
    c:cmd("RCPT TO:<x@example.test>", 450)
    c:close()
  end)

  it("speaks LMTP on a unix socket under -L", function()
    local c = H.connect_unix(lmtp_sink.socket)
    c:expect(220)
    c:cmd("LHLO client.test", 250)
    c:cmd("MAIL FROM:<a@remote.test>", 250)
    c:cmd("RCPT TO:<x@example.test>", 250)
    c:cmd("RCPT TO:<y@example.test>", 250)
    local r = lmtp_data(c, 2, "Subject: lmtp sink\r\n\r\nbody\r\n.\r\n")
    assert.truthy(r[1]:find("^250"), r[1])
    assert.truthy(r[2]:find("^250"), r[2])
    c:close()
    assert.truthy(lmtp_sink:wait_messages(1)[1]:find("Subject: lmtp sink", 1, true))
  end)
end)

-- A backend that accepts one connection: returns the accepted socket.
local function listen_backend()
  local srv = assert(socket.bind("127.0.0.1", 0))
  srv:settimeout(10)
  local _, port = srv:getsockname()
  return srv, tonumber(port)
end

local function accept(srv)
  local s, err = srv:accept()
  assert(s, "backend got no connection: " .. tostring(err))
  s:settimeout(10)
  return s
end

describe("peers.haproxy #e2e", function()
  local backend, backend_port, v1, v2

  lazy_setup(function()
    backend, backend_port = listen_backend()
    v1 = peers.haproxy{ backend_port = backend_port, send_proxy = "v1" }
    remember(v1)
    v2 = peers.haproxy{ backend_port = backend_port, send_proxy = "v2" }
    remember(v2)
  end)
  lazy_teardown(function()
    stop(v1)
    stop(v2)
    backend:close()
  end)

  it("prepends a PROXY v1 line and forwards bytes both ways", function()
    local c = socket.tcp()
    c:settimeout(10)
    assert(c:connect("127.0.0.1", v1.port))
    local cport = tonumber((select(2, c:getsockname())))
    assert(c:send("hello backend\r\n"))
    local s = accept(backend)
    -- luasocket's "*l" drops the CR of each line.
    local line = assert(s:receive("*l"))
    assert.equals(("PROXY TCP4 127.0.0.1 127.0.0.1 %d %d"):format(cport, v1.port), line)
    assert.equals("hello backend", assert(s:receive("*l")))
    assert(s:send("hello client\r\n"))
    assert.equals("hello client", assert(c:receive("*l")))
    c:close()
    s:close()
  end)

  it("prepends a PROXY v2 header", function()
    local c = socket.tcp()
    c:settimeout(10)
    assert(c:connect("127.0.0.1", v2.port))
    local cport = tonumber((select(2, c:getsockname())))
    assert(c:send("after the header\r\n"))
    local s = accept(backend)
    local hdr = assert(s:receive(16))
    assert.equals("\r\n\r\n\0\r\nQUIT\n", hdr:sub(1, 12))
    assert.equals(0x21, hdr:byte(13)) -- version 2, PROXY
    assert.equals(0x11, hdr:byte(14)) -- TCP over IPv4
    local len = hdr:byte(15) * 256 + hdr:byte(16)
    assert.is_true(len >= 12)
    local body = assert(s:receive(len))
    assert.equals("\127\0\0\1\127\0\0\1", body:sub(1, 8))
    assert.equals(cport, body:byte(9) * 256 + body:byte(10))
    assert.equals(v2.port, body:byte(11) * 256 + body:byte(12))
    assert.equals("after the header", assert(s:receive("*l")))
    c:close()
    s:close()
  end)
end)

describe("peers.redis #e2e", function()
  local redis

  lazy_setup(function()
    redis = peers.redis{}
    remember(redis)
  end)
  lazy_teardown(function() stop(redis) end)

  it("round-trips SET and GET", function()
    assert.equals("OK", redis:cmd("SET", "peers:key", "va\r\nlue"))
    assert.equals("va\r\nlue", redis:cmd("GET", "peers:key"))
    assert.is_nil((redis:cmd("GET", "peers:missing")))
    local v, err = redis:cmd("NOSUCHCOMMAND")
    assert.is_nil(v)
    assert.truthy(err:find("^ERR"))
  end)
end)

describe("after the peer specs", function()
  it("left none of the processes they started running", function()
    assert.is_true(#started_pids >= 7)
    for _, pid in ipairs(started_pids) do
      assert.is_false(H.alive(pid), "pid " .. pid .. " still runs")
    end
  end)
end)
