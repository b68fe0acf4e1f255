-- 56-logsink_spec.lua — where log lines go (the `log` setting: stderr,
-- syslog, the systemd journal) and the summary line each session ends
-- with ("smtp disconnect ...").
--
-- The syslog and journal sinks are pointed (log.socket, which exists for
-- this) at a unix datagram socket the spec binds, and the spec reads what
-- arrives: RFC 3164 datagrams for syslog, journald's native KEY=value
-- datagrams for the journal, each line's level as the priority.

local H = require "spec.helpers"
local socket = require "socket"

local hooks = [[
function hooks.mail(s, sender)
  if sender == "boom@remote.test" then error("boom") end
  if sender == "slow@remote.test" then smtp.sleep(0.2) end
end
function hooks.message(s, msg)
  if msg:header("Subject") == "reject" then return smtp.reject() end
end
function hooks.auth(s, user, password)
  if user == "alice" and password == "pw" then return smtp.accept() end
  return smtp.reject()
end
]]

local function config(extra)
  return [[
local smtp = require "luasmtpd"
listen = { { address = smtp.var("listen"), auth = true, auth_plaintext = true } }
spool = smtp.var("spool")
hostname = "mx.example.test"
timeouts = { command = 1 }
function hooks.rcpt(s, rcpt)
  if rcpt:match("@example%.test$") then return smtp.accept() end
end
]] .. hooks .. (extra or "")
end

-- One session that leaves a known summary: EHLO with odd bytes, AUTH,
-- a slow mail hook, one message accepted and one refused, a hook error.
local function session(port)
  local c = H.connect(port)
  c:expect(220)
  c:cmd('EHLO odd"name\\\195\164', 250)
  c:cmd("AUTH PLAIN " .. H.b64("\0alice\0pw"), 235)
  c:cmd("MAIL FROM:<boom@remote.test>", 451)
  c:cmd("MAIL FROM:<slow@remote.test>", 250)
  c:cmd("RCPT TO:<u@example.test>", 250)
  c:cmd("DATA", 354)
  c:send("Subject: fine\r\n\r\nhello\r\n.\r\n")
  c:expect(250)
  c:cmd("MAIL FROM:<a@remote.test>", 250)
  c:cmd("RCPT TO:<u@example.test>", 250)
  c:cmd("DATA", 354)
  c:send("Subject: reject\r\n\r\nno\r\n.\r\n")
  c:expect(550)
  c:cmd("QUIT", 221)
  c:close()
end

local SUMMARY = 'smtp disconnect reason="quit" outcome=quit ip=127%.0%.0%.1 port=%d+ ' ..
  'listener=127%.0%.0%.1:%d+ helo=odd\\x22name\\x5c\\xc3\\xa4 user=alice tls=no ' ..
  'transactions=3 accepted=1 refused=1 commands=10 errors=2 bytes_in=%d+ bytes_out=%d+ ' ..
  'duration=[%d.]+ hook_wall=([%d.]+) hook_cpu=([%d.]+)'

describe("the summary line #e2e #logsink", function()
  local srv

  lazy_setup(function() srv = H.start_server{ config = config() } end)
  lazy_teardown(function() srv:stop() end)

  it("says who the client was, what it sent and how the session ended", function()
    session(srv.port)
    local wall, cpu = srv:wait_log(SUMMARY)
    wall, cpu = tonumber(wall), tonumber(cpu)
    -- The mail hook slept 0.2 s: wall time, hardly any CPU time.
    assert(wall >= 0.2, "hook_wall " .. wall)
    assert(cpu < wall / 4, ("hook_cpu %g, hook_wall %g"):format(cpu, wall))
    -- Client text is escaped: no quote or raw byte reaches the line.
    assert.is_nil(srv:log():find('helo=odd"', 1, true))
  end)

  it("names a timeout as the outcome, and '-' for what never happened", function()
    local c = H.connect(srv.port)
    c:expect(220)
    c:expect(421, nil, 5)
    c:close()
    srv:wait_log('smtp disconnect reason="timeout" outcome=timeout ip=127%.0%.0%.1 ' ..
      'port=%d+ listener=%S+ helo=%- user=%- tls=no transactions=0 accepted=0 refused=0')
  end)

  it("names a client that left without QUIT as dropped", function()
    local c = H.connect(srv.port)
    c:expect(220)
    c:cmd("EHLO gone.test", 250)
    c:close()
    srv:wait_log('smtp disconnect reason="client disconnected without QUIT" outcome=dropped ' ..
      "ip=127%.0%.0%.1 port=%d+ listener=%S+ helo=gone%.test")
  end)
end)

