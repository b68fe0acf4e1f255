-- luasmtpd.policy — what the ready policies (lua/luasmtpd/policy/*.lua)
-- share: option checks, the client's address and network, CIDR sets,
-- rate strings, per-session caches and header tags.
--
-- A ready policy is made once when the config loads and called from a
-- hook: check(s, ...) -> a verdict, or nil for "no opinion, go on".  So
-- policies chain with `or` and the hook decides what is left:
--
--   function hooks.rcpt(s, rcpt)
--     return deny(s, rcpt) or bl(s) or grey(s, rcpt) or smtp.accept()
--   end
--
-- Options every policy takes:
--   ip          function(s) -> the address to judge (default s.remote_ip);
--               for a front end that hands over the client's address
--               another way, and for tests that judge documentation
--               addresses from a loopback client
--   exempt      function(s, ...) -> truthy: no opinion for this call (an
--               allow list from luasmtpd.policy.lists fits)
--   exempt_auth true: no opinion for an authenticated client (s.auth)
--
-- Helpers (pure unless noted):
--   policy.options(opts, spec, what)   checks a policy's options (raises)
--   policy.parse_ip(text)              -> 4 or 16 bytes (IPv4-mapped IPv6
--                                         gives 4), or nil
--   policy.parse_cidr(text)            -> bytes, prefix length | nil, err
--   policy.cidr_set(list)              -> a set of networks (raises on a
--                                         bad entry); set:match(ip) -> entry
--   policy.network(ip, v4len, v6len)   -> "192.0.2.0/24" | nil
--   policy.parse_rate("100/1h")        -> 100, 3600 | nil, err
--   policy.printable(text, max)        -> text cut to max bytes, bytes
--                                         outside 0x20..0x7e made "?"
--   policy.lower(text)                 ASCII lower case only (no locale)
--   policy.client_ip(s, opts), policy.exempt(s, opts, ...)
--   policy.cached(s, key, sub, fn)     fn()'s first result, once per
--                                      session and sub (fn may yield)
--   policy.tag(s, key, name, value)    s.tx:add_header once per transaction
--   policy.now()                       smtp.now(), or os.time() at load
--   policy.at_load(what, where, level, fn, ...)   fn(...) at load, its
--                                      error raised at the config line
-- Option validators for policy.options: one_of(...), positive(whole, max),
-- text(max), code(class), ecode(class).

local smtp = require "luasmtpd"
local bit = require "bit"

local M = {}

-- Every policy's reply text goes through printable(): a reply line holds
-- at most 400 bytes of text (SMTP_REPLY_TEXT_MAX), CR/LF never.
M.REPLY_TEXT_MAX = 400

-- ---- options ----------------------------------------------------------

local COMMON = { ip = "function", exempt = "function", exempt_auth = "boolean" }

-- spec: name -> a type name, or a function(value) -> true | nil, why.
-- Raises at the caller of the policy's new() (level 3): a config line.
function M.options(opts, spec, what)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    error(what .. ": options must be a table", 3)
  end
  for k, v in pairs(opts) do
    local want = spec[k] or COMMON[k]
    if want == nil then
      error(("%s: unknown option '%s'"):format(what, tostring(k)), 3)
    end
    if type(want) == "function" then
      local ok, why = want(v)
      if not ok then error(("%s: %s %s"):format(what, k, why), 3) end
    elseif type(v) ~= want then
      error(("%s: %s must be a %s, not a %s"):format(what, k, want, type(v)), 3)
    end
  end
  return opts
end

-- A validator for options whose value is one of a few strings.
function M.one_of(...)
  local ok = {}
  for _, v in ipairs{ ... } do ok[v] = true end
  local list = table.concat({ ... }, ", ")
  return function(v)
    if ok[v] then return true end
    return nil, "must be one of " .. list
  end
end

-- The longest TTL luasmtpd.kv takes (KV_TTL_MAX): ten years.
M.TTL_MAX = 10 * 366 * 24 * 3600

-- A validator for a positive number, whole when whole is set, at most max.
function M.positive(whole, max)
  return function(v)
    if type(v) ~= "number" or v <= 0 or v ~= v or v > (max or math.huge)
        or v == math.huge or (whole and v ~= math.floor(v)) then
      return nil, "must be a positive " .. (whole and "whole " or "") .. "number" ..
        (max and (" up to %d"):format(max) or "")
    end
    return true
  end
end

-- A validator for a string of 1 to max bytes (parts of kv keys: a key is
-- at most 1024 bytes, kv.KEY_MAX).
function M.text(max)
  return function(v)
    if type(v) == "string" and #v >= 1 and #v <= max then return true end
    return nil, ("must be a string of 1 to %d bytes"):format(max)
  end
end

-- Validators for a reply code and an enhanced code of a class (4 or 5):
-- a bad one would only raise when the verdict is made, in a hook.
function M.code(class)
  return function(v)
    if type(v) == "number" and v >= class * 100 and v <= class * 100 + 99
        and v == math.floor(v) then
      return true
    end
    return nil, ("must be a %dxx code"):format(class)
  end
end

function M.ecode(class)
  return function(v)
    if type(v) == "string" and v:match("^" .. class .. "%.%d%d?%d?%.%d%d?%d?$") then
      return true
    end
    return nil, ("must be an enhanced code %d.x.x"):format(class)
  end
end

-- Calls fn(...) at config load; an error it raises (a verdict constructor
-- refusing a code or text) is raised again as "what: where: why" at the
-- config line that made the policy (level counts from the caller).
function M.at_load(what, where, level, fn, ...)
  local ok, err = pcall(fn, ...)
  if not ok then
    error(("%s: %s: %s"):format(what, where, (tostring(err):gsub("^[^:]*:%d+: ", ""))),
      level + 1)
  end
  return err
end

-- ---- text ---------------------------------------------------------------

function M.lower(s)
  return (s:gsub("[A-Z]", function(c) return string.char(c:byte() + 32) end))
end

function M.printable(s, max)
  s = tostring(s)
  if max and #s > max then s = s:sub(1, max) end
  return (s:gsub("[^\32-\126]", "?"))
end

-- ---- addresses ------------------------------------------------------------

local function parse_ipv4(s)
  local a, b, c, d = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return nil end
  local out = {}
  for i, part in ipairs{ a, b, c, d } do
    -- No leading zeros: "010" is octal to some parsers, decimal to others.
    if #part > 3 or (#part > 1 and part:sub(1, 1) == "0") then return nil end
    local n = tonumber(part)
    if n > 255 then return nil end
    out[i] = n
  end
  return string.char(out[1], out[2], out[3], out[4])
end

-- A list of 16-bit groups from "h:h:..." (no "::" inside), or nil.
local function groups(s, out)
  if s == "" then return out end
  for g in (s .. ":"):gmatch("([^:]*):") do
    if not g:match("^%x%x?%x?%x?$") then return nil end
    out[#out + 1] = tonumber(g, 16)
  end
  return out
end

local function parse_ipv6(s)
  if #s > 45 or not s:find(":", 1, true) then return nil end
  local v4
  local head = s:match("^(.*:)%d+%.%d+%.%d+%.%d+$")
  if head then
    v4 = parse_ipv4(s:sub(#head + 1))
    if not v4 then return nil end
    s = head .. "0:0"      -- two groups, replaced below
  end
  local left, right = s:match("^(.-)::(.*)$")
  local g
  if left then
    if right:find("::", 1, true) then return nil end
    local l, r = groups(left, {}), groups(right, {})
    if not l or not r or #l + #r > 7 then return nil end
    g = l
    for _ = 1, 8 - #l - #r do g[#g + 1] = 0 end
    for _, x in ipairs(r) do g[#g + 1] = x end
  else
    g = groups(s, {})
    if not g or #g ~= 8 then return nil end
  end
  local bytes = {}
  for i = 1, 8 do
    bytes[2 * i - 1] = bit.rshift(g[i], 8)
    bytes[2 * i] = bit.band(g[i], 0xff)
  end
  if v4 then
    for i = 1, 4 do bytes[12 + i] = v4:byte(i) end
  end
  return string.char(unpack(bytes))
end

local MAPPED = ("\0"):rep(10) .. "\255\255"

function M.parse_ip(s)
  if type(s) ~= "string" then return nil end
  local b = parse_ipv4(s) or parse_ipv6(s)
  if b and #b == 16 and b:sub(1, 12) == MAPPED then b = b:sub(13) end
  return b
end

-- The first len bits of bytes, the rest of the last byte cleared.
local function masked(bytes, len)
  local full = math.floor(len / 8)
  local rest = len % 8
  local out = bytes:sub(1, full)
  if rest > 0 then
    local keep = bit.band(bit.lshift(0xff, 8 - rest), 0xff)
    out = out .. string.char(bit.band(bytes:byte(full + 1), keep))
  end
  return out
end

function M.parse_cidr(s)
  if type(s) ~= "string" then return nil, "not a string" end
  local addr, len = s:match("^([^/]+)/(%d+)$")
  addr = addr or s
  local bytes = M.parse_ip(addr)
  if not bytes then return nil, "not an IP address or network" end
  local max = #bytes * 8
  if len then
    len = tonumber(len)
    -- ::ffff:a.b.c.d/n counts the 96 bits of the mapped prefix.
    if #bytes == 4 and addr:find(":", 1, true) then len = len - 96 end
    if len < 0 or len > max then return nil, "bad prefix length" end
  else
    len = max
  end
  return bytes, len
end

-- The text of a network (an address with the host bits cleared) and its
-- length: "192.0.2.0/24", "2001:db8:0:1:0:0:0:0/64".
local function net_text(bytes, len)
  local m = masked(bytes, len) .. ("\0"):rep(#bytes - math.ceil(len / 8))
  if #bytes == 4 then
    return ("%d.%d.%d.%d/%d"):format(m:byte(1), m:byte(2), m:byte(3), m:byte(4), len)
  end
  local g = {}
  for i = 1, 8 do g[i] = ("%x"):format(m:byte(2 * i - 1) * 256 + m:byte(2 * i)) end
  return table.concat(g, ":") .. "/" .. len
end

function M.network(ip, v4len, v6len)
  local bytes = M.parse_ip(ip)
  if not bytes then return nil end
  return net_text(bytes, #bytes == 4 and (v4len or 24) or (v6len or 64))
end

-- A set of networks: per family and prefix length, a hash of the masked
-- prefixes; a lookup costs one hash probe per distinct length.
local CidrSet = {}
CidrSet.__index = CidrSet

function M.cidr_set(list)
  local set = setmetatable({ [4] = { lens = {}, by = {} }, [16] = { lens = {}, by = {} },
    n = 0 }, CidrSet)
  for _, e in ipairs(list or {}) do
    local ok, err = set:add(e)
    if not ok then error(("%s: %s"):format(tostring(e), err), 3) end
  end
  return set
end

-- Adds "net/len" (or an address); returns true | nil, err.
function CidrSet:add(text)
  local bytes, len = M.parse_cidr(text)
  if not bytes then return nil, len end
  local fam = self[#bytes]
  local t = fam.by[len]
  if not t then
    t = {}
    fam.by[len] = t
    fam.lens[#fam.lens + 1] = len
    table.sort(fam.lens, function(a, b) return a > b end)   -- most specific first
  end
  local key = masked(bytes, len)
  if not t[key] then
    t[key] = net_text(bytes, len)
    self.n = self.n + 1
  end
  return true
end

-- The entry ("192.0.2.0/24") holding the address ip (text), or nil.
function CidrSet:match(ip)
  local bytes = M.parse_ip(ip)
  if not bytes then return nil end
  local fam = self[#bytes]
  for _, len in ipairs(fam.lens) do
    local hit = fam.by[len][masked(bytes, len)]
    if hit then return hit end
  end
  return nil
end

-- ---- rates -----------------------------------------------------------------

local UNITS = { s = 1, m = 60, h = 3600, d = 86400 }

-- "N/PERIOD": N a positive whole number, PERIOD seconds ("60"), or a
-- number and a unit ("30s", "5m", "1h", "1d"), or a unit ("h").
function M.parse_rate(s)
  if type(s) ~= "string" then return nil, "must be a string like \"100/1h\"" end
  local n, num, unit = s:match("^%s*(%d+)%s*/%s*(%d*%.?%d*)%s*([smhd]?)%s*$")
  n = tonumber(n)
  if not n or n < 1 then return nil, "must be N/PERIOD like \"100/1h\" or \"10/60\"" end
  if num == "" and unit == "" then return nil, "needs a period after /" end
  local count = num == "" and 1 or tonumber(num)
  if not count or count <= 0 then return nil, "needs a period above zero" end
  local period = count * (unit == "" and 1 or UNITS[unit])
  return n, period
end

-- ---- sessions -----------------------------------------------------------------

function M.client_ip(s, opts)
  if opts.ip then return opts.ip(s) end
  return s.remote_ip
end

function M.exempt(s, opts, ...)
  if opts.exempt_auth and s.auth then return true end
  return opts.exempt ~= nil and opts.exempt(s, ...) and true or false
end

function M.now()
  local t = smtp.now()
  if t == 0 then t = os.time() end
  return t
end

-- s.data[key] caches one value per sub (an address, a name): a policy
-- called in several hooks looks up once.  key is the policy's own table,
-- so two policies never share an entry.
function M.cached(s, key, sub, fn)
  local c = s.data[key]
  if c and c.sub == sub then return c.value end
  local v = fn()
  s.data[key] = { sub = sub, value = v }
  return v
end

-- Adds "name: value" to the current transaction once (a policy called at
-- MAIL and at each RCPT tags once).  False without a transaction.
function M.tag(s, key, name, value)
  local tx = s.tx
  if tx == nil then return false end
  local id = tx.id
  if s.data[key] == id then return true end
  tx:add_header(name, value)
  s.data[key] = id
  return true
end

return M
