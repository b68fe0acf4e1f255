-- luasmtpd.memoize — kv.memoize: a function's result cached in the
-- key-value store (luasmtpd.kv), for slow lookups in hooks.
--
--   local kv = require "luasmtpd.kv"
--   local lookup = kv.memoize(function(domain)
--     local r, err = http.get("http://policy.local/domain/" .. domain)
--     if not r then return nil, err end          -- nil: not cached
--     return r.status == 200                     -- true/false: cached
--   end, { ttl = 300, prefix = "dom:" })
--   local allowed, err = lookup("example.org")   -- fn runs once per 300 s
--
-- kv.memoize(fn, opts) -> a function.  Each call makes a key, looks it up
-- and returns the cached value, or calls fn (in the same hook: fn may
-- yield, e.g. for HTTP) and stores fn's first result with the TTL:
--
--   opts.ttl     seconds the result is kept (required, whole, >= 1)
--   opts.key     function(...) -> string: the key of a call's arguments;
--                default: the arguments themselves (strings, numbers,
--                booleans or nil; anything else raises: give a key function)
--   opts.prefix  prepended to every key; default "memo:<file>:<line>:" of
--                fn's definition, so two memoized functions never share
--                keys.  Set it to share a cache between nodes whose configs
--                live at different paths (the kv store's own Redis prefix
--                comes on top).
--
-- What is cached: fn's first result when it is not nil: a string, a number
-- (exactly), a boolean, or a table (as JSON: see luasmtpd.json for what
-- round-trips: arrays without holes, string keys, 14 significant digits).
-- A function, userdata or thread raises.  A nil first result is not cached
-- and all of fn's results are returned as they are (the nil, err idiom:
-- failures are retried at the next call); return false to cache a
-- negative answer.  On a hit the memoized function returns one value; on a
-- miss it returns that same first result only.
--
-- The store failing (nil, "unavailable", "timeout", "busy") never fails the
-- call: a lookup that fails counts as a miss, a store that fails is
-- ignored; fn's result is returned either way.  A key over kv.KEY_MAX or an
-- encoded result over kv.VALUE_MAX bytes is not cached (fn runs each time).  A cached value that does
-- not decode (written by something else) is a miss and is overwritten.
-- Calls that miss at the same time (two sessions) each call fn: there is
-- no cross-session lock.
--
-- Encoding (one tag byte, then the data): "s" string, "n" number
-- (%.17g, or inf/-inf/nan), "T"/"F" booleans, "j" JSON table.  Default
-- keys are the arguments each as <length>:<tag><data>, so ("a", "b") and
-- ("ab") differ.

local json = require "luasmtpd.json"

local M = {}

local function encode_number(n)
  if n ~= n then return "nnan" end
  if n == math.huge then return "ninf" end
  if n == -math.huge then return "n-inf" end
  return "n" .. string.format("%.17g", n)
end

-- v -> the stored string, or nil and why for a type that cannot be cached.
function M.encode(v)
  local t = type(v)
  if t == "string" then return "s" .. v end
  if t == "number" then return encode_number(v) end
  if t == "boolean" then return v and "T" or "F" end
  if t == "table" then
    local ok, s = pcall(json.encode, v)
    if not ok then return nil, s end
    return "j" .. s
  end
  return nil, "a " .. t .. " cannot be cached"
end

-- The stored string -> value, or nil and why.
function M.decode(s)
  if type(s) ~= "string" or s == "" then return nil, "not an encoded value" end
  local tag, data = s:sub(1, 1), s:sub(2)
  if tag == "s" then return data end
  if tag == "T" and data == "" then return true end
  if tag == "F" and data == "" then return false end
  if tag == "n" then
    if data == "nan" then return 0 / 0 end
    if data == "inf" then return math.huge end
    if data == "-inf" then return -math.huge end
    -- Only what encode_number writes: no hex, no blanks.
    if data:find("^%-?%d+%.?%d*[eE]?[-+]?%d*$") then
      local n = tonumber(data)
      if n then return n end
    end
    return nil, "bad number"
  end
  if tag == "j" then
    local v, err = json.decode(data)
    if type(v) ~= "table" then return nil, err or "not a table" end
    return v
  end
  return nil, "unknown tag"
end

-- The default key: every argument as <length>:<encoding>.
local function args_key(...)
  local parts = {}
  for i = 1, select("#", ...) do
    local a = select(i, ...)
    local t = type(a)
    local e
    if a == nil then
      e = "z"
    elseif t == "string" or t == "number" or t == "boolean" then
      e = M.encode(a)
    else
      error("kv.memoize: argument #" .. i .. " is a " .. t ..
        ": give opts.key a function that makes a string key", 3)
    end
    parts[#parts + 1] = #e .. ":" .. e
  end
  return table.concat(parts)
end

local function default_prefix(fn)
  local info = debug.getinfo(fn, "S")
  local file = (info.short_src or "?"):match("([^/]*)$")
  return "memo:" .. file .. ":" .. tostring(info.linedefined or 0) .. ":"
end

-- The store's bounds (luasmtpd.kv sets them; a test store may not).
local KEY_MAX, VALUE_MAX = 1024, 1024 * 1024

-- After fn ran: cache its first result when it can be, return it.
local function store(kv, key, ttl, first, ...)
  if first == nil then return first, ... end
  local enc, why = M.encode(first)
  if not enc then error("kv.memoize: cannot cache the result: " .. why, 2) end
  if key and #enc <= (kv.VALUE_MAX or VALUE_MAX) then
    kv.set(key, enc, { ttl = ttl })   -- a failure only means no cache
  end
  return first
end

-- kv: the luasmtpd.kv module (or a table with get and set, for tests).
function M.wrap(kv, fn, opts)
  if type(fn) ~= "function" then
    error("kv.memoize: expected a function, got " .. type(fn), 2)
  end
  if type(opts) ~= "table" then
    error("kv.memoize: expected an options table { ttl = seconds, ... }", 2)
  end
  for k in pairs(opts) do
    if k ~= "ttl" and k ~= "key" and k ~= "prefix" then
      error("kv.memoize: unknown option '" .. tostring(k) .. "'", 2)
    end
  end
  local ttl, keyf, prefix = opts.ttl, opts.key, opts.prefix
  if type(ttl) ~= "number" or ttl < 1 or ttl ~= math.floor(ttl) then
    error("kv.memoize: ttl must be whole seconds >= 1", 2)
  end
  if keyf ~= nil and type(keyf) ~= "function" then
    error("kv.memoize: key must be a function", 2)
  end
  if prefix ~= nil and type(prefix) ~= "string" then
    error("kv.memoize: prefix must be a string", 2)
  end
  prefix = prefix or default_prefix(fn)
  keyf = keyf or args_key

  return function(...)
    local k = keyf(...)
    if type(k) ~= "string" then
      error("kv.memoize: the key function returned a " .. type(k) ..
        ", not a string", 2)
    end
    local key = prefix .. k
    if #key > (kv.KEY_MAX or KEY_MAX) then
      return store(kv, nil, ttl, fn(...))
    end
    local cached = kv.get(key)
    if cached ~= nil then
      local v = M.decode(cached)
      if v ~= nil then return v end
    end
    return store(kv, key, ttl, fn(...))
  end
end

-- kv.memoize for the kv module (lua_kv.c); a tail call keeps error levels.
function M.bind(kv)
  return function(fn, opts) return M.wrap(kv, fn, opts) end
end

return M
