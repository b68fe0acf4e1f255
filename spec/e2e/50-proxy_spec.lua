-- PROXY protocol v1 and v2 on a listener (src/net/proxy.c, frontend.c):
-- HAProxy from Debian in front with send-proxy and send-proxy-v2, and
-- hand-made headers from the test client itself.
--
-- HAProxy listens on 127.0.0.1 and its client connects from 127.0.0.1, so
-- the address alone proves little: the client's own port must come
-- through, and the hand-made headers name documentation addresses
-- (192.0.2.7, 2001:db8::7) that are only data in the header — nothing
-- ever connects to them.
local H = require "spec.helpers"
local peers = require "spec.support.peers"
local socket = require "socket"

local PROXY_TIMEOUT = 1.5

local function config(dir, extra)
  local cert, key = H.make_cert(dir, "mx.example.test")
  return ([[
local smtp = require "luasmtpd"
local deliver = require "luasmtpd.deliver"
listen = {
  { address = smtp.var("listen"), proxy = true, proxy_from = { "127.0.0.1" } },
  { address = "127.0.0.1:0", proxy = true, proxy_from = { "10.0.0.0/8", "::1" } },
  { address = "127.0.0.1:0", proxy = true, proxy_from = "127.0.0.0/8", tls = "implicit" },
}
tls = { certs = { { cert = %q, key = %q } } }
spool = smtp.var("spool")
hostname = "mx.example.test"
timeouts = { proxy = %g }
function hooks.connect(s)
  s:log("lua-sees remote_ip=" .. s.remote_ip .. " remote_port=" .. s.remote_port)
end
function hooks.rcpt(s, rcpt)
  return smtp.accept("seen " .. s.remote_ip .. " " .. s.remote_port)
end
function hooks.message(s, msg)
  local ok, err = deliver.maildir(%q, msg.rcpts)
  if not ok then return smtp.tempfail(451, "4.3.0", err) end
end
]]):format(cert, key, PROXY_TIMEOUT, dir .. "/mail") .. (extra or "")
end

local function v1(src, sport)
  return ("PROXY %s %s %s %d 25\r\n"):format(src:find(":", 1, true) and "TCP6" or "TCP4",
    src, src:find(":", 1, true) and "::1" or "127.0.0.1", sport)
end

local SIG = "\r\n\r\n\0\r\nQUIT\n"
local function u16(n) return string.char(math.floor(n / 256), n % 256) end

