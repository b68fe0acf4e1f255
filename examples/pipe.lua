-- pipe.lua — local domains delivered by running a command per recipient,
-- the way Postfix's pipe(8) runs dovecot-lda, procmail or a script.
--
-- The command runs without a shell.  `args` is split at spaces into
-- arguments; {sender}, {recipient}, {user} and {domain} inside an argument
-- are replaced by their value, which stays inside that one argument
-- whatever it contains.  The null sender <> becomes MAILER-DAEMON there
-- (Postfix's null_sender).  The message arrives on stdin with LF line
-- ends; the exit code decides (sysexits: 0 delivered, 75 try again later,
-- 67 no such user, ...), see deliver.pipe in the README.  The runs are
-- one after another inside the message hook, so all of them together
-- must fit in timeouts.hook (60 s by default).
--
-- Settings (luasmtpd -D name=value):
--   listen    address:port to listen on            (127.0.0.1:2525)
--   spool     spool directory                      (var/spool)
--   domains   comma-separated local domains        (localhost,example.test)
--   hostname  name in the banner and Received:     (localhost)
--   command   absolute path of the program         (/usr/lib/dovecot/dovecot-lda)
--   args      its arguments                        (-f {sender} -a {recipient})
--   timeout   seconds one run may take             (30)

local smtp = require "luasmtpd"
local deliver = require "luasmtpd.deliver"
local delivery = require "luasmtpd.delivery"
local util = require "luasmtpd.util"

local domain_list = util.split(smtp.var("domains", "localhost,example.test"), ",")
local domains = util.set(domain_list)
local command = smtp.var("command", "/usr/lib/dovecot/dovecot-lda")
local args = smtp.var("args", "-f {sender} -a {recipient}")
local timeout = tonumber(smtp.var("timeout", "30"))

hostname = smtp.var("hostname", "localhost")
listen = smtp.var("listen", "127.0.0.1:2525")
spool = smtp.var("spool", "var/spool")

if command:sub(1, 1) ~= "/" then
  error("command must be an absolute path: " .. command)
end
assert(timeout and timeout > 0 and timeout < 60, "timeout must be in 0..60 (timeouts.hook)")

local words = {}
for w in args:gmatch("%S+") do words[#words + 1] = w end

local function argv_for(sender, rcpt)
  local user, domain = smtp.split_address(rcpt)
  local values = {
    sender = sender ~= "" and sender or "MAILER-DAEMON",
    recipient = rcpt, user = user or rcpt, domain = domain or "",
  }
  local argv = { command }
  for _, w in ipairs(words) do
    -- A function replacement: no % escapes are interpreted in the values.
    argv[#argv + 1] = (w:gsub("{(%a+)}", function(k) return values[k] end))
  end
  return argv
end

function hooks.rcpt(s, rcpt)
  if rcpt == "Postmaster" then
    return smtp.rewrite("postmaster@" .. domain_list[1]:lower())
  end
  local localpart, domain = smtp.split_address(rcpt)
  if not (domain and domains[domain:lower()]) then
    return smtp.reject(554, "5.7.1", "Error: relay access denied")
  end
  if not localpart:match("^[%w][%w._+-]*$") then
    return smtp.reject(550, "5.1.1", "Error: no such mailbox here")
  end
  return smtp.accept()
end

function hooks.message(s, msg)
  local results = {}
  for _, r in ipairs(msg.rcpts) do
    results[#results + 1] = deliver.pipe{
      argv = argv_for(msg.sender, r.address), rcpts = r, timeout = timeout,
    }
  end
  return delivery.verdict(unpack(results))
end
