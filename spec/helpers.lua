-- spec/helpers.lua — start the real luasmtpd and talk SMTP to it.
--
--   local H = require "spec.helpers"
--   local srv = H.start_server{ config = [[ ...lua... ]], defines = { k = "v" } }
--   local c = H.connect(srv.port)
--   c:expect(220)
--   c:cmd("EHLO client.test", 250)
--   srv:stop()
--
-- Servers listen on 127.0.0.1 port 0; the real port is read from the
-- server's "net listening" log line, so specs never race for ports.  Every
-- process a spec starts is recorded by PID and stopped by PID.

local socket = require "socket"

local H = {}

H.root = (function()
  local src = debug.getinfo(1, "S").source:sub(2)
  local dir = src:match("^(.*)/spec/helpers%.lua$")
  if dir == nil or dir == "" then dir = "." end
  if dir:sub(1, 1) ~= "/" then
    local pwd = io.popen("pwd"):read("*l")
    dir = dir == "." and pwd or pwd .. "/" .. dir
  end
  return dir
end)()

H.binary = os.getenv("LUASMTPD_BIN") or (H.root .. "/build/luasmtpd")

function H.sh(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"__rc=$?\"")
  local out = p:read("*a")
  p:close()
  local rc = tonumber(out:match("__rc=(%d+)%s*$"))
  return out:gsub("__rc=%d+%s*$", ""), rc
end

function H.q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

function H.tmpdir()
  local out = H.sh("mktemp -d /tmp/luasmtpd-spec.XXXXXX")
  return (out:gsub("%s+$", ""))
end

function H.write_file(path, content)
  local f = assert(io.open(path, "wb"))
  f:write(content)
  f:close()
end

function H.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local d = f:read("*a")
  f:close()
  return d
end

