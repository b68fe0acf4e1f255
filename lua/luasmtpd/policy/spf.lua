-- luasmtpd.policy.spf — an SPF policy (RFC 7208) on luasmtpd.spf: refuse
-- a fail, tag the rest with the Received-SPF header (RFC 7208 §9.1).
--
--   local spf = require "luasmtpd.policy.spf"
--   local check_spf = spf.new{ temperror = "tempfail" }
--   function hooks.mail(s, sender) return check_spf(s, sender) end
--
-- Hook: mail (check(s, sender)), or rcpt/data (check(s) reads
-- s.tx.sender).  One check per transaction: called again in the same
-- transaction it reuses the result.
--
-- spf.new(opts) -> check(s [, sender]) -> verdict | nil, result
-- What to do with each result: "reject", "tempfail", "tag" (add the
-- Received-SPF header to the message) or false (nothing):
--   fail       "reject"   550 5.7.23 with the domain's explanation (RFC 7372)
--   softfail   "tag"
--   neutral, none, pass   "tag"
--   permerror  "tag"      "reject": 550 5.7.24
--   temperror  "tag"      "tempfail": 451 4.7.24 (the usual choice when
--                         mail may wait; "tag" lets it in unchecked)
-- A refused result is not tagged (there is no message).  "tempfail" on
-- fail or softfail answers 451 4.7.23.
--   timeout   seconds for the whole check (default spf.check's, 20)
--   ip, exempt, exempt_auth (default true: an authenticated submitter is
--   not an SPF case)    see luasmtpd.policy
-- result is spf.check's table: { result =, domain =, reason =,
-- explanation =, header = }.
--
-- libspf2 answers pass for every loopback client (127.0.0.0/8, ::1).
-- SECURITY: the explanation is the domain's text (exp=): it goes into the
-- reply only printable and cut to 400 bytes.

local smtp = require "luasmtpd"
local spf = require "luasmtpd.spf"
local P = require "luasmtpd.policy"

local M = {}

local WHAT = "luasmtpd.policy.spf"

local DEFAULTS = { fail = "reject", softfail = "tag", neutral = "tag", none = "tag",
                   pass = "tag", permerror = "tag", temperror = "tag" }

-- The reply of a refused result.
local function refusal(what, r)
  local ecode = (r.result == "permerror" or r.result == "temperror") and "7.24" or "7.23"
  local text
  if r.result == "fail" or r.result == "softfail" then
    text = "SPF: " .. (r.explanation or ("%s is not allowed to send for %s"):format(
      tostring(r.ip), tostring(r.domain)))
  elseif r.result == "permerror" then
    text = "SPF: permanent error in the sender's SPF record: " .. tostring(r.reason)
  elseif r.result == "temperror" then
    text = "SPF: temporary error, try again later"
  else
    text = "SPF: " .. r.result
  end
  text = P.printable(text, P.REPLY_TEXT_MAX)
  if what == "reject" then return smtp.reject(550, "5." .. ecode, text) end
  return smtp.tempfail(451, "4." .. ecode, text)
end

function M.new(opts)
  local action = function(v)
    if v == false or v == "reject" or v == "tempfail" or v == "tag" then return true end
    return nil, 'must be "reject", "tempfail", "tag" or false'
  end
  local spec = { timeout = P.positive(false, 60) }
  for k in pairs(DEFAULTS) do spec[k] = action end
  opts = P.options(opts, spec, WHAT)
  if opts.exempt_auth == nil then opts.exempt_auth = true end
  local actions = {}
  for k, v in pairs(DEFAULTS) do
    if opts[k] ~= nil then actions[k] = opts[k] else actions[k] = v end
  end
  local cache_key, tag_key = {}, {}

  return function(s, sender)
    local tx = s.tx
    if tx == nil or P.exempt(s, opts, sender) then return nil end
    sender = sender or tx.sender
    local ip = P.client_ip(s, opts)
    if not P.parse_ip(ip) then return nil end
    local r = P.cached(s, cache_key, tx.id .. " " .. ip .. " " .. sender, function()
      local res = spf.check{ ip = ip, helo = s.helo, sender = sender, timeout = opts.timeout }
      res.ip = ip
      return res
    end)
    local what = actions[r.result]
    if what == "tag" then
      local value = r.header:match("^[Rr]eceived%-[Ss][Pp][Ff]:%s*(.*)$")
      if value then P.tag(s, tag_key, "Received-SPF", value) end
    elseif what then
      return refusal(what, r)
    end
    return nil, r
  end
end

return M
