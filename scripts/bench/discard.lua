-- scripts/bench/discard.lua — bench config (a): a Lua hook at every stage,
-- each doing a little real work (a string check), and the message hook
-- discards.  Used by scripts/bench.sh for the load cases and the idle
-- connection count.
--
-- Settings (luasmtpd -D name=value): listen, spool.

local smtp = require "luasmtpd"

listen = smtp.var("listen", "127.0.0.1:0")
spool = smtp.var("spool", "var/spool")
hostname = "bench.test"

-- High enough that no limit of ours shapes the numbers.
limits = {
  max_connections = 20000,
  max_connections_per_ip = 20000,
  max_transactions = 100000000,
  max_commands = 100000000,
  max_errors = 100000,
}

local domains = { ["example.test"] = true }

function hooks.connect(s)
  if s.remote_ip:sub(1, 4) ~= "127." then
    return smtp.reject(554, "5.7.1", "loopback only")
  end
end

function hooks.helo(s, name)
  if name == "" or name:find("[%s<>]") then
    return smtp.reject(501, "5.5.2", "bad HELO name")
  end
end

function hooks.mail(s, sender, params)
  if sender ~= "" and not sender:find("@", 1, true) then
    return smtp.reject(553, "5.1.7", "sender needs a domain")
  end
end

function hooks.rcpt(s, rcpt, params)
  local _, domain = smtp.split_address(rcpt)
  if domain and domains[domain:lower()] then return smtp.accept() end
  return smtp.reject(554, "5.7.1", "relay access denied")
end

function hooks.data(s)
  if #s.tx.rcpts == 0 then return smtp.reject(554, "5.5.1", "no recipients") end
end

function hooks.message(s, msg)
  if msg.size > 50 * 1024 * 1024 then return smtp.reject(552, "5.3.4", "too big") end
  return smtp.discard()
end
