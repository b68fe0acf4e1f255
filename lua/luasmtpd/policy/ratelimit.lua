-- luasmtpd.policy.ratelimit — rate limits per client address (or
-- network), per sender and per authenticated user, with kv.limit (GCRA,
-- a token bucket): on Redis every node counts into the same bucket, on
-- Redis's clock.
--
--   local ratelimit = require "luasmtpd.policy.ratelimit"
--   local per_ip = ratelimit.new{ by = "ip", rate = "100/1h" }
--   function hooks.mail(s, sender) return per_ip(s) end
--
-- Hook: connect (connections), mail (messages), rcpt (recipients): each
-- call counts one.  by = "sender" needs mail or later; by = "user" any hook
-- after AUTH.
--
-- ratelimit.new(opts) -> check(s) -> tempfail verdict | nil, remaining
--   rate     "N/PERIOD": N calls per PERIOD on average, PERIOD seconds
--            ("3600") or with a unit ("30s", "5m", "1h", "1d", "h")
--   burst    calls at once before the rate applies (default N)
--   by       "ip" (default), "network" (the client's /24 or /64:
--            v4_prefix, v6_prefix), "sender" (the MAIL FROM address,
--            lower-cased; not <>), "user" (s.auth.user; nothing before
--            AUTH), or function(s) -> a key, or nil for no opinion
--   name     part of every key (default by .. ":" .. rate): two limits on
--            one thing need two names
--   code, ecode   451 (or any 4xx, 450 for instance) and "4.7.1"
--   text     the reply, with one %d: the seconds until a call is allowed
--            (default "Rate limit exceeded (<by>), try again in %d seconds")
--   on_error "accept" (default: the store is down, mail goes on) or
--            "tempfail" (451 4.3.0)
--   prefix   of every key (default "rl:")
--   ip, exempt, exempt_auth    see luasmtpd.policy
--
-- Keys: rl:<name>:<address, network, sender or user> (cut to 254 bytes).

local smtp = require "luasmtpd"
local kv = require "luasmtpd.kv"
local P = require "luasmtpd.policy"

local M = {}

local WHAT = "luasmtpd.policy.ratelimit"
local KEY_PART_MAX = 254
local BURST_MAX = 1000000      -- kv.limit's (KV_GCRA_BURST_MAX)
local RATE_MAX = 1e6           -- per second (KV_GCRA_RATE_MAX)

-- What each `by` counts: the key part of a session, or nil.
local BY = {
  ip = function(s, opts)
    local ip = P.client_ip(s, opts)
    return P.parse_ip(ip) and ip or nil
  end,
  network = function(s, opts)
    return P.network(P.client_ip(s, opts), opts.v4_prefix or 24, opts.v6_prefix or 64)
  end,
  sender = function(s)
    local sender = s.tx and s.tx.sender
    if sender == nil or sender == "" then return nil end
    return P.lower(sender)
  end,
  user = function(s)
    return s.auth and s.auth.user or nil
  end,
}

local LABEL = { ip = "your address", network = "your network", sender = "this sender",
                user = "this user" }

-- The key of one call, or nil.
function M.key(prefix, name, part)
  if part == nil then return nil end
  return prefix .. name .. ":" .. tostring(part):sub(1, KEY_PART_MAX)
end

function M.new(opts)
  opts = P.options(opts, {
    rate = "string", burst = P.positive(true, BURST_MAX), by = function(v)
      if type(v) == "function" or BY[v] then return true end
      return nil, 'must be "ip", "network", "sender", "user" or a function'
    end,
    name = P.text(64), code = P.code(4), ecode = P.ecode(4), text = "string",
    on_error = P.one_of("accept", "tempfail"),
    prefix = P.text(64), v4_prefix = P.positive(true, 32), v6_prefix = P.positive(true, 128),
  }, WHAT)
  if not opts.rate then error(WHAT .. ': rate is required ("100/1h")', 2) end
  local n, period = P.parse_rate(opts.rate)
  if not n then error(WHAT .. ": rate " .. period, 2) end
  local by = opts.by or "ip"
  local part = type(by) == "function" and by or BY[by]
  local name = opts.name or ((type(by) == "string" and by or "fn") .. ":" .. opts.rate:sub(1, 32))
  local prefix = opts.prefix or "rl:"
  local limit = { rate = n / period, burst = opts.burst or n }
  if limit.rate > RATE_MAX or limit.burst / limit.rate > P.TTL_MAX then
    error(WHAT .. ": rate is out of range (at most 1e6/s, and burst/rate at most ten years)", 2)
  end
  local code, ecode = opts.code or 451, opts.ecode or "4.7.1"
  local text = opts.text or ("Rate limit exceeded (" ..
    (LABEL[by] or "policy") .. "), try again in %d seconds")
  local percents = select(2, text:gsub("%%", ""))
  if percents > 1 or (percents == 1 and not text:find("%d", 1, true)) then
    error(WHAT .. ": text may hold one %d (the seconds to wait) and no other %", 2)
  end

  return function(s)
    if P.exempt(s, opts) then return nil end
    local key = M.key(prefix, name, part(s, opts))
    if not key then return nil end
    local allowed, retry, remaining = kv.limit(key, limit)
    if allowed == nil then
      smtp.log("warn", WHAT .. ": the store failed: " .. tostring(retry))
      if opts.on_error == "tempfail" then
        return smtp.tempfail(451, "4.3.0", "Rate limit unavailable, try again later")
      end
      return nil
    end
    if allowed then return nil, remaining end
    local t = text:find("%d", 1, true) and text:format(math.max(1, math.ceil(retry))) or text
    return smtp.tempfail(code, ecode, P.printable(t, P.REPLY_TEXT_MAX))
  end
end

return M
