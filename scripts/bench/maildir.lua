-- scripts/bench/maildir.lua — bench config (b): Maildir delivery with fsync,
-- as examples/default.lua does it: the rcpt hook accepts our domain, the
-- message hook writes one copy per recipient with deliver.maildir (file and
-- directory fsynced) and accepts.
--
-- Settings (luasmtpd -D name=value): listen, spool, maildir (the root).

local smtp = require "luasmtpd"
local deliver = require "luasmtpd.deliver"
local util = require "luasmtpd.util"

listen = smtp.var("listen", "127.0.0.1:0")
spool = smtp.var("spool", "var/spool")
hostname = "bench.test"

local maildir_root = smtp.var("maildir", "var/mail")
local domains = { ["example.test"] = true }

limits = {
  max_connections = 20000,
  max_connections_per_ip = 20000,
  max_transactions = 100000000,
  max_commands = 100000000,
  max_errors = 100000,
}

-- The Maildir of a local recipient, or nil (see luasmtpd.util).
local function mailbox_dir(address)
  return util.maildir_path(maildir_root, domains, address)
end

function hooks.rcpt(s, rcpt)
  if mailbox_dir(rcpt) then return smtp.accept() end
  return smtp.reject(554, "5.7.1", "relay access denied")
end

function hooks.message(s, msg)
  for _, r in ipairs(msg.rcpts) do
    local ok, err = deliver.maildir(mailbox_dir(r.address), r)
    if not ok then
      s:log("maildir delivery failed: " .. err)
      return smtp.tempfail(451, "4.3.0", "local delivery failed")
    end
  end
  return smtp.accept()
end