-- Files under dir (recursive), sorted.
function H.files(dir)
  local out = H.sh("find " .. H.q(dir) .. " -type f 2>/dev/null | sort")
  local list = {}
  for line in out:gmatch("[^\n]+") do list[#list + 1] = line end
  return list
end

-- Files under dir that hold data: the spool keeps emptied files for reuse,
-- so "nothing left in the spool" means no file with content.
function H.nonempty_files(dir)
  local out = {}
  for _, f in ipairs(H.files(dir)) do
    local d = H.read_file(f)
    if d and #d > 0 then out[#out + 1] = f end
  end
  return out
end

function H.sleep(s) socket.sleep(s) end

-- Poll fn() until it returns a true value or timeout seconds pass.
function H.wait_for(fn, timeout, what)
  local deadline = socket.gettime() + (timeout or 10)
  while socket.gettime() < deadline do
    local v = fn()
    if v then return v end
    socket.sleep(0.02)
  end
  error("timed out waiting for " .. (what or "condition"), 2)
end

-- Running (a zombie counts as gone: it has exited, it is just not reaped).
function H.alive(pid)
  local f = io.open("/proc/" .. tostring(pid) .. "/stat")
  if not f then return false end
  local stat = f:read("*l")
  f:close()
  local state = stat and stat:match("^%d+ %b() (%a)")
  return state ~= nil and state ~= "Z" and state ~= "X"
end

-- Descriptors above 2 are closed first: LuaSocket does not set
-- close-on-exec, and a server under test must not hold the spec's sockets.
local CLOSE_FDS = 'for fd in $(ls /proc/$$/fd); do ' ..
  'if [ "$fd" -gt 2 ] && [ -e /proc/$$/fd/$fd ]; then eval "exec $fd>&-"; fi; done; '

-- Start a background command; returns its PID (the exec'd program's).
function H.spawn(cmd, log)
  local out = H.sh("bash -c " .. H.q(CLOSE_FDS .. "exec " .. cmd .. " >" .. H.q(log) ..
    " 2>&1") .. " </dev/null & echo $!")
  local pid = tonumber(out:match("(%d+)"))
  assert(pid, "could not start: " .. cmd .. "\n" .. out)
  return pid
end

-- PIDs of a process's children (e.g. the server that `make run` started).
function H.children(pid)
  local out = {}
  local f = io.open("/proc/" .. pid .. "/task/" .. pid .. "/children")
  if f then
    for c in f:read("*a"):gmatch("%d+") do out[#out + 1] = tonumber(c) end
    f:close()
  end
  return out
end

function H.stop_pid(pid, signal)
  if not pid or not H.alive(pid) then return end
  for _, child in ipairs(H.children(pid)) do H.stop_pid(child, signal) end
  H.sh("kill -" .. (signal or "TERM") .. " " .. pid)
  local deadline = socket.gettime() + 5
  while socket.gettime() < deadline and H.alive(pid) do socket.sleep(0.02) end
  if H.alive(pid) then H.sh("kill -KILL " .. pid) end
end

local Server = {}
Server.__index = Server

function Server:log()
  return H.read_file(self.log_path) or ""
end

-- Wait until the log matches a Lua pattern; returns the captures.
function Server:wait_log(pattern, timeout)
  local caps
  H.wait_for(function()
    caps = { self:log():match(pattern) }
    return #caps > 0
  end, timeout or 10, "log line matching " .. pattern .. "\n--- log:\n" .. self:log())
  return unpack(caps)
end

-- The IPv4 ports of the server's listeners, in the order the config lists
-- them, once n of them are listening.
function Server:ports(n)
  local list
  H.wait_for(function()
    list = {}
    for p in self:log():gmatch("net listening addr=127%.0%.0%.1:(%d+)") do
      list[#list + 1] = tonumber(p)
    end
    return #list >= n
  end, 10, n .. " listeners\n" .. self:log())
  return list
end

function Server:count_log(pattern)
  local n = 0
  for _ in self:log():gmatch(pattern) do n = n + 1 end
  return n
end

function Server:stop()
  H.stop_pid(self.pid)
  self.pid = nil
end

function Server:alive() return self.pid ~= nil and H.alive(self.pid) end

-- H.start_server{ config = "...", defines = {...}, args = {...}, dir = ... }
-- Unless the config sets listen itself, -D listen=127.0.0.1:0 is passed
-- and the config is expected to use luasmtpd.var("listen").
function H.start_server(opts)
  local dir = opts.dir or H.tmpdir()
  local conf = opts.config_file
  if not conf then
    conf = dir .. "/config.lua"
    H.write_file(conf, opts.config)
  end
  local defines = { listen = "127.0.0.1:0", spool = dir .. "/spool" }
  for k, v in pairs(opts.defines or {}) do defines[k] = v end
  local cmd = { H.q(H.binary), "-c", H.q(conf) }
  for k, v in pairs(defines) do cmd[#cmd + 1] = "-D " .. H.q(k .. "=" .. v) end
  for _, a in ipairs(opts.args or {}) do cmd[#cmd + 1] = H.q(a) end
  local srv = setmetatable({ dir = dir, config = conf, log_path = dir .. "/server.log" }, Server)
  srv.pid = H.spawn(table.concat(cmd, " "), srv.log_path)
  local port
  H.wait_for(function()
    port = srv:log():match("net listening addr=127%.0%.0%.1:(%d+)")
    if not port and not H.alive(srv.pid) then
      error("luasmtpd exited at start:\n" .. srv:log(), 0)
    end
    return port
  end, 10, "the server to listen\n" .. srv:log())
  srv.port = tonumber(port)
  return srv
end

-- The minimal config most specs build on: accept *@example.test.
H.basic_config = [[
local smtp = require "luasmtpd"
listen = smtp.var("listen")
spool = smtp.var("spool")
hostname = "mx.example.test"
function hooks.rcpt(s, rcpt)
  if rcpt:match("@example%.test$") then return smtp.accept() end
end
]]

-- ---- an SMTP client over a real socket ----

local Client = {}
Client.__index = Client

function H.connect(port, host, timeout)
  local sock = socket.tcp()
  sock:settimeout(timeout or 10)
  assert(sock:connect(host or "127.0.0.1", port))
  return setmetatable({ sock = sock }, Client)
end

function Client:send(data)
  assert(self.sock:send(data))
  return self
end

-- One reply line without CRLF, or nil, err ("closed", "timeout").
function Client:line(timeout)
  if timeout then self.sock:settimeout(timeout) end
  local l, err = self.sock:receive("*l")
  if timeout then self.sock:settimeout(10) end
  return l, err
end

-- A whole (possibly multi-line) reply: code, text of the last line, lines.
function Client:reply(timeout)
  local lines = {}
  while true do
    local l, err = self:line(timeout)
    if not l then
      if #lines == 0 then return nil, err end
      error("reply cut short (" .. tostring(err) .. ") after: " .. table.concat(lines, " | "))
    end
    lines[#lines + 1] = l
    local code, sep = l:match("^(%d%d%d)([ -])")
    if not code then error("not an SMTP reply: " .. l) end
    if sep == " " then return tonumber(code), l, lines end
  end
end

-- Read a reply and assert its code (and optional text pattern).
function Client:expect(code, pattern, timeout)
  local got, text, lines = self:reply(timeout)
  assert(got ~= nil, "expected " .. code .. ", got no reply (" .. tostring(text) .. ")")
  assert(got == code, ("expected %d, got: %s"):format(code, table.concat(lines, " | ")))
  if pattern then
    assert(text:find(pattern), ("reply %q does not match %q"):format(text, pattern))
  end
  return text, lines
end

-- Send a command line (CRLF added) and expect a code.
function Client:cmd(line, code, pattern)
  self:send(line .. "\r\n")
  return self:expect(code, pattern)
end

-- true once the server has closed the connection.
function Client:closed(timeout)
  local l, err = self:line(timeout or 10)
  return l == nil and err == "closed"
end

function Client:close() self.sock:close() end

-- A greeted session with a transaction ready for DATA.
function H.session(port, opts)
  opts = opts or {}
  local c = H.connect(port)
  c:expect(220)
  c:cmd("EHLO client.test", 250)
  if opts.from ~= false then
    c:cmd("MAIL FROM:<" .. (opts.from or "sender@remote.test") .. ">", 250)
    for _, r in ipairs(opts.rcpts or { "user@example.test" }) do
      c:cmd("RCPT TO:<" .. r .. ">", 250)
    end
  end
  return c
end

-- Like H.connect, over a unix-domain stream socket (e.g. an LMTP socket).
function H.connect_unix(path, timeout)
  local sock = require("socket.unix").stream()
  sock:settimeout(timeout or 10)
  assert(sock:connect(path))
  return setmetatable({ sock = sock }, Client)
end

-- ---- certificates for TLS specs (openssl CLI) ----

-- A self-signed certificate for name (and extra DNS names); returns cert, key.
function H.make_cert(dir, name, extra)
  local cert, key = dir .. "/" .. name .. ".crt", dir .. "/" .. name .. ".key"
  local san = "DNS:" .. name
  for _, n in ipairs(extra or {}) do san = san .. ",DNS:" .. n end
  local out, rc = H.sh(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 " ..
    "-nodes -days 30 -subj /CN=%s -addext subjectAltName=%s -keyout %s -out %s"):format(
    H.q(name), H.q(san), H.q(key), H.q(cert)))
  assert(rc == 0, out)
  return cert, key
end

-- A CA and a client certificate it signed; returns ca, client cert, client key.
function H.make_client_ca(dir, client_name)
  local ca, cakey = dir .. "/ca.crt", dir .. "/ca.key"
  local cert, key, csr = dir .. "/client.crt", dir .. "/client.key", dir .. "/client.csr"
  local cmds = {
    ("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 " ..
      "-subj /CN=Test-CA -keyout %s -out %s"):format(H.q(cakey), H.q(ca)),
    ("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=%s " ..
      "-keyout %s -out %s"):format(H.q(client_name), H.q(key), H.q(csr)),
    ("openssl x509 -req -in %s -CA %s -CAkey %s -CAcreateserial -days 30 -out %s"):format(
      H.q(csr), H.q(ca), H.q(cakey), H.q(cert)),
  }
  for _, c in ipairs(cmds) do
    local out, rc = H.sh(c)
    assert(rc == 0, out)
  end
  return ca, cert, key
end

-- The subject CN of the certificate a server presents (openssl s_client).
function H.peer_cn(port, opts)
  opts = opts or {}
  local cmd = "openssl s_client -connect 127.0.0.1:" .. port
  if opts.starttls then cmd = cmd .. " -starttls smtp" end
  if opts.servername then cmd = cmd .. " -servername " .. H.q(opts.servername)
  else cmd = cmd .. " -noservername" end
  for _, a in ipairs(opts.args or {}) do cmd = cmd .. " " .. a end
  local out, rc = H.sh("echo QUIT | timeout 10 " .. cmd)
  return out:match("subject=CN%s*=%s*([^\n,/]+)"), out, rc
end

-- Upgrade a Client to TLS in place (after "220 Ready to start TLS").
function H.starttls(c, params)
  local ssl = require "ssl"
  local p = { mode = "client", protocol = "any", verify = "none", options = "all" }
  local servername
  for k, v in pairs(params or {}) do
    if k == "servername" then servername = v else p[k] = v end
  end
  local s = assert(ssl.wrap(c.sock, p))
  if servername then s:sni(servername) end
  s:settimeout(10)
  assert(s:dohandshake())
  c.sock = s
  return c
end

-- A Client over implicit TLS.
function H.connect_tls(port, params)
  local c = H.connect(port)
  return H.starttls(c, params)
end

function H.b64(s)
  return (require "mime").b64(s)
end

-- Resident memory of a process in KiB (VmRSS).
function H.rss_kb(pid)
  local st = H.read_file("/proc/" .. pid .. "/status") or ""
  return tonumber(st:match("VmRSS:%s*(%d+)"))
end

-- ---- start_server options for resource limits and fault injection ----
--
--   H.start_server{ ..., ulimit_nofile = 40 }   soft and hard RLIMIT_NOFILE
--   H.start_server{ ..., umask = "022" }        the umask the server starts with
--   H.start_server{ ..., faults_file = path }   LD_PRELOAD build/test/faultinject.so
--                                               with LUASMTPD_FAULTS_FILE=path
--   H.set_faults(path, "fsync /queue EIO 1\n")  arm (or "" to disarm) at run time
--
-- The options go into a small wrapper script in the server's dir that sets
-- them and execs the binary, so the PID is still the server's.  Under the
-- sanitizer pass (LUASMTPD_SANITIZED) the ASan runtime is preloaded before
-- the shim: it insists on coming first (see faultinject.c).

H.faultinject = H.root .. "/build/test/faultinject.so"

-- Replace the rules atomically (write, then rename): the shim notices the
-- new inode at its next call, and never reads a half-written file.
function H.set_faults(path, rules)
  H.write_file(path .. ".tmp", rules)
  assert(os.rename(path .. ".tmp", path))
end

local start_server_plain = H.start_server

function H.start_server(opts)
  if not (opts.ulimit_nofile or opts.umask or opts.faults_file) then
    return start_server_plain(opts)
  end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.dir = o.dir or H.tmpdir()
  local lines = { "#!/bin/bash" }
  if o.ulimit_nofile then
    lines[#lines + 1] = "ulimit -n " .. assert(tonumber(o.ulimit_nofile)) .. " || exit 111"
  end
  if o.umask then
    assert(tostring(o.umask):match("^[0-7]+$"), "umask must be octal digits")
    lines[#lines + 1] = "umask " .. o.umask
  end
  if o.faults_file then
    local f = io.open(H.faultinject, "rb")
    assert(f, H.faultinject .. " is missing: make build/test/faultinject.so")
    f:close()
    local preload = H.faultinject
    if os.getenv("LUASMTPD_SANITIZED") then
      local asan = H.sh("cc -print-file-name=libasan.so"):gsub("%s+$", "")
      preload = asan .. " " .. preload
    end
    lines[#lines + 1] = "export LD_PRELOAD=" .. H.q(preload)
    lines[#lines + 1] = "export LUASMTPD_FAULTS_FILE=" .. H.q(o.faults_file)
  end
  lines[#lines + 1] = 'exec ' .. H.q(H.binary) .. ' "$@"'
  local wrapper = o.dir .. "/start-server.sh"
  H.write_file(wrapper, table.concat(lines, "\n") .. "\n")
  H.sh("chmod 0755 " .. H.q(wrapper))
  local binary = H.binary
  H.binary = wrapper
  local ok, srv = pcall(start_server_plain, o)
  H.binary = binary
  if not ok then error(srv, 0) end
  return srv
end

-- CPU time a process has used, in seconds (utime + stime of /proc/PID/stat).
function H.cpu_seconds(pid)
  local stat = H.read_file("/proc/" .. pid .. "/stat") or ""
  local rest = stat:match("^%d+ %b() (.*)$")
  assert(rest, "no /proc/" .. pid .. "/stat")
  local f = {}
  for x in rest:gmatch("%S+") do f[#f + 1] = x end
  -- Fields 14 and 15 of the line; rest starts at field 3.
  local ticks = tonumber(f[12]) + tonumber(f[13])
  local hz = tonumber((H.sh("getconf CLK_TCK"))) or 100
  return ticks / hz
end

-- ---- for the glue and bounds specs (issue 8) ----

-- Send bytes when the server may hang up meanwhile (a refused line):
-- true, or nil and the error, instead of raising.
function Client:try_send(data)
  local i = 1
  while i <= #data do
    local n, err, last = self.sock:send(data, i)
    if not n then return nil, err, last end
    i = n + 1
  end
  return true
end

-- Up to n replies, or fewer when the server closes or goes quiet for
-- timeout seconds: a list of { code =, text = } and why it stopped early
-- ("closed", "timeout", "garbled: ...") or nil when n arrived.
function Client:replies(n, timeout)
  local out = {}
  while #out < n do
    local ok, code, text = pcall(self.reply, self, timeout)
    if not ok then return out, "garbled: " .. tostring(code) end
    if code == nil then return out, text end
    out[#out + 1] = { code = code, text = text }
  end
  return out
end

-- A fresh session carries one whole transaction: true, or nil and why.
-- For loops that must report which case broke the server, not raise.
function H.transaction_works(port)
  local ok, err = pcall(function()
    local c = H.session(port)
    c:cmd("DATA", 354)
    c:send("Subject: still serving\r\n\r\nhello\r\n.\r\n")
    c:expect(250)
    c:cmd("QUIT", 221)
    c:close()
  end)
  if ok then return true end
  return nil, tostring(err)
end

-- A session upgraded with STARTTLS (RFC 3207) and greeted again.
function H.tls_session(port, params)
  local c = H.connect(port)
  c:expect(220)
  c:cmd("EHLO client.test", 250)
  c:cmd("STARTTLS", 220)
  H.starttls(c, params)
  c:cmd("EHLO client.test", 250)
  return c
end

-- Like H.start_server, with cwd as the server's working directory, so
-- that relative paths in a config (README's "var/mail/") land in a
-- temporary tree.  opts.dir holds the config and the log.
function H.start_server_in(cwd, opts)
  local dir = opts.dir or H.tmpdir()
  local conf = opts.config_file
  if not conf then
    conf = dir .. "/config.lua"
    H.write_file(conf, opts.config)
  end
  local defines = { listen = "127.0.0.1:0", spool = dir .. "/spool" }
  for k, v in pairs(opts.defines or {}) do defines[k] = v end
  local cmd = { "env", "-C", H.q(cwd), H.q(H.binary), "-c", H.q(conf) }
  for k, v in pairs(defines) do cmd[#cmd + 1] = "-D " .. H.q(k .. "=" .. v) end
  for _, a in ipairs(opts.args or {}) do cmd[#cmd + 1] = H.q(a) end
  local srv = setmetatable({ dir = dir, config = conf, log_path = dir .. "/server.log" }, Server)
  srv.pid = H.spawn(table.concat(cmd, " "), srv.log_path)
  local port
  H.wait_for(function()
    port = srv:log():match("net listening addr=127%.0%.0%.1:(%d+)")
    if not port and not H.alive(srv.pid) then
      error("luasmtpd exited at start:\n" .. srv:log(), 0)
    end
    return port
  end, 10, "the server to listen\n" .. srv:log())
  srv.port = tonumber(port)
  return srv
end

-- The file-creation mask of a process, as the octal string of
-- /proc/PID/status ("0022").
function H.umask_of(pid)
  local st = H.read_file("/proc/" .. pid .. "/status") or ""
  return st:match("Umask:%s*(%d+)")
end

return H