-- v2 PROXY over TCP: src and dst as 4 or 16 raw octets, then TLVs.
local function v2(src, dst, sport, dport, tlvs)
  local fam = #src == 4 and "\17" or "\33"
  local body = src .. dst .. u16(sport) .. u16(dport) .. (tlvs or "")
  return SIG .. "\33" .. fam .. u16(#body) .. body
end
local IP4 = "\192\0\2\7"                                    -- 192.0.2.7
local IP6 = "\32\1\13\184" .. ("\0"):rep(11) .. "\7"      -- 2001:db8::7
local LO4, LO6 = "\127\0\0\1", ("\0"):rep(15) .. "\1"

-- A session after a header: greeting, EHLO, MAIL, RCPT; returns the
-- client and the text of the RCPT reply ("seen <ip> <port>").
local function session_after(port, header)
  local c = H.connect(port)
  c:send(header)
  c:expect(220)
  c:cmd("EHLO client.test", 250)
  c:cmd("MAIL FROM:<a@remote.test>", 250)
  local text = c:cmd("RCPT TO:<u@example.test>", 250)
  return c, text
end

-- Closed without a single octet written: "" then EOF, or a reset.
local function closed_silently(c)
  c.sock:settimeout(10)
  local data, err, partial = c.sock:receive("*a")
  c:close()
  if data then return data == "", "got " .. ("%q"):format(data) end
  return err ~= "timeout" and (partial or "") == "", tostring(err) .. " after " ..
    ("%q"):format(partial or "")
end

describe("PROXY protocol listeners #e2e #proxy", function()
  local srv, dir, port, untrusted_port, tls_port, hv1, hv2, htls

  lazy_setup(function()
    dir = H.tmpdir()
    srv = H.start_server{ dir = dir, config = config(dir) }
    local p = srv:ports(3)
    port, untrusted_port, tls_port = p[1], p[2], p[3]
    hv1 = peers.haproxy{ backend_port = port, send_proxy = "v1" }
    hv2 = peers.haproxy{ backend_port = port, send_proxy = "v2" }
    htls = peers.haproxy{ backend_port = tls_port, send_proxy = "v2" }
  end)
  lazy_teardown(function()
    for _, h in ipairs({ hv1, hv2, htls }) do if h then h:stop() end end
    if srv then srv:stop() end
  end)

  for _, which in ipairs({ "v1", "v2" }) do
    it("behind HAProxy send-proxy" .. (which == "v2" and "-v2" or "") ..
       ", Lua and the logs see the client HAProxy saw", function()
      local h = which == "v1" and hv1 or hv2
      local c = H.connect(h.port)
      local cport = tonumber((select(2, c.sock:getsockname())))
      c:expect(220)
      c:cmd("EHLO client.test", 250)
      c:cmd("MAIL FROM:<a@remote.test>", 250)
      -- The client's own port: only the header can carry it here.
      c:cmd("RCPT TO:<u@example.test>", 250, "seen 127%.0%.0%.1 " .. cport .. "$")
      c:cmd("QUIT", 221)
      c:close()
      local id = srv:wait_log("(%x+) smtp connect ip=127%.0%.0%.1 port=" .. cport ..
        " listener=127%.0%.0%.1:" .. port)
      srv:wait_log(id .. " lua log text=\"lua%-sees remote_ip=127%.0%.0%.1 remote_port=" ..
        cport .. "\"")
      srv:wait_log(id .. " net proxy version=" .. which:sub(2) ..
        " command=proxy via=127%.0%.0%.1")
    end)
  end

  it("takes the client from a v1 TCP4 header: Lua, logs and Received: say 192.0.2.7", function()
    local c, text = session_after(port, v1("192.0.2.7", 40001))
    assert.truthy(text:find("seen 192%.0%.2%.7 40001$"), text)
    c:cmd("DATA", 354)
    c:send("Subject: proxied\r\n\r\nhi\r\n.\r\n")
    c:expect(250)
    c:cmd("QUIT", 221)
    c:close()
    srv:wait_log("smtp connect ip=192%.0%.2%.7 port=40001 ")
    local files = H.files(dir .. "/mail/new")
    assert.equals(1, #files)
    assert.truthy(H.read_file(files[1]):find("Received: from client%.test %(%[192%.0%.2%.7%]%)"))
  end)

  it("takes an IPv6 client from a v1 TCP6 header", function()
    local c, text = session_after(port, v1("2001:db8::7", 40002))
    assert.truthy(text:find("seen 2001:db8::7 40002$"), text)
    c:close()
  end)

  it("takes the client from v2 headers, IPv4 with TLVs skipped and IPv6", function()
    local tlvs = "\4" .. u16(4) .. "abcd" .. "\1" .. u16(2) .. "h2"   -- NOOP, ALPN
    local c, text = session_after(port, v2(IP4, LO4, 40003, 25, tlvs))
    assert.truthy(text:find("seen 192%.0%.2%.7 40003$"), text)
    c:close()
    c, text = session_after(port, v2(IP6, LO6, 40004, 25))
    assert.truthy(text:find("seen 2001:db8::7 40004$"), text)
    c:close()
  end)

  it("keeps the proxy's own address for v2 LOCAL and v1 UNKNOWN (health checks)", function()
    for _, hdr in ipairs({ SIG .. "\32\0" .. u16(0), "PROXY UNKNOWN\r\n" }) do
      local c = H.connect(port)
      local cport = tonumber((select(2, c.sock:getsockname())))
      c:send(hdr)
      c:expect(220)
      c:cmd("EHLO client.test", 250)
      c:cmd("MAIL FROM:<a@remote.test>", 250)
      c:cmd("RCPT TO:<u@example.test>", 250, "seen 127%.0%.0%.1 " .. cport .. "$")
      c:close()
    end
    srv:wait_log("net proxy version=2 command=local via=127%.0%.0%.1")
    srv:wait_log("net proxy version=1 command=local via=127%.0%.0%.1")
  end)

  it("reads the session's first octets right behind the header", function()
    local c = H.connect(port)
    -- Header and a command in one segment: the command is not eaten
    -- with the header (it is read after our banner, which goes out at
    -- once without greet_pause).
    c:send(v1("192.0.2.7", 40005) .. "EHLO early.test\r\n")
    c:expect(220)
    c:expect(250)
    c:close()
  end)

  it("closes a connection that sends no header when the proxy timeout passes, silently", function()
    local c = H.connect(port)
    local ok, why = closed_silently(c)
    assert(ok, why)
    srv:wait_log("net proxy%-refused ip=127%.0%.0%.1 listener=127%.0%.0%.1:" .. port ..
      " reason=\"timeout\" octets=0")
  end)

  it("closes at once, silently, a client that speaks SMTP instead of a header", function()
    local c = H.connect(port)
    c:send("EHLO client.test\r\n")
    local ok, why = closed_silently(c)
    assert(ok, why)
    srv:wait_log("reason=\"not a PROXY header\"")
  end)

  it("closes a connection from an address outside proxy_from, silently", function()
    local c = H.connect(untrusted_port)
    c:try_send(v1("192.0.2.7", 40006))
    local ok, why = closed_silently(c)
    assert(ok, why)
    srv:wait_log("net proxy%-refused ip=127%.0%.0%.1 listener=127%.0%.0%.1:" ..
      untrusted_port .. " reason=\"not in proxy_from\"")
  end)

  it("accepts a header that arrives slowly within the timeout", function()
    local c = H.connect(port)
    local hdr = v1("192.0.2.7", 40007)
    for i = 1, #hdr, 12 do
      c:send(hdr:sub(i, i + 11))
      socket.sleep(PROXY_TIMEOUT / 10)
    end
    c:expect(220)
    c:close()
    srv:wait_log("smtp connect ip=192%.0%.2%.7 port=40007 ")
  end)

  it("drops a header that is still incomplete when the timeout passes", function()
    local c = H.connect(port)
    c:send("PROXY TCP4 192.0.2.7 ")
    local ok, why = closed_silently(c)
    assert(ok, why)
    srv:wait_log("reason=\"timeout\" octets=21")
  end)

  it("drops a v1 line longer than 107 octets without waiting for its end", function()
    local c = H.connect(port)
    c:send("PROXY UNKNOWN " .. ("x"):rep(100))
    local ok, why = closed_silently(c)
    assert(ok, why)
    srv:wait_log("reason=\"v1: line too long\"")
  end)

  it("drops a v2 header whose length is over the bound before reading it", function()
    local c = H.connect(port)
    c:send(SIG .. "\33\17" .. u16(65535) .. IP4 .. LO4)
    local ok, why = closed_silently(c)
    assert(ok, why)
    srv:wait_log("reason=\"v2: header too long\"")
  end)

  it("drops malformed headers: bare LF, wrong family, bad port, short v2 block", function()
    for _, hdr in ipairs({ "PROXY TCP4 192.0.2.7 127.0.0.1 1 25\n",
        "PROXY TCP4 2001:db8::7 127.0.0.1 1 25\r\n", "PROXY TCP4 192.0.2.7 127.0.0.1 70000 25\r\n",
        SIG .. "\33\17" .. u16(8) .. IP4 .. LO4 }) do
      local c = H.connect(port)
      c:send(hdr)
      local ok, why = closed_silently(c)
      assert(ok, why)
    end
  end)

  it("runs implicit TLS after a hand-made header", function()
    local c = H.connect(tls_port)
    c:send(v1("192.0.2.7", 40008))
    H.starttls(c)
    c:expect(220)
    c:cmd("EHLO client.test", 250)
    c:cmd("MAIL FROM:<a@remote.test>", 250)
    c:cmd("RCPT TO:<u@example.test>", 250, "seen 192%.0%.2%.7 40008$")
    c:cmd("QUIT", 221)
    c:close()
  end)

  it("runs implicit TLS through HAProxy send-proxy-v2", function()
    local c = H.connect(htls.port)
    local cport = tonumber((select(2, c.sock:getsockname())))
    H.starttls(c)
    c:expect(220)
    c:cmd("EHLO client.test", 250)
    c:cmd("MAIL FROM:<a@remote.test>", 250)
    c:cmd("RCPT TO:<u@example.test>", 250, "seen 127%.0%.0%.1 " .. cport .. "$")
    c:cmd("QUIT", 221)
    c:close()
  end)

  it("still serves plain sessions after all of that", function()
    local c, text = session_after(port, v1("192.0.2.9", 40009))
    assert.truthy(text:find("seen 192%.0%.2%.9 40009$"), text)
    c:cmd("QUIT", 221)
    c:close()
  end)
end)

describe("PROXY protocol and the connection limits #e2e #proxy", function()
  local srv, port

  lazy_setup(function()
    local dir = H.tmpdir()
    srv = H.start_server{ dir = dir, config = config(dir,
      "limits = { max_connections_per_ip = 1, max_connections = 3 }\n") }
    port = srv:ports(3)[1]
  end)
  lazy_teardown(function() if srv then srv:stop() end end)

  it("counts the client named in the header, never the proxy", function()
    -- All three come from 127.0.0.1; only the claimed address counts.
    local a = H.connect(port)
    a:send(v1("192.0.2.7", 41001))
    a:expect(220)
    local b = H.connect(port)
    b:send(v1("192.0.2.7", 41002))
    b:expect(421, "^421 4%.7%.0 .*too many connections from your address")
    assert.is_true(b:closed())
    local c = H.connect(port)
    c:send(SIG .. "\33\17" .. u16(12) .. "\192\0\2\8" .. LO4 .. u16(41003) .. u16(25))
    c:expect(220)
    srv:wait_log("net refuse ip=192%.0%.2%.7 reason=max_connections_per_ip limit=1")
    a:cmd("QUIT", 221)
    assert.is_true(a:closed())
    -- Released with the session: the same client may come again.
    local d = H.connect(port)
    d:send(v1("192.0.2.7", 41004))
    d:expect(220)
    d:close()
    c:close()
  end)

  it("counts connections still waiting for their header in max_connections", function()
    H.wait_for(function()
      return srv:count_log("smtp disconnect") == srv:count_log("smtp connect")
    end, 10, "the sessions before to end")
    -- One listening socket: accepted in order, so the fourth finds three
    -- waiting (for timeouts.proxy) and is closed without a word.
    local waiting = {}
    for i = 1, 3 do waiting[i] = H.connect(port) end
    local ok, why = closed_silently(H.connect(port))
    assert(ok, why)
    srv:wait_log("net refuse ip=127%.0%.0%.1 reason=max_connections limit=3")
    for _, c in ipairs(waiting) do c:close() end
  end)
end)

describe("examples/default.lua with -D proxy #e2e #proxy", function()
  local srv, maildir

  lazy_setup(function()
    local dir = H.tmpdir()
    maildir = dir .. "/mail"
    srv = H.start_server{ dir = dir, config_file = H.root .. "/examples/default.lua",
      defines = { maildir = maildir, proxy = "127.0.0.1,::1", hostname = "mx.example.test",
        tls_cert = dir .. "/cert.pem", tls_key = dir .. "/key.pem" } }
  end)
  lazy_teardown(function() if srv then srv:stop() end end)

  it("requires a header and delivers with the client it names", function()
    local c = H.connect(srv.port)
    c:send("EHLO client.test\r\n")
    local ok, why = closed_silently(c)
    assert(ok, why)
    c = H.connect(srv.port)
    c:send(v1("192.0.2.7", 42001))
    c:expect(220)
    c:cmd("EHLO client.test", 250)
    c:cmd("MAIL FROM:<a@remote.test>", 250)
    c:cmd("RCPT TO:<alice@example.test>", 250)
    c:cmd("DATA", 354)
    c:send("Subject: via proxy\r\n\r\nhi\r\n.\r\n")
    c:expect(250)
    c:cmd("QUIT", 221)
    c:close()
    local files = H.files(maildir .. "/example.test/alice/new")
    assert.equals(1, #files)
    assert.truthy(H.read_file(files[1]):find("Received: from client%.test %(%[192%.0%.2%.7%]%)"))
  end)
end)
