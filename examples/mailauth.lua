-- mailauth.lua — an MX that checks SPF, DKIM and DMARC, writes
-- Authentication-Results (RFC 8601) and applies the sender domain's DMARC
-- policy; and signs what its own users send (DKIM, RFC 6376/8463).
--
--   inbound    SPF (luasmtpd.spf), DKIM (checked while the message
--              arrives: mailauth.dkim_verify), iprev, then DMARC on the
--              From: domain.  One Authentication-Results field records
--              them all (forged ones claiming our name were dropped on the
--              way in).  DMARC reject -> 550 5.7.1; quarantine -> stored
--              in the Maildir's .Junk folder; otherwise the inbox.
--   outbound   mail from 127.0.0.1 whose sender is in -D dkim_domain is
--              signed with -D dkim_key / -D dkim_selector before it is
--              stored (local recipients) or queued for relaying.
--
-- Settings (luasmtpd -D name=value), defaults in brackets:
--   listen [127.0.0.1:2525]   maildir [var/mail]   spool [var/spool]
--   domains [localhost,example.test]   hostname [mx.example.test]
--   dns [the system resolver]: HOST:PORT of the resolver to ask
--   dkim_key [none: no signing]   dkim_selector [mail]   dkim_domain [example.test]
--   psl [Debian's public suffix list]

local smtp = require "luasmtpd"

listen = smtp.var("listen", "127.0.0.1:2525")
spool = smtp.var("spool", "var/spool")
hostname = smtp.var("hostname", "mx.example.test")
local dns_server = smtp.var("dns")
if dns_server then
  -- Settings before the modules that share their names (see README).
  dns = { servers = { (dns_server:gsub(":(%d+)$", "@%1")) }, nodefault = { "test." } }
end
mailauth = { dkim_verify = true, psl = smtp.var("psl") }

local deliver = require "luasmtpd.deliver"
local resolver = require "luasmtpd.dns"
local spf = require "luasmtpd.spf"
local auth = require "luasmtpd.mailauth"
local util = require "luasmtpd.util"

local maildir_root = smtp.var("maildir", "var/mail")
local domain_list = util.split(smtp.var("domains", "localhost,example.test"), ",")
local domains = util.set(domain_list)
local sign_domain = smtp.var("dkim_domain", "example.test"):lower()
local selector = smtp.var("dkim_selector", "mail")
local key_path = smtp.var("dkim_key")
local key = key_path and assert(auth.key(key_path))

-- Our own users: they come from here, with a sender in our domain.
local function own_user(s, sender)
  local _, domain = smtp.split_address(sender or "")
  return s.remote_ip == "127.0.0.1" and domain ~= nil and domain:lower() == sign_domain
end

function hooks.rcpt(s, rcpt)
  if rcpt == "Postmaster" then
    return smtp.rewrite("postmaster@" .. domain_list[1]:lower())
  end
  if util.maildir_path(maildir_root, domains, rcpt) then return smtp.accept() end
  -- Our users may send anywhere: those recipients wait in the queue.
  if own_user(s, s.tx.sender) then return smtp.accept() end
  return smtp.reject(554, "5.7.1", "Error: relay access denied")
end

-- Store each local recipient's copy; others stay in the queue.
local function store(msg, junk)
  for _, r in ipairs(msg.rcpts) do
    local dir = util.maildir_path(maildir_root, domains, r.address)
    if dir then
      local ok, err = deliver.maildir(junk and dir .. "/.Junk" or dir, r)
      if not ok then
        return smtp.tempfail(451, "4.3.0", "Error: local delivery failed")
      end
    end
  end
  return smtp.accept()
end

function hooks.message(s, msg)
  if own_user(s, msg.sender) then
    if key then
      local ok, err = auth.sign(msg, { domain = sign_domain, selector = selector, key = key })
      if not ok then
        s:log("dkim signing failed: " .. err)
        return smtp.tempfail(451, "4.3.0", "Error: signing failed, try again later")
      end
    end
    return store(msg)
  end

  -- Everything at once: SPF, the DKIM result, iprev.  A loopback client
  -- is a local injection: SPF has nothing to say about it (libspf2 would
  -- pass it whatever the record says), so it counts as none.
  local sp, dk, ip = smtp.all(
    function()
      if s.remote_ip == "127.0.0.1" or s.remote_ip == "::1" then
        local _, d = smtp.split_address(msg.sender)
        return { result = "none", domain = d or s.helo, reason = "local client" }
      end
      return spf.check{ ip = s.remote_ip, helo = s.helo or "", sender = msg.sender }
    end,
    function() return msg:dkim() end,
    function() return resolver.iprev(s.remote_ip) end)
  local from = util.from_domain(msg:header("From"))
  local dm = from and auth.dmarc{ from = from, spf = sp, dkim = dk }
  auth.add_results(msg, { spf = sp, dkim = dk, dmarc = dm, iprev = ip, ip = s.remote_ip })
  if dm and dm.disposition == "reject" then
    return smtp.reject(550, "5.7.1", "Error: rejected by the DMARC policy of " .. from)
  end
  return store(msg, dm and dm.disposition == "quarantine")
end
