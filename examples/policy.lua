-- policy.lua — an MX for local domains into Maildirs, with the ready
-- policies of lua/luasmtpd/policy/: a rate limit per client address and
-- SPF at MAIL, a DNSBL and greylisting at RCPT.
--
--   MAIL  more than N messages in M minutes from one address: 451 4.7.1
--         SPF fail: 550 5.7.23; any other result: a Received-SPF header
--   RCPT  not a local mailbox: 550 5.1.1 (our domain) or 554 5.7.1 (relay)
--         listed by the DNSBL: 554 5.7.1 with the list's reason
--         a new client network, sender and recipient: 451 4.7.1 until it
--         comes back after the greylisting delay
--
-- Greylisting and the rate limit keep their state in luasmtpd.kv: LMDB
-- under the spool (<spool>/kv, survives a restart), or one Redis shared
-- by every node (-D redis): then a triplet greylisted on one node passes
-- on another after the delay, and the rate limit counts across nodes.
--
-- Settings (luasmtpd -D name=value), defaults in brackets:
--   listen          address:port to listen on            [127.0.0.1:2525]
--   maildir         root of the Maildirs                 [var/mail]
--   spool           spool directory                      [var/spool]
--   domains         comma-separated local domains        [localhost,example.test]
--   hostname        name in the banner and Received:     [localhost]
--   dns             HOST:PORT of the DNS server the resolver asks (it must
--                   recurse)                   [the servers of /etc/resolv.conf]
--   dnsbl           the DNSBL zone; empty: none          [zen.spamhaus.org]
--   greylist_delay  seconds a new triplet waits          [300]
--   redis           HOST:PORT of a Redis for the state   [none: LMDB]
--   ratelimit       N/MINUTES messages per client address [100/60]
--
-- Spamhaus answers queries through large public resolvers with an error
-- code, which does not list anybody: point -D dns at your own resolver.

local smtp = require "luasmtpd"
local deliver = require "luasmtpd.deliver"
local util = require "luasmtpd.util"
local dnsbl = require "luasmtpd.policy.dnsbl"
local greylist = require "luasmtpd.policy.greylist"
local ratelimit = require "luasmtpd.policy.ratelimit"
local spf = require "luasmtpd.policy.spf"

local maildir_root = smtp.var("maildir", "var/mail")
local domain_list = util.split(smtp.var("domains", "localhost,example.test"), ",")
local domains = util.set(domain_list)

hostname = smtp.var("hostname", "localhost")
listen = smtp.var("listen", "127.0.0.1:2525")
spool = smtp.var("spool", "var/spool")

-- "HOST:PORT" or "[IPv6]:PORT" -> host, port
local function host_port(what, v)
  local host, port = v:match("^%[(.+)%]:(%d+)$")
  if not host then host, port = v:match("^([^:]+):(%d+)$") end
  if not host then error(("-D %s=%s: expected HOST:PORT"):format(what, v), 0) end
  return host, port
end

local dns_server = smtp.var("dns", "")
if dns_server ~= "" then
  local host, port = host_port("dns", dns_server)
  dns = { servers = { host .. "@" .. port } }
end

local redis = smtp.var("redis", "")
if redis ~= "" then
  host_port("redis", redis)
  kv = { backend = "redis", redis = redis }
end

local n, minutes = smtp.var("ratelimit", "100/60"):match("^(%d+)/(%d+)$")
if not n or tonumber(n) < 1 or tonumber(minutes) < 1 then
  error("-D ratelimit: expected N/MINUTES, e.g. 100/60", 0)
end
local per_client = ratelimit.new{ by = "ip", rate = n .. "/" .. minutes * 60 }

local check_spf = spf.new{}

local zone = smtp.var("dnsbl", "zen.spamhaus.org")
local listed = zone ~= "" and dnsbl.new{ zones = { zone } } or function() return nil end

local delay = tonumber(smtp.var("greylist_delay", "300"))
if not delay or delay < 1 or delay ~= math.floor(delay) then
  error("-D greylist_delay: expected whole seconds", 0)
end
local grey = greylist.new{ delay = delay }

-- The Maildir of a local recipient, or nil (see luasmtpd.util).
local function mailbox_dir(address)
  return util.maildir_path(maildir_root, domains, address)
end

function hooks.mail(s, sender)
  return per_client(s) or check_spf(s, sender)
end

function hooks.rcpt(s, rcpt)
  if rcpt == "Postmaster" then
    -- RFC 5321 4.5.1: <Postmaster> must be accepted.
    return smtp.rewrite("postmaster@" .. domain_list[1]:lower())
  end
  if not mailbox_dir(rcpt) then
    local _, domain = smtp.split_address(rcpt)
    if domain and domains[domain:lower()] then
      return smtp.reject(550, "5.1.1", "Error: no such mailbox here")
    end
    return smtp.reject(554, "5.7.1", "Error: relay access denied")
  end
  return listed(s) or grey(s, rcpt) or smtp.accept()
end

function hooks.message(s, msg)
  for _, r in ipairs(msg.rcpts) do
    local ok, err = deliver.maildir(mailbox_dir(r.address), r)
    if not ok then
      s:log("maildir delivery failed: " .. err)
      return smtp.tempfail(451, "4.3.0", "Error: local delivery failed, try again later")
    end
  end
  return smtp.accept()
end
