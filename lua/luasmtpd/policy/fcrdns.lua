-- luasmtpd.policy.fcrdns — forward-confirmed reverse DNS (FCrDNS, "iprev"
-- in RFC 8601 §3): the client's PTR names must lead back to its address.
--
--   local fcrdns = require "luasmtpd.policy.fcrdns"
--   hooks.connect = fcrdns.new{ fail = "reject", permerror = "reject", temperror = "tempfail" }
--
-- Hook: connect (refuses at once: 554/421 on the greeting, nothing to
-- tag), or mail/rcpt (refuses and tags).  A session looks up once; called
-- in several hooks the policy reuses the answer (kept in s.data).
--
-- fcrdns.new(opts) -> check(s) -> verdict | nil, iprev
--   fail       the PTR names do not lead back to the address
--   permerror  no PTR record at all
--   temperror  a lookup failed or timed out (and no name passed)
--   pass       only "tag" makes sense
--              Each is "reject" (550 5.7.25), "tempfail" (450 4.7.25),
--              "tag" (a header) or nil: nothing.  Nothing is the default
--              for every result: the policy adds nothing it is not asked to.
--   replies    { fail = { code, ecode, text }, ... } to change a reply
--   header     the tag's field name (default "X-FCrDNS"); its value:
--              "fail ip=192.0.2.11 ptr=host.example"
--   timeout    seconds per lookup (default the dns setting's timeout)
--   ip, exempt, exempt_auth    see luasmtpd.policy
-- iprev is dns.iprev's table: { result =, names =, name =, error = }.
--
-- RFC 7372 §3.3 gives 5.7.25 ("reverse DNS validation failed").  The
-- replies name the client's address, never its PTR names (network text).

local smtp = require "luasmtpd"
local dns = require "luasmtpd.dns"
local P = require "luasmtpd.policy"

local M = {}

local WHAT = "luasmtpd.policy.fcrdns"
local NAME_MAX = 253  -- a DNS name in text form

local TEXTS = {
  fail = "Client host rejected: the reverse DNS name of [%s] does not lead back to it",
  permerror = "Client host rejected: [%s] has no reverse DNS (PTR) record",
  temperror = "Client host rejected: cannot check the reverse DNS of [%s], try again later",
  pass = "Client host rejected",
}

local function header_value(ip, r)
  local v = r.result .. " ip=" .. ip
  if r.name then
    v = v .. " name=" .. P.printable(r.name, NAME_MAX):gsub(" ", "?")
  elseif r.names and r.names[1] then
    v = v .. " ptr=" .. P.printable(r.names[1], NAME_MAX):gsub(" ", "?")
  end
  if r.error then v = v .. " error=" .. P.printable(r.error, 40):gsub(" ", "_") end
  return v
end

function M.new(opts)
  local action = P.one_of("reject", "tempfail", "tag")
  opts = P.options(opts, {
    fail = action, permerror = action, temperror = action, pass = P.one_of("tag"),
    replies = "table", header = "string", timeout = P.positive(),
  }, WHAT)
  local replies = opts.replies or {}
  local header = opts.header or "X-FCrDNS"
  local cache_key, tag_key = {}, {}

  local function verdict(result, ip)
    local what, rep = opts[result], replies[result] or {}
    local text = P.printable(rep[3] or TEXTS[result]:format(ip), P.REPLY_TEXT_MAX)
    if what == "reject" then return smtp.reject(rep[1] or 550, rep[2] or "5.7.25", text) end
    return smtp.tempfail(rep[1] or 450, rep[2] or "4.7.25", text)
  end
  -- A bad code or text in replies is a config error, not a hook's.
  for result in pairs(TEXTS) do
    if opts[result] == "reject" or opts[result] == "tempfail" then
      P.at_load(WHAT, "replies." .. result, 2, verdict, result, "192.0.2.1")
    end
  end

  return function(s)
    if P.exempt(s, opts) then return nil end
    local ip = P.client_ip(s, opts)
    if not P.parse_ip(ip) then return nil end
    local r = P.cached(s, cache_key, ip, function()
      return dns.iprev(ip, opts.timeout and { timeout = opts.timeout } or nil)
    end)
    local what = opts[r.result]
    if what == "tag" then
      P.tag(s, tag_key, header, header_value(ip, r))
    elseif what then
      return verdict(r.result, ip)
    end
    return nil, r
  end
end

return M
