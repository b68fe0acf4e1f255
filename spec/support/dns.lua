-- spec/support/dns.lua — a real authoritative DNS server for specs: NSD on
-- loopback serving the zones of spec/fixtures/dns/, two of them DNSSEC-signed
-- at start, plus a server that never answers.
--
--   local dns = require "spec.support.dns"
--   local d = dns.start{ timeout = 10 }
--   ... resolver settings from d (below) ...
--   d:stop()
--
-- What runs:
--   * NSD 4 (`nsd -d`, foreground, as root, no chroot, no database) on
--     127.0.0.1:.port, UDP and TCP, in a temp dir.  A port is probed with
--     luasocket and the start retried (5 tries) when NSD finds it taken.  The
--     peer counts as ready once NSD's own PID holds the TCP listener and a UDP
--     query for rr.test's SOA gets an answer.
--   * secure.test and bogus.test are signed with a fresh ECDSA P-256 key
--     (ldns-keygen, ldns-signzone; signatures valid from one hour ago for 30
--     days).  bogus.test's www A record is changed after signing, so its
--     RRSIG fails: a validator with its trust anchor says "bogus".
--   * servfail.test is configured in NSD without a zone file: NSD answers
--     SERVFAIL for it.
--   * slow.test goes to .slow_port, where a UDP socket and a TCP listener
--     that this Lua process bound on 127.0.0.1 take queries and never reply
--     (nothing reads them; the TCP handshake completes in the kernel).
--
-- Zones (see each file under spec/fixtures/dns/ for the records):
--   spf.test    SPF records of every result kind, macros, include/redirect,
--               the 10-lookup and void-lookup limits, ip6, a slow include
--   rr.test     one name per record type (A, AAAA, CNAME, MX, TXT, TLSA),
--               70 A records, a name with only TXT (NODATA for A)
--   mx.test     MX preferences, implicit MX (A only), null MX "0 .", CNAME
--   fcrdns.test, 2.0.192.in-addr.arpa, 8.b.d.0.1.0.0.2.ip6.arpa
--               PTR and forward records: a matching pair (192.0.2.10,
--               2001:db8::10), a mismatch (192.0.2.11), no PTR (192.0.2.12),
--               PTRs into servfail.test and slow.test (192.0.2.13, .14),
--               two names of which the second matches (192.0.2.15)
--   dnsbl.test  127.0.0.2 and 2001:db8::2 listed (A 127.0.0.2 and a TXT
--               reason), 127.0.0.3 with two codes and no TXT, 127.0.0.4
--               answered outside 127/8; everything else NXDOMAIN
--   secure.test signed: www A, MX, TLSA at _25._tcp.mx.secure.test
--   bogus.test  signed, www.bogus.test's signature broken
--   servfail.test  SERVFAIL;   slow.test  no answer ever
--   dkim.test   DKIM keys of spec/fixtures/dkim/*.pem (RSA 512 to 8192, Ed25519)
--   dmarc.test  DMARC records of each policy, pct, sp, strict alignment
--   policy.example  block and allow lists that name the loopback client
--               (bl, bl2, wl, clean): outside test., so a config without
--               the nodefault setting can ask it
--
-- Fields of the peer object, for a resolver under test (src/dns dns_config):
--   .host, .port        "127.0.0.1", NSD's port
--   .server             "127.0.0.1@PORT": the forwarder to configure
--   .slow_port          the port that never answers
--   .stubs              { { zone = "slow.test", addr = "127.0.0.1@SLOW" },
--                         { zone = "servfail.test", addr = .server } }
--                       (servfail.test as a stub of its own, so that the
--                       SERVFAILs do not count against the forwarder)
--   .nodefault          zones libunbound would answer by itself (RFC 6761
--                       "test.", the documentation reverse zones)
--   .trust_anchors      { "secure.test. IN DS ...", "bogus.test. IN DS ..." }
--   .trust_anchor_file  the same DS records in a file (.trust_anchor too)
--   .env                environment assignments for the C drivers of
--                       spec/c/test_dns.c and test_spf.c (a string:
--                       "DNS_TEST_SERVER=... DNS_TEST_STUBS=... ...")
--   .pid .dir .log_path
-- Methods: :query(name, qtype) -> rcode, ancount (one UDP query to NSD;
-- qtype a number, default 1), :log(), :alive(), :stop() (harmless twice:
-- SIGTERM to NSD's PID, then its descendants, SIGKILL after 5 s, by PID;
-- closes the never-answering sockets).

local socket = require "socket"
local H = require "spec.helpers"
local peers = require "spec.support.peers"

local dns = {}

local START_TIMEOUT = 10
local STOP_TIMEOUT = 5
local PORT_TRIES = 5
local FIXTURES = H.root .. "/spec/fixtures/dns"

local ZONES = {
  "spf.test", "rr.test", "mx.test", "fcrdns.test", "dnsbl.test",
  "2.0.192.in-addr.arpa", "8.b.d.0.1.0.0.2.ip6.arpa",
  "secure.test", "bogus.test", "dkim.test", "dmarc.test",
  "policy.example",
}
local SIGNED = { "secure.test", "bogus.test" }
local NODEFAULT = { "test.", "2.0.192.in-addr.arpa.", "8.b.d.0.1.0.0.2.ip6.arpa." }

local function now() return socket.gettime() end

local function run(cmd)
  local out, rc = H.sh(cmd)
  if rc ~= 0 then error(("command failed (rc=%s): %s\n%s"):format(tostring(rc), cmd, out), 2) end
  return out
end

-- ---- a minimal DNS query over UDP (readiness and :query) ------------------

local function qname_wire(name)
  local parts = {}
  for label in name:gmatch("[^.]+") do parts[#parts + 1] = string.char(#label) .. label end
  return table.concat(parts) .. "\0"
end

-- rcode, ancount of one query (no recursion desired), or nil, err.
local function udp_query(host, port, name, qtype, timeout)
  local id = math.random(0, 65535)
  local pkt = string.char(math.floor(id / 256), id % 256, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0) ..
    qname_wire(name) .. string.char(math.floor(qtype / 256), qtype % 256, 0, 1)
  local u = socket.udp()
  u:settimeout(timeout or 1)
  local ok, err = u:setpeername(host, port)
  if not ok then u:close(); return nil, err end
  u:send(pkt)
  local reply, rerr = u:receive()
  u:close()
  if not reply then return nil, rerr end
  if #reply < 12 or reply:byte(1) * 256 + reply:byte(2) ~= id then return nil, "bad reply" end
  return reply:byte(4) % 16, reply:byte(7) * 256 + reply:byte(8)
end

-- ---- the never-answering server -----------------------------------------

-- A UDP socket and a TCP listener on one loopback port, never read.
local function black_hole()
  for _ = 1, PORT_TRIES do
    local u = assert(socket.udp())
    assert(u:setsockname("127.0.0.1", 0))
    local _, port = u:getsockname()
    local t = socket.tcp()
    t:setoption("reuseaddr", true)
    if t:bind("127.0.0.1", port) and t:listen(8) then
      return { udp = u, tcp = t, port = tonumber(port) }
    end
    t:close()
    u:close()
  end
  error("dns: no free port for the never-answering server", 2)
end

-- ---- zones and keys ---------------------------------------------------------

-- Copy the zones into dir and sign secure.test and bogus.test; returns the
-- DS records (trust anchors).
local function prepare_zones(dir)
  for _, z in ipairs(ZONES) do
    run("cp " .. H.q(FIXTURES .. "/" .. z .. ".zone") .. " " .. H.q(dir .. "/" .. z .. ".zone"))
  end
  local inception = os.date("!%Y%m%d%H%M%S", os.time() - 3600)
  local expiration = os.date("!%Y%m%d%H%M%S", os.time() + 30 * 86400)
  local anchors = {}
  for _, z in ipairs(SIGNED) do
    local key = run("cd " .. H.q(dir) .. " && ldns-keygen -a ECDSAP256SHA256 -k " .. z):match("(K%S+)")
    assert(key, "ldns-keygen gave no key name for " .. z)
    run(("cd %s && ldns-signzone -i %s -e %s -o %s %s %s"):format(H.q(dir), inception,
      expiration, z, H.q(z .. ".zone"), H.q(key)))
    local ds = assert(H.read_file(dir .. "/" .. key .. ".ds"), "no DS file for " .. z)
    anchors[#anchors + 1] = (ds:gsub("%s+$", ""))
  end
  -- Break bogus.test: change www's address under its existing signature.
  local path = dir .. "/bogus.test.zone.signed"
  local signed = assert(H.read_file(path))
  local broken, n = signed:gsub("(www%.bogus%.test%.%s+%d+%s+IN%s+A%s+)192%.0%.2%.1", "%1192.0.2.66")
  assert(n == 1, "bogus.test: www A record not found in the signed zone")
  H.write_file(path, broken)
  H.write_file(dir .. "/trust-anchors", table.concat(anchors, "\n") .. "\n")
  return anchors
end

local function nsd_conf(dir, port)
  local lines = {
    "# Generated by spec/support/dns.lua: a throw-away authoritative server.",
    "server:",
    "  ip-address: 127.0.0.1@" .. port,
    "  do-ip6: no",
    "  username: \"\"",
    "  chroot: \"\"",
    "  zonesdir: \"" .. dir .. "\"",
    "  database: \"\"",
    "  pidfile: \"" .. dir .. "/nsd.pid\"",
    "  logfile: \"" .. dir .. "/nsd.log\"",
    "  xfrdfile: \"" .. dir .. "/xfrd.state\"",
    "  xfrdir: \"" .. dir .. "\"",
    "  zonelistfile: \"" .. dir .. "/zone.list\"",
    "  server-count: 1",
    "  verbosity: 1",
    "  hide-version: yes",
    "  hide-identity: yes",
    "  minimal-responses: no",
    "remote-control:",
    "  control-enable: no",
  }
  local function zone(name, file)
    lines[#lines + 1] = "zone:"
    lines[#lines + 1] = "  name: " .. name
    lines[#lines + 1] = "  zonefile: \"" .. file .. "\""
  end
  for _, z in ipairs(ZONES) do
    local signed = false
    for _, s in ipairs(SIGNED) do signed = signed or s == z end
    zone(z, z .. ".zone" .. (signed and ".signed" or ""))
  end
  -- No such file: NSD answers SERVFAIL for the zone.
  zone("servfail.test", "servfail.test.zone")
  return table.concat(lines, "\n") .. "\n"
end

-- ---- the peer object ----------------------------------------------------------

local Dns = {}
Dns.__index = Dns
Dns.name = "dns"

function Dns:log()
  local parts = {}
  for _, p in ipairs{ self.dir .. "/nsd.out", self.log_path } do
    local t = H.read_file(p)
    if t and t ~= "" then parts[#parts + 1] = t end
  end
  return table.concat(parts, "\n")
end

function Dns:alive() return self.pid ~= nil and H.alive(self.pid) end

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

function Dns:stop()
  if self.hole then
    self.hole.udp:close()
    self.hole.tcp:close()
    self.hole = nil
  end
  local pid = self.pid
  if not pid then return end
  self.pid = nil
  local all = descendants(pid)
  table.insert(all, 1, pid)
  if H.alive(pid) then H.sh("kill -TERM " .. pid) end
  local left = wait_gone(all, 1)
  for _, p in ipairs(left) do H.sh("kill -TERM " .. p) end
  left = wait_gone(left, STOP_TIMEOUT)
  for _, p in ipairs(left) do H.sh("kill -KILL " .. p) end
  left = wait_gone(left, STOP_TIMEOUT)
  if #left > 0 then error("dns: could not stop pid(s) " .. table.concat(left, " "), 2) end
end

function Dns:fail(what)
  local log = self:log()
  self:stop()
  error(("dns: %s\n--- log (%s):\n%s"):format(what, self.dir, log), 0)
end

function Dns:query(name, qtype)
  return udp_query(self.host, self.port, name, qtype or 1, 1)
end

-- true once NSD's own PID listens on TCP port and answers on UDP.
local function ready(p)
  local out = H.sh("ls -l /proc/" .. p.pid .. "/fd 2>/dev/null")
  local inodes = {}
  for _, file in ipairs{ "/proc/net/tcp" } do
    local f = io.open(file)
    if f then
      for line in f:lines() do
        local lport, st, inode = line:match(
          "^%s*%d+:%s+%x+:(%x+)%s+%x+:%x+%s+(%x+)%s+%S+%s+%S+%s+%S+%s+%d+%s+%d+%s+(%d+)")
        if lport and tonumber(lport, 16) == p.port and st == "0A" then inodes[inode] = true end
      end
      f:close()
    end
  end
  local listens = false
  for inode in out:gmatch("socket:%[(%d+)%]") do listens = listens or inodes[inode] == true end
  if not listens then return false end
  local rcode = udp_query(p.host, p.port, "rr.test", 6, 0.5)
  return rcode == 0
end

local function env_string(p)
  local stubs = {}
  for _, s in ipairs(p.stubs) do stubs[#stubs + 1] = s.zone .. "=" .. s.addr end
  return table.concat({
    "DNS_TEST_SERVER=" .. p.server,
    "DNS_TEST_STUBS=" .. table.concat(stubs, ","),
    "DNS_TEST_NODEFAULT=" .. table.concat(p.nodefault, ","),
    "DNS_TEST_TA_FILE=" .. H.q(p.trust_anchor_file),
  }, " ")
end

function dns.start(opts)
  opts = opts or {}
  local timeout = opts.timeout or START_TIMEOUT
  local out = run("mktemp -d /tmp/luasmtpd-peer-dns.XXXXXX")
  local dir = out:gsub("%s+$", "")
  local anchors = prepare_zones(dir)
  for attempt = 1, PORT_TRIES do
    local port = peers.free_port("127.0.0.1")
    local p = setmetatable({ dir = dir, host = "127.0.0.1", port = port,
      log_path = dir .. "/nsd.log", config = dir .. "/nsd.conf" }, Dns)
    H.write_file(p.config, nsd_conf(dir, port))
    H.write_file(p.log_path, "")
    p.pid = H.spawn("nsd -d -c " .. H.q(p.config), dir .. "/nsd.out")
    peers.started[#peers.started + 1] = p
    local deadline = now() + timeout
    local retry = false
    while true do
      if not H.alive(p.pid) then
        local log = p:log()
        if log:find("in use", 1, true) and attempt < PORT_TRIES then
          p:stop()
          retry = true
          break
        end
        p:fail("nsd exited before answering on 127.0.0.1:" .. port)
      end
      if p:log():match("read with %d+ errors") then
        p:fail("nsd could not read a zone of spec/fixtures/dns")
      end
      if ready(p) then break end
      if now() > deadline then
        p:fail(("nsd did not answer on 127.0.0.1:%d within %gs"):format(port, timeout))
      end
      socket.sleep(0.05)
    end
    if not retry then
      p.hole = black_hole()
      p.slow_port = p.hole.port
      p.server = "127.0.0.1@" .. port
      p.stubs = {
        { zone = "slow.test", addr = "127.0.0.1@" .. p.slow_port },
        { zone = "servfail.test", addr = p.server },
      }
      p.nodefault = NODEFAULT
      p.trust_anchors = anchors
      p.trust_anchor_file = dir .. "/trust-anchors"
      p.trust_anchor = p.trust_anchor_file
      p.env = env_string(p)
      return p
    end
  end
  error("dns: no free port after " .. PORT_TRIES .. " tries", 2)
end

return dns
