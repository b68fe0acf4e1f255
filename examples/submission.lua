-- submission.lua — an inbound MX beside an authenticated submission service,
-- in one process (the dual-port setup of RFC 6409 and RFC 8314).
--
--   mx          STARTTLS offered, recipients in our domains only (port 25's role)
--   submission  STARTTLS required, then AUTH required       (port 587's role)
--   smtps       implicit TLS, AUTH required                 (port 465's role)
--
-- Unauthenticated clients may only send to our domains, into Maildirs.
-- Authenticated clients may send anywhere: mail for other domains is
-- accepted into the queue (spool/queue/) for a relay to take later.
--
-- Settings (luasmtpd -D name=value), defaults in brackets:
--   mx [127.0.0.1:2525]  submission [127.0.0.1:2587]  smtps [127.0.0.1:2465]
--   cert [var/tls/cert.pem]  key [var/tls/key.pem]  (self-signed if missing)
--   users [examples/users.txt]: "user:secret" lines (see luasmtpd.passwd)
--   domains [localhost,example.test]  maildir [var/mail]  spool [var/spool]
--   hostname [localhost]

local smtp = require "luasmtpd"
local deliver = require "luasmtpd.deliver"
local passwd = require "luasmtpd.passwd"
local util = require "luasmtpd.util"

hostname = smtp.var("hostname", "localhost")
spool = smtp.var("spool", "var/spool")
tls = { certs = { {
  cert = smtp.var("cert", "var/tls/cert.pem"),
  key = smtp.var("key", "var/tls/key.pem"),
  self_signed = hostname,
} } }
listen = {
  { address = smtp.var("mx", "127.0.0.1:2525"), tls = "starttls" },
  { address = smtp.var("submission", "127.0.0.1:2587"), tls = "starttls",
    require_tls = true, auth = true, require_auth = true },
  { address = smtp.var("smtps", "127.0.0.1:2465"), tls = "implicit",
    auth = true, require_auth = true },
}

local users_file = smtp.var("users", "examples/users.txt")
local users = assert(passwd.load(users_file))
local maildir_root = smtp.var("maildir", "var/mail")
local domain_list = util.split(smtp.var("domains", "localhost,example.test"), ",")
local domains = util.set(domain_list)

-- The Maildir of a local recipient, or nil (see luasmtpd.util).
local function mailbox_dir(address)
  return util.maildir_path(maildir_root, domains, address)
end

function hooks.auth(s, user, password, mechanism)
  if passwd.check(users, user, password) then return smtp.accept() end
  return smtp.reject()
end

function hooks.rcpt(s, rcpt)
  if rcpt == "Postmaster" then
    return smtp.rewrite("postmaster@" .. domain_list[1]:lower())
  end
  if mailbox_dir(rcpt) then return smtp.accept() end
  -- Relaying is for authenticated senders only: never an open relay.
  if s.auth then return smtp.accept() end
  return smtp.reject(554, "5.7.1", "Error: relay access denied")
end

function hooks.message(s, msg)
  for _, r in ipairs(msg.rcpts) do
    local dir = mailbox_dir(r.address)
    if dir then
      local ok, err = deliver.maildir(dir, r)
      if not ok then
        s:log("maildir delivery failed: " .. err)
        return smtp.tempfail(451, "4.3.0", "Error: local delivery failed")
      end
    end
  end
  -- Recipients not delivered here (relayed mail) are queued by the core.
  return smtp.accept()
end