-- A datagram socket at path, read by a collector of its own (Python's
-- socket module) that appends each datagram and a NUL to a file: the
-- kernel queues only a few unread datagrams (net.unix.max_dgram_qlen),
-- and this spec does not read while it talks SMTP.  receive(pattern,
-- timeout) returns the first datagram that matches.
local COLLECTOR = [=[
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(0.5)
deadline = time.time() + 300
with open(sys.argv[2], "ab", buffering=0) as f:
    while time.time() < deadline:
        try:
            f.write(s.recv(65536) + b"\0")
        except socket.timeout:
            pass
]=]

local function listener(dir, name)
  local path, out = dir .. "/" .. name, dir .. "/" .. name .. ".datagrams"
  H.write_file(dir .. "/collector.py", COLLECTOR)
  H.write_file(out, "")
  local L = { pid = H.spawn("/usr/bin/python3 " .. H.q(dir .. "/collector.py") .. " " ..
    H.q(path) .. " " .. H.q(out), dir .. "/collector.log") }
  H.wait_for(function() return select(2, H.sh("test -S " .. H.q(path))) == 0 end, 10,
    "the collector's socket")
  function L.all()
    local list = {}
    for d in (H.read_file(out) or ""):gmatch("([^%z]*)%z") do list[#list + 1] = d end
    return list
  end
  function L.receive(pattern, timeout)
    local found
    H.wait_for(function()
      for _, d in ipairs(L.all()) do
        if d:find(pattern) then found = d return true end
      end
    end, timeout or 10, "a datagram matching " .. pattern .. " in:\n" ..
      table.concat(L.all(), "\n"))
    return found
  end
  function L.stop() H.stop_pid(L.pid) end
  return L
end

-- Start the server with a sink: its port comes from the sink, not stderr.
local function start_with_sink(dir, sink_setting, sock)
  local conf = dir .. "/config.lua"
  H.write_file(conf, config(sink_setting))
  local stderr = dir .. "/stderr.log"
  local pid = H.spawn(table.concat({ H.q(H.binary), "-c", H.q(conf),
    "-D", H.q("listen=127.0.0.1:0"), "-D", H.q("spool=" .. dir .. "/spool") }, " "), stderr)
  local line = sock.receive("net listening addr=127%.0%.0%.1:%d+")
  return pid, tonumber(line:match("net listening addr=127%.0%.0%.1:(%d+)")), stderr
end

describe("the syslog sink #e2e #logsink", function()
  local dir, sock, pid, port, stderr

  lazy_setup(function()
    dir = H.tmpdir()
    sock = listener(dir, "syslog.sock")
    pid, port, stderr = start_with_sink(dir, ([[
log = { sink = "syslog", facility = "local3", ident = "lsmtpd-test", socket = %q }
]]):format(dir .. "/syslog.sock"), sock)
  end)
  lazy_teardown(function()
    H.stop_pid(pid)
    sock.stop()
  end)

  it("sends RFC 3164 datagrams with facility, severity, ident and pid", function()
    session(port)
    -- local3 (19) * 8 + info (6) = 158
    local d = sock.receive("smtp disconnect reason=")
    assert.truthy(d:find("^<158>%a%a%a [ %d]%d %d%d:%d%d:%d%d lsmtpd%-test%[" .. pid ..
      "%]: %x+ " .. SUMMARY .. "$"), d)
    -- error (3): 155
    d = sock.receive("hook error hook=mail")
    assert.truthy(d:find("^<155>.- lsmtpd%-test%[%d+%]: %x+ hook error hook=mail "), d)
  end)

  it("writes nothing to stderr while the socket takes every line", function()
    assert.equals("", H.read_file(stderr))
  end)
end)

describe("the journal sink #e2e #logsink", function()
  local dir, sock, pid, port

  lazy_setup(function()
    dir = H.tmpdir()
    sock = listener(dir, "journal.sock")
    pid, port = start_with_sink(dir, ([[
log = { sink = "journal", socket = %q }
]]):format(dir .. "/journal.sock"), sock)
  end)
  lazy_teardown(function()
    H.stop_pid(pid)
    sock.stop()
  end)

  local function fields(d)
    local f = {}
    for k, v in d:gmatch("([%u_]+)=([^\n]*)\n") do f[k] = v end
    return f
  end

  it("sends native-protocol datagrams: MESSAGE, PRIORITY, facility, ident, pid, session", function()
    session(port)
    local f = fields(sock.receive("MESSAGE=%x+ smtp disconnect reason="))
    assert.equals("6", f.PRIORITY)
    assert.equals("2", f.SYSLOG_FACILITY)	-- mail, the default
    assert.equals("luasmtpd", f.SYSLOG_IDENTIFIER)
    assert.equals(tostring(pid), f.SYSLOG_PID)
    assert.truthy(f.MESSAGE:find("^" .. f.LUASMTPD_SESSION .. " " .. SUMMARY .. "$"), f.MESSAGE)
    f = fields(sock.receive("MESSAGE=%x+ hook error hook=mail"))
    assert.equals("3", f.PRIORITY)
    -- Lines outside a session carry no session field.
    f = fields(sock.receive("MESSAGE=0+ main started"))
    assert.is_nil(f.LUASMTPD_SESSION)
  end)
end)

describe("a sink that is not there #e2e #logsink", function()
  local srv

  lazy_setup(function()
    local dir = H.tmpdir()
    srv = H.start_server{ dir = dir, config = config(([[
log = { sink = "journal", socket = %q }
metrics = "127.0.0.1:0"
]]):format(dir .. "/nobody-listens.sock")) }
  end)
  lazy_teardown(function() srv:stop() end)

  it("gets its lines on stderr instead, counted as dropped", function()
    session(srv.port)
    srv:wait_log(SUMMARY)
    local mport = srv:wait_log("metrics listening addr=127%.0%.0%.1:(%d+)")
    local c = socket.tcp()
    c:settimeout(10)
    assert(c:connect("127.0.0.1", tonumber(mport)))
    c:send("GET /metrics HTTP/1.0\r\n\r\n")
    local text = c:receive("*a")
    c:close()
    local n = tonumber(text:match("\nluasmtpd_log_lines_dropped_total (%d+)\n"))
    assert(n and n >= 10, "dropped: " .. tostring(n))
  end)
end)

describe("log and metrics settings that -t refuses #e2e #logsink", function()
  local function check(extra)
    local dir = H.tmpdir()
    local path = dir .. "/conf.lua"
    H.write_file(path, 'local smtp = require "luasmtpd"\nlisten = "127.0.0.1:0"\n' .. extra)
    local out, rc = H.sh(H.q(H.binary) .. " -t -c " .. H.q(path))
    return out, rc, path
  end

  it("accepts each sink, the string shorthand and a metrics table", function()
    for _, s in ipairs{ 'log = "stderr"', 'log = "syslog"', 'log = { sink = "journal" }',
      'log = { facility = "local7", ident = "mx-1.a_b" }',
      'metrics = { address = "127.0.0.1:9465" }', 'metrics = "[::1]:9465"' } do
      local out, rc = check(s .. "\n")
      assert.equals(0, rc, s .. ": " .. out)
    end
  end)

  for _, case in ipairs{
    { 'log = { sink = "file" }', 'log.sink must be "stderr", "syslog" or "journal"' },
    { 'log = "loud"', 'log.sink must be' },
    { 'log = { facility = "mial" }', "log.facility must be" },
    { 'log = { ident = "two words" }', "log.ident may hold letters" },
    { 'log = { socket = "relative.sock" }', "log.socket must be an absolute path" },
    { 'log = { sink = "syslog", level = "info" }', "unknown setting log.level" },
    { 'log = 5', "log must be a sink name" },
    { 'metrics = "localhost:9465"', "metrics 'localhost:9465': 'localhost' is not a numeric" },
    { 'metrics = "127.0.0.1"', "metrics '127.0.0.1': expected address:port" },
    { 'metrics = "192.0.2.1:9465"', "metrics 192.0.2.1:9465: cannot bind 192.0.2.1 on this host" },
    { 'metrics = { port = 9 }', "unknown setting metrics.port" },
    { 'metrics = {}', "metrics needs address" },
  } do
    it("refuses " .. case[1], function()
      local out, rc, path = check(case[1] .. "\n")
      assert.equals(1, rc, out)
      assert.truthy(out:find(path .. ":3: " .. case[2], 1, true), out)
    end)
  end
end)
