-- relay.lua — a relay for our own users: mail from trusted client
-- addresses or from authenticated clients goes to a smarthost over SMTP;
-- everyone else may not relay (554 5.7.1).  Never an open relay.
--
--   RCPT   accepted when the client's IP is in `trusted` or it logged in
--          (AUTH after STARTTLS, users from the `users` file); else 554.
--   DATA   deliver.smtp to the smarthost (STARTTLS as `starttls` says, AUTH
--          with smarthost_user/smarthost_pass); the reply follows
--          luasmtpd.delivery: all delivered 250, all refused for good 5xx
--          (the smarthost's code and text), anything else 451.  A 451
--          leaves the retry to the client, which still holds the message.
--
-- Settings (luasmtpd -D name=value), defaults in brackets:
--   listen            [127.0.0.1:2525]    spool      [var/spool]
--   hostname          [localhost]         (the banner, EHLO to the smarthost)
--   smarthost         [127.0.0.1:25]      host:port or [ipv6]:port
--   starttls          [opportunistic]     opportunistic | required | none
--   smarthost_user, smarthost_pass        [none]  AUTH to the smarthost (TLS only)
--   smarthost_ca      [system CAs]        CA file to verify the smarthost with
--   smarthost_verify  [yes if required]   yes | no: check its certificate
--   smarthost_name    [the host]          the name its certificate must have
--   timeout           [120]               seconds per step with the smarthost
--   trusted           [127.0.0.1,::1]     client IPs that may relay
--   users             [none]              "user:secret" file (luasmtpd.passwd);
--                                         enables AUTH for our clients
--   tls_cert, tls_key [var/tls/cert.pem, var/tls/key.pem] (self-signed if missing)

local smtp = require "luasmtpd"
local deliver = require "luasmtpd.deliver"
local delivery = require "luasmtpd.delivery"
local passwd = require "luasmtpd.passwd"
local util = require "luasmtpd.util"

hostname = smtp.var("hostname", "localhost")
spool = smtp.var("spool", "var/spool")

local users_file = smtp.var("users")
local users = users_file and assert(passwd.load(users_file))
listen = { address = smtp.var("listen", "127.0.0.1:2525"), tls = "starttls",
           auth = users ~= nil }
tls = { certs = { {
  cert = smtp.var("tls_cert", "var/tls/cert.pem"),
  key = smtp.var("tls_key", "var/tls/key.pem"),
  self_signed = hostname,
} } }

local trusted = util.set(util.split(smtp.var("trusted", "127.0.0.1,::1"), ","))

-- The smarthost: "host:port", "[v6]:port" or "host" (port 25).
local smarthost = smtp.var("smarthost", "127.0.0.1:25")
local sh_host, sh_port = smarthost:match("^%[(.+)%]:(%d+)$")
if not sh_host then sh_host, sh_port = smarthost:match("^([^:]+):(%d+)$") end
if not sh_host then sh_host, sh_port = smarthost, "25" end

local starttls = smtp.var("starttls", "opportunistic")
assert(starttls == "opportunistic" or starttls == "required" or starttls == "none",
  "starttls must be opportunistic, required or none")
local verify = smtp.var("smarthost_verify")
assert(verify == nil or verify == "yes" or verify == "no", "smarthost_verify must be yes or no")

local target = {
  host = sh_host,
  port = assert(tonumber(sh_port), "bad smarthost port"),
  starttls = starttls,
  ca = smtp.var("smarthost_ca"),
  verify_name = smtp.var("smarthost_name"),
  timeout = assert(tonumber(smtp.var("timeout", "120")), "timeout must be a number"),
  helo = hostname,
}
if verify then target.verify = verify == "yes" end
local sh_user, sh_pass = smtp.var("smarthost_user"), smtp.var("smarthost_pass")
if sh_user then target.auth = { user = sh_user, pass = assert(sh_pass, "smarthost_pass?") } end

-- A delivery waits for the smarthost; give the hook time for every step.
timeouts = { hook = math.max(60, 6 * target.timeout) }

function hooks.auth(s, user, password, mechanism)
  if users and passwd.check(users, user, password) then return smtp.accept() end
  return smtp.reject()
end

function hooks.rcpt(s, rcpt)
  if s.auth or trusted[s.remote_ip] then return smtp.accept() end
  return smtp.reject(554, "5.7.1", "Error: relay access denied")
end

function hooks.message(s, msg)
  return delivery.verdict(deliver.smtp(target))
end
