-- scripts/bench/lmtp.lua — bench config (c): delivery over LMTP to a
-- throw-away Dovecot, the way examples/dovecot.lua delivers: the message
-- hook runs deliver.lmtp{ to = ... } and answers with luasmtpd.delivery's
-- verdict (250 only when Dovecot said 250 for every recipient).  Unlike
-- examples/dovecot.lua there is no rewrite and no RCPT-time lmtp_check: the
-- rcpt hook accepts our domain, so one LMTP session is made per message.
--
-- Settings (luasmtpd -D name=value): listen, spool, lmtp ("unix:/path").

local smtp = require "luasmtpd"
local deliver = require "luasmtpd.deliver"
local delivery = require "luasmtpd.delivery"

listen = smtp.var("listen", "127.0.0.1:0")
spool = smtp.var("spool", "var/spool")
hostname = "bench.test"

-- Fail at load (and so under luasmtpd -t) on a build without LMTP delivery.
assert(deliver.lmtp, "this luasmtpd has no deliver.lmtp")

local lmtp = smtp.var("lmtp", "unix:/run/dovecot/lmtp")
local domains = { ["example.test"] = true }

limits = {
  max_connections = 20000,
  max_connections_per_ip = 20000,
  max_transactions = 100000000,
  max_commands = 100000000,
  max_errors = 100000,
}

function hooks.rcpt(s, rcpt)
  local _, domain = smtp.split_address(rcpt)
  if domain and domains[domain:lower()] then return smtp.accept() end
  return smtp.reject(554, "5.7.1", "relay access denied")
end

function hooks.message(s, msg)
  return delivery.verdict(deliver.lmtp{ to = lmtp, timeout = 60 })
end
