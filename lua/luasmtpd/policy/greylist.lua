-- luasmtpd.policy.greylist — greylisting (a new client network, sender and
-- recipient must come back after a delay; spamware rarely retries), with
-- its state in luasmtpd.kv: nodes that share a Redis share the triplets.
--
--   local greylist = require "luasmtpd.policy.greylist"
--   local grey = greylist.new{ delay = 300, exempt = allowed }
--   function hooks.rcpt(s, rcpt) return grey(s, rcpt) or smtp.accept() end
--
-- Hook: rcpt (check(s, rcpt); the sender is s.tx.sender).
--
-- greylist.new(opts) -> check(s, rcpt) -> tempfail verdict | nil, state
--   delay          seconds a new triplet must wait (default 300)
--   retry_window   seconds a waiting triplet is kept: a client that does
--                  not come back within it starts over (default 2 days)
--   pass_ttl       seconds a triplet that passed keeps passing, from its
--                  last use ("pass-after"; default 35 days)
--   auto_allow     passes after which the client's network is let through
--                  without greylisting (default 5; false: never)
--   auto_allow_ttl seconds a network stays let through, and the window in
--                  which its passes are counted (default 35 days)
--   v4_prefix, v6_prefix   the client network of a triplet (24, 64): a
--                  sender's pool of outgoing servers retries from another
--                  address of the same network
--   code, ecode, text  the reply (451 4.7.1 "Greylisted: ... try again in
--                  N seconds"); text may hold one %d, the seconds left
--   on_error       "accept" (default: the store is down, mail goes on) or
--                  "tempfail" (451 4.3.0)
--   prefix         of every key (default "grey:")
--   ip, exempt (called as exempt(s, rcpt)), exempt_auth (default true)
-- state: "new", "waiting", "passed", "allowed" (the network), "error".
--
-- Keys (under kv's own prefix on Redis):
--   grey:t:<network>/<sender>/<rcpt>   "w<first seen, s>" waiting, "ok" passed
--   grey:n:<network>                   passes counted for auto_allow
--   grey:a:<network>                   the network is let through
-- Sender and recipient are lower-cased and cut to 254 bytes, a BATV tag
-- (prvs=TAG=) is dropped from the sender, <> is "<>".  A new triplet is
-- set with NX, so two nodes seeing it at once agree on its first sight.
-- The delay is measured with the nodes' clocks (smtp.now()): keep them in
-- step (NTP); a skew of seconds against a delay of minutes does not matter.

local smtp = require "luasmtpd"
local kv = require "luasmtpd.kv"
local P = require "luasmtpd.policy"

local M = {}

local WHAT = "luasmtpd.policy.greylist"
local ADDRESS_MAX = 254        -- RFC 5321 §4.5.3.1.3: a path is 256 with <>
local DAY = 86400

-- A normalized address for a key.
function M.address(a)
  if a == nil or a == "" then return "<>" end
  a = P.lower(a)
  a = a:gsub("^prvs=[%w]+=", "", 1)
  return a:sub(1, ADDRESS_MAX)
end

-- The key of a triplet.
function M.triplet(prefix, network, sender, rcpt)
  return ("%st:%s/%s/%s"):format(prefix, network, M.address(sender), M.address(rcpt))
end

local DEFAULT_TEXT = "Greylisted: first attempt from your network for this sender and " ..
  "recipient, please try again in %d seconds"

function M.new(opts)
  local secs = P.positive(true, P.TTL_MAX)
  opts = P.options(opts, {
    delay = secs, retry_window = secs, pass_ttl = secs, auto_allow = function(v)
      if v == false or (type(v) == "number" and v >= 1 and v == math.floor(v)) then
        return true
      end
      return nil, "must be a whole number from 1, or false"
    end,
    auto_allow_ttl = secs, v4_prefix = P.positive(true, 32), v6_prefix = P.positive(true, 128),
    code = P.code(4), ecode = P.ecode(4), text = "string",
    on_error = P.one_of("accept", "tempfail"), prefix = P.text(64),
  }, WHAT)
  if opts.exempt_auth == nil then opts.exempt_auth = true end
  local delay = opts.delay or 300
  local retry_window = opts.retry_window or 2 * DAY
  local pass_ttl = opts.pass_ttl or 35 * DAY
  local auto_allow = opts.auto_allow == nil and 5 or opts.auto_allow
  local auto_ttl = opts.auto_allow_ttl or 35 * DAY
  local prefix = opts.prefix or "grey:"
  local code, ecode = opts.code or 451, opts.ecode or "4.7.1"
  local text = opts.text or DEFAULT_TEXT
  if delay >= retry_window then
    error(WHAT .. ": delay must be shorter than retry_window", 2)
  end
  local percents = select(2, text:gsub("%%", ""))
  if percents > 1 or (percents == 1 and not text:find("%d", 1, true)) then
    error(WHAT .. ": text may hold one %d (the seconds left) and no other %", 2)
  end

  local function wait(left)
    local t = text:find("%d", 1, true) and text:format(math.max(1, math.ceil(left))) or text
    return smtp.tempfail(code, ecode, P.printable(t, P.REPLY_TEXT_MAX)), "waiting"
  end

  local function failed(err)
    smtp.log("warn", WHAT .. ": the store failed: " .. tostring(err))
    if opts.on_error == "tempfail" then
      return smtp.tempfail(451, "4.3.0", "Greylisting is unavailable, try again later"), "error"
    end
    return nil, "error"
  end

  -- A triplet passed: count it for its network, maybe let the network in.
  local function passed(net)
    if not auto_allow then return end
    local n = kv.incr(prefix .. "n:" .. net, 1, { ttl = auto_ttl })
    if n and n >= auto_allow then kv.set(prefix .. "a:" .. net, "1", { ttl = auto_ttl }) end
  end

  return function(s, rcpt)
    if P.exempt(s, opts, rcpt) then return nil end
    local net = P.network(P.client_ip(s, opts), opts.v4_prefix or 24, opts.v6_prefix or 64)
    if not net then return nil end              -- a unix socket: no network
    if auto_allow then
      local v, err = kv.get(prefix .. "a:" .. net)
      if err then return failed(err) end
      if v then return nil, "allowed" end
    end
    local key = M.triplet(prefix, net, s.tx and s.tx.sender, rcpt)
    local now = P.now()
    local stamp = ("w%.3f"):format(now)
    local new, seen = kv.set(key, stamp, { ttl = retry_window, nx = true })
    if new == nil then return failed(seen) end
    if new then return wait(delay), "new" end
    if seen == "ok" then
      kv.set(key, "ok", { ttl = pass_ttl })     -- keeps passing from its last use
      return nil, "passed"
    end
    local first = tonumber(seen:match("^w(%d+%.?%d*)$"))
    if not first then                           -- not ours: start over
      kv.set(key, stamp, { ttl = retry_window })
      return wait(delay), "new"
    end
    if now - first < delay then return wait(delay - (now - first)) end
    local ok, err = kv.set(key, "ok", { ttl = pass_ttl })
    if not ok then return failed(err) end
    passed(net)
    return nil, "passed"
  end
end

return M
