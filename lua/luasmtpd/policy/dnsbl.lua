-- luasmtpd.policy.dnsbl — DNS block and allow lists (DNSBL and DNSWL,
-- RFC 5782) with weights.  Every zone is asked at once (smtp.all); the
-- weights of the zones that list the client add up to a score.  At or
-- above `reject` the client is refused with the list's own reason; below
-- it, any listing tags the transaction with a header.
--
--   local dnsbl = require "luasmtpd.policy.dnsbl"
--   local bl = dnsbl.new{ zones = { { "zen.example.org", 10 }, { "bl.example.net", 5 },
--                                   { "list.dnswl.example", -10 } }, reject = 10 }
--   function hooks.rcpt(s, rcpt) return bl(s) or smtp.accept() end
--
--   dnsbl.new{ zones = { "zen.example.org" } }   -- one zone, weight 1: listed = refused
--
-- Hook: rcpt or mail (refuses and tags), or connect (refuses only: no
-- transaction to tag yet).  A session asks the DNS once; a policy called
-- in several hooks reuses the answer (kept in s.data).
--
-- dnsbl.new(opts) -> check(s) -> verdict | nil, score, hits
--   zones    list of "zone" (weight 1), { "zone", weight } or { zone = ,
--            weight = , codes = { ["127.0.0.2"] = w, ... } }.  A negative
--            weight is an allow list (DNSWL).  With codes, a listing weighs
--            the sum of the weights of the codes returned (a code not in
--            the table weighs nothing): Spamhaus ZEN's SBL and PBL answers
--            can count apart.  At most ZONES_MAX zones.
--   reject   the score (above 0) that refuses (default 1); false: never
--   code, ecode   the refusal (default 554 5.7.1)
--   text     function(ip, hit) -> the refusal's text; default "Service
--            unavailable; client [ip] blocked using <zone>: <TXT reason>"
--   header   the tag's field name (default "X-DNSBL"); false: no tag.  Its
--            value: "score=-5; zen.example.org=127.0.0.2 (+5); wl.example=
--            127.0.10.1 (-10)"
--   timeout  seconds per lookup (default the dns setting's timeout)
--   ip, exempt, exempt_auth    see luasmtpd.policy
-- hits: { { zone =, weight =, codes = { "127.0.0.2", ... }, text = }, ... }
-- for the zones that list the client, in the order of zones, each one's
-- codes in address order.
--
-- dnsbl.lookup(ip, zones [, timeout]) -> score, hits, errors   (yields)
--   The same lookups for any address, zones as for new().  errors:
--   { { zone =, err = }, ... } for the zones whose lookup failed (timeout,
--   SERVFAIL): they count as not listing.  A list that cannot answer never
--   refuses mail.
--
-- SECURITY: the reason comes from the list's TXT record; dns.dnsbl has
-- cut it to 200 printable bytes, and the reply is cut to 400.

local smtp = require "luasmtpd"
local dns = require "luasmtpd.dns"
local P = require "luasmtpd.policy"

local M = {}

-- Zones asked at once; smtp.all runs at most 64 functions (TASK_ALL_MAX).
M.ZONES_MAX = 32

local WHAT = "luasmtpd.policy.dnsbl"
-- A query name is at most 253 characters: an IPv6 address takes 64 of
-- them (32 nibbles and their dots) in front of the zone.
local ZONE_MAX = 253 - 64

-- The zones in one shape, { zone =, weight =, codes = }; raises.
function M.zones(list, level)
  level = (level or 1) + 1
  if type(list) ~= "table" or #list == 0 then
    error(WHAT .. ": zones must be a list of zones", level)
  end
  if #list > M.ZONES_MAX then
    error(("%s: at most %d zones"):format(WHAT, M.ZONES_MAX), level)
  end
  local out = {}
  for i, z in ipairs(list) do
    local e
    if type(z) == "string" then
      e = { zone = z, weight = 1 }
    elseif type(z) == "table" then
      e = { zone = z.zone or z[1], weight = z.weight or z[2] or 1, codes = z.codes }
    end
    if not e or type(e.zone) ~= "string" or not e.zone:match("^[%w_%-]+[%w_.%-]*$")
        or #e.zone > ZONE_MAX
        or type(e.weight) ~= "number" or (e.codes ~= nil and type(e.codes) ~= "table") then
      error(("%s: zones[%d] must be \"zone\", { zone, weight } or { zone =, weight =, " ..
        "codes = }, the zone a name of at most %d characters"):format(WHAT, i, ZONE_MAX), level)
    end
    for code, w in pairs(e.codes or {}) do
      if type(code) ~= "string" or type(w) ~= "number" then
        error(("%s: zones[%d].codes must map \"127.0.0.x\" to weights"):format(WHAT, i), level)
      end
    end
    e.zone = P.lower(e.zone:gsub("%.$", ""))
    out[i] = e
  end
  return out
end

-- The weight of one listing.
local function weigh(z, codes)
  if not z.codes then return z.weight end
  local w, seen = 0, {}
  for _, c in ipairs(codes) do
    if z.codes[c] and not seen[c] then
      w = w + z.codes[c]
      seen[c] = true
    end
  end
  return w
end

function M.lookup(ip, zones, timeout)
  zones = M.zones(zones, 2)            -- cheap, and new()'s are already in shape
  local opts = timeout and { timeout = timeout } or nil
  local fns = {}
  for i, z in ipairs(zones) do
    fns[i] = function()
      local listed, info = dns.dnsbl(ip, z.zone, opts)
      return { listed = listed, info = info }
    end
  end
  local answers = { smtp.all(unpack(fns)) }
  local score, hits, errors = 0, {}, {}
  for i, z in ipairs(zones) do
    local a = answers[i]
    if a.listed == nil then
      errors[#errors + 1] = { zone = z.zone, err = a.info }
    elseif a.listed then
      local codes = a.info.codes
      -- In address order: DNS gives the records of a set in any order.
      table.sort(codes, function(x, y) return (P.parse_ip(x) or x) < (P.parse_ip(y) or y) end)
      local w = weigh(z, codes)
      score = score + w
      hits[#hits + 1] = { zone = z.zone, weight = w, codes = codes, text = a.info.text }
    end
  end
  return score, hits, errors
end

local function default_text(ip, hit)
  local t = ("Service unavailable; client [%s] blocked using %s"):format(ip, hit.zone)
  if hit.text then t = t .. ": " .. hit.text end
  return t
end

local function header_value(score, hits)
  local parts = { ("score=%g"):format(score) }
  for _, h in ipairs(hits) do
    parts[#parts + 1] = ("%s=%s (%+g)"):format(h.zone, table.concat(h.codes, ","), h.weight)
  end
  return table.concat(parts, "; ")
end

function M.new(opts)
  opts = P.options(opts, {
    zones = "table", reject = function(v)
      if v == false or (type(v) == "number" and v > 0) then return true end
      return nil, "must be a number above 0 or false"
    end,
    code = P.code(5), ecode = P.ecode(5), text = "function", header = function(v)
      if v == false or (type(v) == "string" and v ~= "") then return true end
      return nil, "must be a field name or false"
    end,
    timeout = P.positive(),
  }, WHAT)
  local zones = M.zones(opts.zones, 2)
  local reject = opts.reject == nil and 1 or opts.reject
  local header = opts.header == nil and "X-DNSBL" or opts.header
  local code, ecode = opts.code or 554, opts.ecode or "5.7.1"
  local text = opts.text or default_text
  local cache_key, tag_key = {}, {}

  return function(s)
    if P.exempt(s, opts) then return nil end
    local ip = P.client_ip(s, opts)
    if not P.parse_ip(ip) then return nil end       -- a unix socket: nothing to ask
    local r = P.cached(s, cache_key, ip, function()
      local score, hits = M.lookup(ip, zones, opts.timeout)
      return { score = score, hits = hits }
    end)
    if reject and #r.hits > 0 and r.score >= reject then
      local worst
      for _, h in ipairs(r.hits) do
        if not worst or h.weight > worst.weight then worst = h end
      end
      return smtp.reject(code, ecode, P.printable(text(ip, worst), P.REPLY_TEXT_MAX))
    end
    if header and #r.hits > 0 then
      P.tag(s, tag_key, header, header_value(r.score, r.hits))
    end
    return nil, r.score, r.hits
  end
end

return M
