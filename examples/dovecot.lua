-- dovecot.lua — an MX in front of Dovecot: recipients rewritten by regex
-- rules to Dovecot users, checked with Dovecot at RCPT time, and delivered
-- over LMTP.
--
--   RCPT   the domain must be one of ours (else 554 5.7.1: not a relay);
--          the address (lower-cased) goes through the rewrite rules; the
--          result is asked of Dovecot (LHLO, MAIL, RCPT, QUIT) and Dovecot's
--          own refusal is the client's answer (550 5.1.1 <x> User doesn't
--          exist: x); a known user is accepted with the rewritten address.
--   DATA   one LMTP delivery to every recipient; the reply follows
--          luasmtpd.delivery: all delivered 250, all refused for good 5xx
--          (Dovecot's code and text), anything else 451.
--
-- Rules (luasmtpd.rewrite, PCRE): a file with "REGEX REPLACEMENT [FLAGS]"
-- lines, mode first (the first matching rule wins).  A result without "@"
-- is a Dovecot user name and gets the original domain appended (Dovecot's
-- userdb uses %n, the local part).  No rule matched: 550 5.1.1.  Without
-- -D rules, one built-in rule strips a +tag: "Bob+lists@example.test" ->
-- "bob@example.test" -> Dovecot user "bob".
--
-- Settings (luasmtpd -D name=value), defaults in brackets:
--   listen    [127.0.0.1:2525]            spool     [var/spool]
--   lmtp      [unix:/run/dovecot/lmtp]    (or host:port)
--   domains   [localhost,example.test]    hostname  [localhost]
--   rules     [none: the built-in rule]   timeout   [30] seconds per LMTP step

local smtp = require "luasmtpd"
local deliver = require "luasmtpd.deliver"
local delivery = require "luasmtpd.delivery"
local rewrite = require "luasmtpd.rewrite"
local util = require "luasmtpd.util"

listen = smtp.var("listen", "127.0.0.1:2525")
spool = smtp.var("spool", "var/spool")
hostname = smtp.var("hostname", "localhost")

local lmtp = smtp.var("lmtp", "unix:/run/dovecot/lmtp")
local domain_list = util.split(smtp.var("domains", "localhost,example.test"), ",")
local domains = util.set(domain_list)
local timeout = assert(tonumber(smtp.var("timeout", "30")), "timeout must be a number")

local rules
local rules_file = smtp.var("rules")
if rules_file then
  rules = assert(rewrite.load(rules_file))
else
  rules = rewrite.new{ { "^([^@+]+)(?:\\+[^@]*)?(@.+)$", "$1$2" } }
end

-- The address to give Dovecot for rcpt, or nil if no rule knows it.
local function dovecot_address(rcpt, domain)
  local target = rules:apply(rcpt:lower())
  if not target or target == "" then return nil end
  if not target:find("@", 1, true) then target = target .. "@" .. domain:lower() end
  return target
end

function hooks.rcpt(s, rcpt)
  if rcpt == "Postmaster" then rcpt = "postmaster@" .. domain_list[1] end
  local _, domain = smtp.split_address(rcpt)
  if not domain or not domains[domain:lower()] then
    return smtp.reject(554, "5.7.1", "Error: relay access denied")
  end
  local target = dovecot_address(rcpt, domain)
  if not target then
    return smtp.reject(550, "5.1.1", "Error: no such user here")
  end
  -- Ask Dovecot now, so that an unknown user is refused in this session.
  local res = deliver.lmtp_check{ to = lmtp, rcpt = target, timeout = timeout }
  local ecode = res.ecode ~= "" and res.ecode or nil
  if res.code >= 500 then return smtp.reject(res.code, ecode, res.text) end
  if res.code >= 400 then return smtp.tempfail(res.code, ecode, res.text) end
  if target ~= rcpt then return smtp.rewrite(target) end
  return smtp.accept()
end

function hooks.message(s, msg)
  return delivery.verdict(deliver.lmtp{ to = lmtp, timeout = timeout })
end
