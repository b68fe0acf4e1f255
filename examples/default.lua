-- default.lua — the config `make run` starts.
--
-- Accepts mail for a few local domains and stores each recipient's copy
-- in var/mail/<domain>/<local-part>/ (a Maildir) under the work tree.
-- Quoted and UTF-8 local parts get a Maildir too: util.maildir_path
-- unquotes, lower-cases ASCII and writes unsafe bytes as %XX, so no
-- address can name a directory outside var/mail.
-- Everything else is refused: this is not an open relay.
--
-- STARTTLS is offered with tls_cert/tls_key; if those files do not exist
-- a self-signed certificate for the hostname is created there at start.
--
-- Settings (luasmtpd -D name=value):
--   listen    address:port to listen on          (127.0.0.1:2525)
--   maildir   root of the Maildirs                (var/mail)
--   spool     spool directory                     (var/spool)
--   domains   comma-separated local domains       (localhost,example.test)
--   hostname  name in the banner and Received:    (localhost)
--   tls_cert  PEM certificate                     (var/tls/cert.pem)
--   tls_key   PEM private key                     (var/tls/key.pem)
--   proxy     ADDR[,ADDR...]: behind a load balancer (none)
--             every connection must start with a PROXY protocol header
--             (HAProxy send-proxy or send-proxy-v2) and come from one of
--             these addresses or prefixes ("127.0.0.1,10.0.0.0/8");
--             Lua, the logs and Received: then see the client it names
--
-- `listen` may also be unix:/path/to/socket.
--   metrics   address:port of the Prometheus      (none)
--             endpoint, e.g. 127.0.0.1:9465

local smtp = require "luasmtpd"
local deliver = require "luasmtpd.deliver"
local util = require "luasmtpd.util"

local maildir_root = smtp.var("maildir", "var/mail")
local domain_list = util.split(smtp.var("domains", "localhost,example.test"), ",")
local domains = util.set(domain_list)

hostname = smtp.var("hostname", "localhost")
local listen_at = smtp.var("listen", "127.0.0.1:2525")
local proxy = smtp.var("proxy")
listen = {
  address = listen_at,
  tls = "starttls",
  proxy = proxy ~= nil or nil,
  -- On a unix socket its mode decides who may connect: no address list.
  proxy_from = proxy and not listen_at:find("^unix:") and util.split(proxy, ",") or nil,
}
spool = smtp.var("spool", "var/spool")
metrics = smtp.var("metrics")	-- nil: no endpoint
tls = { certs = { {
  cert = smtp.var("tls_cert", "var/tls/cert.pem"),
  key = smtp.var("tls_key", "var/tls/key.pem"),
  self_signed = hostname,
} } }

-- The Maildir of a local recipient, or nil (see luasmtpd.util).  Never
-- paste an address into a path yourself: "x/../../y"@domain is one.
local function mailbox_dir(address)
  return util.maildir_path(maildir_root, domains, address)
end

function hooks.rcpt(s, rcpt)
  if rcpt == "Postmaster" then
    -- RFC 5321 4.5.1: <Postmaster> must be accepted.
    return smtp.rewrite("postmaster@" .. domain_list[1]:lower())
  end
  if mailbox_dir(rcpt) then
    return smtp.accept()
  end
  local _, domain = smtp.split_address(rcpt)
  if domain and domains[domain:lower()] then
    return smtp.reject(550, "5.1.1", "Error: no such mailbox here")
  end
  return smtp.reject(554, "5.7.1", "Error: relay access denied")
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
