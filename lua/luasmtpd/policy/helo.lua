-- luasmtpd.policy.helo — what the client's HELO/EHLO name says about it
-- (RFC 5321 §4.1.1.1, §2.3.5), through dns.helo_check, plus one check of
-- our own: a stranger greeting with our own name.
--
--   local helo = require "luasmtpd.policy.helo"
--   hooks.helo = helo.new{ not_fqdn = "reject", unresolvable = "tempfail" }
--
-- Hook: helo (the name is the hook's argument: check(s, name); a refusal
-- leaves the client ungreeted), or mail/rcpt (check(s) reads s.helo; the
-- usual place, as Postfix's smtpd_delay_reject, and the only one that can
-- tag).  Each name is looked up once per session (kept in s.data).
--
-- helo.new(opts) -> check(s [, name]) -> verdict | nil, result
-- Results, and what the policy does by default:
--   invalid          "reject"  empty, not a domain or address literal, a
--                              bare address without brackets
--   foreign_literal  "reject"  [192.0.2.1] from another address
--   ours             "reject"  one of own_names, from a client that is
--                              neither trusted nor authenticated
--   not_fqdn         nil       one label ("localhost", "PC-123")
--   unresolvable     nil       no A or AAAA record
--   mismatch         nil       the name's addresses are all someone else's
--   temperror        nil       the lookup failed (SERVFAIL, timeout)
--   (match: the client's own literal or name: never anything)
-- Each may be set to "reject" (550 5.7.1), "tempfail" (450 4.7.1), "tag"
-- (a header) or false (nothing).
--   own_names  names that are ours (default { smtp.hostname() }, read at
--              each check, so the hostname setting counts)
--   trusted    list of networks ("192.0.2.0/24", "2001:db8::/32") that may
--              greet with our names (a cluster's other nodes)
--   replies    { not_fqdn = { code, ecode, text }, ... } to change a reply
--   header     the tag's field name (default "X-HELO-Check"); its value:
--              "mismatch name=client.example"
--   timeout    seconds per lookup;  ip, exempt, exempt_auth (luasmtpd.policy)
--
-- SECURITY: replies never repeat the client's name; the tag carries it cut
-- to 255 printable bytes (a HELO line is bounded by the command limit).

local smtp = require "luasmtpd"
local dns = require "luasmtpd.dns"
local P = require "luasmtpd.policy"

local M = {}

local WHAT = "luasmtpd.policy.helo"
local NAME_MAX = 255

local DEFAULTS = { invalid = "reject", foreign_literal = "reject", ours = "reject" }

local TEXTS = {
  invalid = "Helo command rejected: invalid name",
  foreign_literal = "Helo command rejected: the address literal is not your address",
  ours = "Helo command rejected: you are not me",
  not_fqdn = "Helo command rejected: need a fully-qualified hostname",
  unresolvable = "Helo command rejected: host not found",
  mismatch = "Helo command rejected: the name does not resolve to your address",
  temperror = "Helo command rejected: cannot check the name, try again later",
}

function M.new(opts)
  local action = function(v)
    if v == false or v == "reject" or v == "tempfail" or v == "tag" then return true end
    return nil, 'must be "reject", "tempfail", "tag" or false'
  end
  local spec = { own_names = "table", trusted = "table", replies = "table", header = "string",
                 timeout = P.positive() }
  for k in pairs(TEXTS) do spec[k] = action end
  opts = P.options(opts, spec, WHAT)
  local actions = {}
  for k in pairs(TEXTS) do
    if opts[k] ~= nil then actions[k] = opts[k] else actions[k] = DEFAULTS[k] or false end
  end
  local trusted = P.at_load(WHAT, "trusted", 2, P.cidr_set, opts.trusted)
  -- The refusals, made now: a bad code or text in replies is a config error.
  local verdicts = {}
  for result, what in pairs(actions) do
    if what == "reject" or what == "tempfail" then
      local rep = (opts.replies or {})[result] or {}
      local text = P.printable(rep[3] or TEXTS[result], P.REPLY_TEXT_MAX)
      if what == "reject" then
        verdicts[result] = P.at_load(WHAT, "replies." .. result, 2, smtp.reject,
          rep[1] or 550, rep[2] or "5.7.1", text)
      else
        verdicts[result] = P.at_load(WHAT, "replies." .. result, 2, smtp.tempfail,
          rep[1] or 450, rep[2] or "4.7.1", text)
      end
    end
  end
  local header = opts.header or "X-HELO-Check"
  local cache_key, tag_key = {}, {}

  local function ours(name)
    name = P.lower(name):gsub("%.$", "")
    for _, own in ipairs(opts.own_names or { smtp.hostname() }) do
      if name == P.lower(own):gsub("%.$", "") then return true end
    end
    return false
  end

  local function lookup(name, ip)
    local r = dns.helo_check(name, ip, opts.timeout and { timeout = opts.timeout } or nil)
    if not r then return "temperror" end
    return r.result
  end

  return function(s, name)
    name = name or s.helo
    if name == nil or P.exempt(s, opts, name) then return nil end
    local ip = P.client_ip(s, opts)
    if not P.parse_ip(ip) then return nil end
    local result
    if ours(name) and not s.auth and not trusted:match(ip) then
      result = "ours"
    else
      result = P.cached(s, cache_key, ip .. " " .. name, function() return lookup(name, ip) end)
    end
    local what = actions[result]
    if what == "tag" then
      P.tag(s, tag_key, header, result .. " name=" ..
        P.printable(name, NAME_MAX):gsub(" ", "?"))
    elseif what then
      return verdicts[result]
    end
    return nil, result
  end
end

return M
