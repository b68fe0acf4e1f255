-- spec/support/peers.lua — real protocol peers for specs, in temp dirs, on loopback.
--
--   local peers = require "spec.support.peers"
--   local lmtp = peers.dovecot_lmtp{ users = { "alice" } }
--   ...
--   lmtp:stop()
--
-- Every start function waits (at most `timeout`, default 10 s) until the peer
-- accepts connections, and raises an error that includes the peer's log if it
-- does not; nothing is skipped.  Servers listen on 127.0.0.1, ::1 or unix
-- sockets in the peer's temp dir only.  None of these programs can be told to
-- bind port 0 and report the port (Dovecot and Redis read 0 as "no listener",
-- smtp-sink and haproxy take a fixed port), so a free port is probed with
-- luasocket and the start is retried (5 tries) when the port was taken
-- meanwhile; a TCP peer counts as ready only once its own PID holds the
-- listening socket.  Each peer runs in the foreground as a PID we keep, and
-- inherits no descriptor of the spec above 2.  `:stop()` sends SIGTERM to that
-- PID, gives it 1 s, then SIGTERMs the descendants still there, and SIGKILLs by
-- PID whatever is left 5 s later; it raises if something still runs after that.
-- Talk to a unix socket with H.connect_unix(path) (spec/helpers.lua).
--
-- Common to every peer object:
--   .pid  .dir  .log_path    the process, its temp dir, its log file
--   :log()                   the log text ("" if none yet)
--   :alive()                 whether the PID still runs
--   :pids()                  the PID and its current descendants
--   :stop()                  stop it (harmless to call twice)
--
-- peers.dovecot_lmtp{ users = {...}, quota_full = {...}, unwritable = {...},
--                     fields = { user = "extra userdb fields" }, timeout = 10 }
--   Dovecot 2.3 in the foreground (`dovecot -F`; run/master.pid must match), no
--   stats writer, LMTP only, passwd-file userdb (username_format=%n,
--   so "alice@any.domain" is alice), mail in DIR/mail/<user>/Maildir, delivered as
--   nobody.  Replies observed with 2.3.19.1:
--     unknown user at RCPT:     550 5.1.1 <x> User doesn't exist: x
--     quota_full user, DATA:    552 5.2.2 <full> Quota exceeded (mailbox for user is full)
--                               (userdb_quota_rule=*:storage=10B and the quota plugin)
--     unwritable user, DATA:    451 4.2.0 <stuck> Internal error occurred. Refer to server log ...
--                               (home is root-owned mode 0555; lmtp runs as nobody)
--     a good recipient, DATA:   250 2.0.0 <alice> <session id> Saved
--   LMTP gives one reply per accepted RCPT after the final dot.
--   Fields: .socket (unix LMTP socket, mode 0666), .port (LMTP on 127.0.0.1),
--   .host = "127.0.0.1".  Methods: :maildir(user), :messages(user) (contents of
--   new/ and cur/ files, oldest first), :wait_messages(user, n [, timeout]).
--
-- peers.smtp_sink{ args = {...} | faults = {...}, dump = true, lmtp = true,
--                  unix = true, host = "127.0.0.1", backlog = 64, timeout = 10 }
--   Postfix's smtp-sink (`-u nobody`).  `args`/`faults` are extra flags passed
--   as they are, e.g. { "-r", "RCPT" } 450, { "-f", "MAIL" } 500, { "-Q", "DATA" }
--   421 and close, { "-q", "RCPT" } silent close, { "-A", "0" } 550 after DATA,
--   { "-W", "RCPT:2" } delay, "-e", "-p", "-8", "-E".  `lmtp` adds -L; `unix`
--   listens on DIR/sink.sock instead of TCP.  `dump` stores each message with
--   -d DIR/dump/%Y%m%d/ (headers X-Client-Addr, X-Helo-Args, X-Mail-Args,
--   X-Rcpt-Args, a Received line, then the message with LF line ends).
--   Fields: .port and .host, or .socket; .dump_dir.  Methods: :messages() (dumped
--   files' contents, oldest first), :wait_messages(n [, timeout]).
--
-- peers.haproxy{ backend_port = N, backend_host = "127.0.0.1",
--                send_proxy = "v1" | "v2" | false, host = "127.0.0.1" | "::1",
--                timeout = 10 }
--   haproxy in TCP mode in the foreground (-db) forwarding .host:.port to the
--   backend with send-proxy / send-proxy-v2.  Readiness is "haproxy's PID owns
--   the listening socket", not a connect: a connect would open a backend
--   connection and send a PROXY header the backend's test did not ask for.
--
-- peers.redis{ port = N, unix = true, timeout = 10 }
--   redis-server on 127.0.0.1, no persistence, dir DIR.  Fields: .port, .host.
--   `port` starts it on that port (e.g. again after :stop(), to test a
--   client's reconnect); `unix` also listens on DIR/redis.sock (.socket).
--   :cmd(...) sends one command on a fresh connection and returns the reply
--   (string, number, array, or nil for a null bulk); an error reply returns
--   nil, "ERR ..."; connect/read failures raise.  10 s timeout.
--
-- peers.free_port([host])   a port the kernel just handed out on host (may race)
-- peers.stop_all()          stop every peer this module started (a safety net)
-- peers.started             list of every peer object started, in order

local socket = require "socket"
local H = require "spec.helpers"

local peers = { started = {} }

local START_TIMEOUT = 10
local STOP_TIMEOUT = 5
local PORT_TRIES = 5

-- ---- small tools ----------------------------------------------------------

local function now() return socket.gettime() end

-- Every descendant of pid, depth first (children before their parent's siblings).
local function descendants(pid, out)
  out = out or {}
  for _, c in ipairs(H.children(pid)) do
    out[#out + 1] = c
    descendants(c, out)
  end
  return out
end

local function wait_gone(pids, timeout)
  local deadline = now() + timeout
  while true do
    local left = {}
    for _, p in ipairs(pids) do if H.alive(p) then left[#left + 1] = p end end
    if #left == 0 or now() > deadline then return left end
    socket.sleep(0.02)
  end
end

-- SIGTERM pid only (a daemon shuts down its own children) and give it 1 s;
-- then SIGTERM every descendant it had that is still there, give them all up
-- to 5 s, and SIGKILL whatever is left, each by PID.  (A Dovecot lmtp worker
-- forked just before the master's SIGTERM blocks 5 s reading the config
-- socket, and the master waits for it.)
local function stop_tree(pid)
  if not pid then return end
  local all = descendants(pid)
  table.insert(all, 1, pid)
  if H.alive(pid) then H.sh("kill -TERM " .. pid) end
  wait_gone(all, 1)
  for _, p in ipairs(descendants(pid)) do all[#all + 1] = p end -- forked meanwhile
  local left = wait_gone(all, 0)
  for _, p in ipairs(left) do H.sh("kill -TERM " .. p) end
  left = wait_gone(left, STOP_TIMEOUT)
  for _, p in ipairs(left) do H.sh("kill -KILL " .. p) end
  left = wait_gone(left, STOP_TIMEOUT)
  if #left > 0 then
    error("could not stop pid(s) " .. table.concat(left, " "), 2)
  end
end

-- A temp dir that unprivileged peer processes (nobody) can traverse.
local function peer_dir(prefix)
  local out, rc = H.sh("mktemp -d /tmp/luasmtpd-peer-" .. prefix .. ".XXXXXX")
  local dir = out:gsub("%s+$", "")
  assert(rc == 0 and dir ~= "", "mktemp failed: " .. out)
  assert(select(2, H.sh("chmod 0755 " .. H.q(dir))) == 0)
  return dir
end

-- H.spawn, but the program inherits no descriptor above 2.  LuaSocket does
-- not set FD_CLOEXEC, so a plain spawn hands the peer every socket the spec
-- holds open (a backend listener, a client connection), which keeps those
-- sockets alive in the peer and fooled the "who listens on the port" check.
-- H.spawn closes inherited descriptors itself.
local function spawn(cmd, log)
  return H.spawn(cmd, log)
end

local function run(cmd)
  local out, rc = H.sh(cmd)
  if rc ~= 0 then error(("command failed (rc=%s): %s\n%s"):format(tostring(rc), cmd, out), 2) end
  return out
end

function peers.free_port(host)
  local srv = assert(socket.bind(host or "127.0.0.1", 0))
  local _, port = srv:getsockname()
  srv:close()
  return assert(tonumber(port))
end

-- The inodes of TCP sockets listening on port (any address).
local function listen_inodes(port)
  local inodes = {}
  for _, file in ipairs{ "/proc/net/tcp", "/proc/net/tcp6" } do
    local f = io.open(file)
    if f then
      for line in f:lines() do
        -- sl local rem st tx:rx tr:when retrnsmt uid timeout inode
        local lport, st, inode = line:match(
          "^%s*%d+:%s+%x+:(%x+)%s+%x+:%x+%s+(%x+)%s+%S+%s+%S+%s+%S+%s+%d+%s+%d+%s+(%d+)")
        if lport and tonumber(lport, 16) == port and st == "0A" then inodes[inode] = true end
      end
      f:close()
    end
  end
  return inodes
end

-- true when pid itself holds a socket listening on TCP port.
local function pid_listens(pid, port)
  local inodes = listen_inodes(port)
  if next(inodes) == nil then return false end
  local out = H.sh("ls -l /proc/" .. pid .. "/fd 2>/dev/null")
  for inode in out:gmatch("socket:%[(%d+)%]") do
    if inodes[inode] then return true end
  end
  return false
end

local function can_connect_tcp(host, port)
  local s = socket.tcp()
  if host:find(":", 1, true) then s = socket.tcp6() end
  s:settimeout(1)
  local ok = s:connect(host, port)
  s:close()
  return ok ~= nil
end

local function can_connect_unix(path)
  local s = require("socket.unix").stream()
  s:settimeout(1)
  local ok = s:connect(path)
  s:close()
  return ok ~= nil
end

-- Regular files under the dirs, oldest first (mtime, then name).
local function files_oldest_first(dirs)
  local qs = {}
  for _, d in ipairs(dirs) do qs[#qs + 1] = H.q(d) end
  local out = H.sh("find " .. table.concat(qs, " ") ..
    " -maxdepth 2 -type f -printf '%T@ %p\\n' 2>/dev/null | sort -k1,1n -k2")
  local list = {}
  for path in out:gmatch("[%d.]+ ([^\n]+)") do list[#list + 1] = path end
  return list
end

local function contents(paths)
  local out = {}
  for _, p in ipairs(paths) do out[#out + 1] = H.read_file(p) or "" end
  return out
end

-- ---- the common peer object ---------------------------------------------

local Peer = {}
Peer.__index = Peer

function Peer:log()
  local parts = {}
  for _, p in ipairs(self.log_paths or { self.log_path }) do
    local text = H.read_file(p)
    if text and text ~= "" then parts[#parts + 1] = text end
  end
  return table.concat(parts, "\n")
end

function Peer:alive() return self.pid ~= nil and H.alive(self.pid) end

function Peer:pids()
  if not self.pid then return {} end
  local all = descendants(self.pid)
  table.insert(all, 1, self.pid)
  return all
end

function Peer:stop()
  stop_tree(self.pid)
  self.pid = nil
end

-- Raise with the peer's log, after stopping it.
function Peer:fail(what)
  local log = self:log()
  self:stop()
  error(("%s: %s\n--- log (%s):\n%s"):format(self.name, what,
    table.concat(self.log_paths or { self.log_path }, ", "), log), 0)
end

local function class(name)
  local c = setmetatable({}, { __index = Peer })
  c.__index = c
  c.name = name
  return c
end

-- Start a peer on a probed port, retrying when the port was taken between the
-- probe and the bind.  launch(port) starts the process and returns the peer;
-- ready(peer) says whether it accepts connections yet.
local function start_on_port(cls, host, opts, launch, ready)
  local timeout = opts.timeout or START_TIMEOUT
  -- A given port (a restart on the same address) is tried once.
  for attempt = 1, opts.port and 1 or PORT_TRIES do
    local port = opts.port or peers.free_port(host)
    local p = launch(port)
    p.port, p.host = port, host
    peers.started[#peers.started + 1] = p
    local deadline = now() + timeout
    while true do
      if not H.alive(p.pid) then
        local log = p:log()
        if log:find("in use", 1, true) and attempt < PORT_TRIES then
          p:stop()
          break -- try another port
        end
        p:fail("exited before accepting connections on " .. host .. ":" .. port)
      end
      if ready(p) then return p end
      if now() > deadline then
        p:fail(("did not accept connections on %s:%d within %gs"):format(host, port, timeout))
      end
      socket.sleep(0.05)
    end
  end
  error(cls.name .. ": no free port after " .. PORT_TRIES .. " tries", 2)
end

function peers.stop_all()
  for _, p in ipairs(peers.started) do p:stop() end
end

-- ---- Dovecot LMTP -----------------------------------------------------------

local Dovecot = class("dovecot_lmtp")

local function dovecot_conf(dir, port)
  return (([[
# Generated by spec/support/peers.lua: a throw-away LMTP-only instance.
base_dir = DIR/run
state_dir = DIR/state
log_path = DIR/dovecot.log
protocols = lmtp
ssl = no
# No stats-writer: otherwise an lmtp worker outlives the master by 5 s
# ("Timeout waiting for handshake response") and every stop waits for it.
stats_writer_socket_path =
first_valid_uid = 1
mail_location = maildir:~/Maildir
mail_plugins = $mail_plugins quota
plugin {
  quota = maildir:User quota
}
passdb {
  driver = passwd-file
  args = username_format=%n DIR/users
}
userdb {
  driver = passwd-file
  args = username_format=%n DIR/users
  default_fields = uid=nobody gid=nogroup home=DIR/mail/%n
}
service lmtp {
  unix_listener DIR/lmtp.sock {
    mode = 0666
  }
  inet_listener lmtp {
    address = 127.0.0.1
    port = PORT
  }
}
]]):gsub("DIR", dir):gsub("PORT", tostring(port)))
end

-- userdb lines: name:password:uid:gid:gecos:home:shell:extra fields
local function dovecot_users(opts)
  local lines, seen = {}, {}
  local function add(user, extra)
    assert(type(user) == "string" and user:match("^[%w._-]+$"),
      "dovecot_lmtp: bad user name " .. tostring(user))
    assert(not seen[user], "dovecot_lmtp: user listed twice: " .. user)
    seen[user] = true
    local fields = {}
    fields[#fields + 1] = extra
    fields[#fields + 1] = opts.fields and opts.fields[user]
    lines[#lines + 1] = user .. ":::::::" .. table.concat(fields, " ")
  end
  for _, u in ipairs(opts.users or {}) do add(u) end
  for _, u in ipairs(opts.quota_full or {}) do add(u, "userdb_quota_rule=*:storage=10B") end
  for _, u in ipairs(opts.unwritable or {}) do add(u) end
  return table.concat(lines, "\n") .. "\n"
end

function peers.dovecot_lmtp(opts)
  opts = opts or {}
  local dir = peer_dir("dovecot")
  run("mkdir -p " .. H.q(dir .. "/mail") .. " && chown nobody:nogroup " .. H.q(dir .. "/mail"))
  for _, u in ipairs(opts.unwritable or {}) do
    -- Root-owned and read-only: nobody cannot create the Maildir in it.
    run("mkdir -m 0555 " .. H.q(dir .. "/mail/" .. u))
  end
  H.write_file(dir .. "/users", dovecot_users(opts))
  local sock = dir .. "/lmtp.sock"
  return start_on_port(Dovecot, "127.0.0.1", opts, function(port)
    H.write_file(dir .. "/dovecot.conf", dovecot_conf(dir, port))
    -- Truncate the previous attempt's log so "in use" is not seen again.
    H.write_file(dir .. "/dovecot.log", "")
    local p = setmetatable({ dir = dir, socket = sock, config = dir .. "/dovecot.conf",
      log_path = dir .. "/dovecot.log",
      log_paths = { dir .. "/dovecot.out", dir .. "/dovecot.log" } }, Dovecot)
    -- -F keeps the master in the foreground, so its PID is ours; it still
    -- writes run/master.pid, which must agree.
    p.pid = spawn("dovecot -F -c " .. H.q(p.config), dir .. "/dovecot.out")
    return p
  end, function(p)
    if not (pid_listens(p.pid, p.port) and can_connect_unix(sock)
            and can_connect_tcp(p.host, p.port)) then
      return false
    end
    local mpid = tonumber((H.read_file(dir .. "/run/master.pid") or ""):match("%d+"))
    if mpid ~= p.pid then p:fail("master.pid says " .. tostring(mpid) .. ", not " .. p.pid) end
    return true
  end)
end

function Dovecot:maildir(user)
  local name = user:match("^([^@]+)") or user
  return self.dir .. "/mail/" .. name .. "/Maildir"
end

function Dovecot:messages(user)
  local md = self:maildir(user)
  return contents(files_oldest_first{ md .. "/new", md .. "/cur" })
end

function Dovecot:wait_messages(user, n, timeout)
  local msgs
  H.wait_for(function()
    msgs = self:messages(user)
    return #msgs >= n
  end, timeout or 10, n .. " message(s) for " .. user .. "\n--- log:\n" .. self:log())
  return msgs
end

-- ---- smtp-sink --------------------------------------------------------------

local Sink = class("smtp_sink")

function peers.smtp_sink(opts)
  opts = opts or {}
  local dir = peer_dir("sink")
  local args = { "smtp-sink", "-u", "nobody" }
  if opts.lmtp then args[#args + 1] = "-L" end
  local dump_dir
  if opts.dump then
    dump_dir = dir .. "/dump"
    run("mkdir -p " .. H.q(dump_dir) .. " && chown nobody:nogroup " .. H.q(dump_dir))
    args[#args + 1] = "-d"
    args[#args + 1] = dump_dir .. "/%Y%m%d/"
  end
  for _, list in ipairs{ opts.faults or {}, opts.args or {} } do
    for _, a in ipairs(list) do args[#args + 1] = tostring(a) end
  end
  local function cmdline(endpoint)
    local q = {}
    for _, a in ipairs(args) do q[#q + 1] = H.q(a) end
    q[#q + 1] = H.q(endpoint)
    q[#q + 1] = tostring(opts.backlog or 64)
    return table.concat(q, " ")
  end
  local function new()
    return setmetatable({ dir = dir, dump_dir = dump_dir, log_path = dir .. "/sink.log" }, Sink)
  end

  if opts.unix then
    local p = new()
    p.socket = dir .. "/sink.sock"
    p.pid = spawn(cmdline("unix:" .. p.socket), p.log_path)
    peers.started[#peers.started + 1] = p
    local deadline = now() + (opts.timeout or START_TIMEOUT)
    while not can_connect_unix(p.socket) do
      if not H.alive(p.pid) then p:fail("exited before listening on " .. p.socket) end
      if now() > deadline then p:fail("did not accept connections on " .. p.socket) end
      socket.sleep(0.05)
    end
    return p
  end

  local host = opts.host or "127.0.0.1"
  return start_on_port(Sink, host, opts, function(port)
    local p = new()
    local endpoint = (host:find(":", 1, true) and "[" .. host .. "]" or host) .. ":" .. port
    p.pid = spawn(cmdline(endpoint), p.log_path)
    return p
  end, function(p)
    return pid_listens(p.pid, p.port) and can_connect_tcp(p.host, p.port)
  end)
end

function Sink:messages()
  if not self.dump_dir then error("smtp_sink: started without dump = true", 2) end
  return contents(files_oldest_first{ self.dump_dir })
end

function Sink:wait_messages(n, timeout)
  local msgs
  H.wait_for(function()
    msgs = self:messages()
    return #msgs >= n
  end, timeout or 10, n .. " dumped message(s)\n--- log:\n" .. self:log())
  return msgs
end

-- ---- haproxy ------------------------------------------------------------------

local Haproxy = class("haproxy")

function peers.haproxy(opts)
  opts = opts or {}
  local backend_port = assert(tonumber(opts.backend_port), "haproxy: backend_port required")
  local backend_host = opts.backend_host or "127.0.0.1"
  local proxy = opts.send_proxy == nil and "v1" or opts.send_proxy
  local flag = ({ v1 = " send-proxy", v2 = " send-proxy-v2" })[proxy]
  if proxy == false then flag = "" end
  assert(flag, "haproxy: send_proxy must be \"v1\", \"v2\" or false")
  local host = opts.host or "127.0.0.1"
  local dir = peer_dir("haproxy")
  local function addr(h, port)
    return (h:find(":", 1, true) and "[" .. h .. "]" or h) .. ":" .. port
  end
  return start_on_port(Haproxy, host, opts, function(port)
    local cfg = dir .. "/haproxy.cfg"
    H.write_file(cfg, table.concat({
      "# Generated by spec/support/peers.lua",
      "global",
      "  log stderr format raw local0 info",
      "defaults",
      "  mode tcp",
      "  log global",
      "  option tcplog",
      "  timeout connect 5s",
      "  timeout client 60s",
      "  timeout server 60s",
      "frontend fe",
      "  bind " .. addr(host, port),
      "  default_backend be",
      "backend be",
      "  server s1 " .. addr(backend_host, backend_port) .. flag,
      "" }, "\n"))
    local p = setmetatable({ dir = dir, config = cfg, log_path = dir .. "/haproxy.log",
      backend_port = backend_port, send_proxy = proxy }, Haproxy)
    p.pid = spawn("haproxy -db -f " .. H.q(cfg), p.log_path)
    return p
  end, function(p)
    return pid_listens(p.pid, p.port)
  end)
end

-- ---- redis --------------------------------------------------------------------

local Redis = class("redis")

local function resp_read(sock)
  local line, err = sock:receive("*l")
  if not line then error("redis: read failed: " .. tostring(err), 0) end
  local kind, rest = line:sub(1, 1), line:sub(2)
  if kind == "+" then return rest end
  if kind == "-" then return nil, rest end
  if kind == ":" then return tonumber(rest) end
  if kind == "$" then
    local n = tonumber(rest)
    if n < 0 then return nil end
    local data, e = sock:receive(n + 2)
    if not data then error("redis: read failed: " .. tostring(e), 0) end
    return data:sub(1, n)
  end
  if kind == "*" then
    local n = tonumber(rest)
    if n < 0 then return nil end
    local arr = {}
    for i = 1, n do arr[i] = (resp_read(sock)) end
    return arr
  end
  error("redis: bad reply line: " .. line:sub(1, 100), 0)
end

local function redis_call(host, port, timeout, args)
  local parts = { "*" .. #args .. "\r\n" }
  for _, a in ipairs(args) do
    a = tostring(a)
    parts[#parts + 1] = "$" .. #a .. "\r\n" .. a .. "\r\n"
  end
  local sock = socket.tcp()
  sock:settimeout(timeout)
  local ok, err = sock:connect(host, port)
  if not ok then error("redis: connect failed: " .. tostring(err), 0) end
  local sent, serr = sock:send(table.concat(parts))
  if not sent then sock:close(); error("redis: send failed: " .. tostring(serr), 0) end
  local res = { pcall(resp_read, sock) }
  sock:close()
  if not res[1] then error(res[2], 0) end
  return res[2], res[3]
end

-- redis:cmd("SET", "k", "v") -> reply | nil (null) | nil, "ERR ..." (error reply).
-- One fresh connection per command, 10 s timeout; I/O failures raise.
function Redis:cmd(...)
  return redis_call(self.host, self.port, 10, { ... })
end

function peers.redis(opts)
  opts = opts or {}
  local dir = peer_dir("redis")
  local sock = opts.unix and dir .. "/redis.sock" or nil
  return start_on_port(Redis, "127.0.0.1", opts, function(port)
    local p = setmetatable({ dir = dir, log_path = dir .. "/redis.log", socket = sock }, Redis)
    p.pid = spawn(("redis-server --port %d --bind 127.0.0.1 --save '' --appendonly no" ..
      " --daemonize no --dir %s%s"):format(port, H.q(dir),
      sock and (" --unixsocket %s --unixsocketperm 700"):format(H.q(sock)) or ""), p.log_path)
    return p
  end, function(p)
    if sock and not can_connect_unix(sock) then return false end
    if not pid_listens(p.pid, p.port) then return false end
    local ok, pong = pcall(redis_call, p.host, p.port, 1, { "PING" })
    return ok and pong == "PONG"
  end)
end

return peers
