-- spec/support/policy_fakes.lua — the server's Lua modules faked in plain
-- Lua, so the unit specs can run the ready policies
-- (lua/luasmtpd/policy/*.lua) without a server: a clock the spec sets,
-- verdicts as tables, a key-value store with TTLs and GCRA on that clock,
-- DNS and SPF answers from tables, sessions with transactions that record
-- their added headers.  The real modules are driven by
-- spec/e2e/60-policies_spec.lua.
--
--   local fakes = require "spec.support.policy_fakes"
--   local f = fakes.install()         -- inside insulate(): package.loaded
--   local grey = require "luasmtpd.policy.greylist"
--   f.clock = f.clock + 300
--   local s = f.session{ remote_ip = "192.0.2.1", sender = "a@b" }

local M = {}

local POLICY_MODULES = { "luasmtpd.policy", "luasmtpd.policy.dnsbl", "luasmtpd.policy.fcrdns",
  "luasmtpd.policy.helo", "luasmtpd.policy.lists", "luasmtpd.policy.greylist",
  "luasmtpd.policy.ratelimit", "luasmtpd.policy.spf" }

function M.install()
  local f = { clock = 1000000, logs = {}, calls = {}, hostname = "mx.example.test",
    dnsbl = {}, iprev = {}, helo = {}, spf = {}, store = {}, down = false }

  local function count(name) f.calls[name] = (f.calls[name] or 0) + 1 end

  local smtp = {}
  function smtp.now() return f.clock end
  function smtp.hostname() return f.hostname end
  function smtp.log(level, text) f.logs[#f.logs + 1] = level .. " " .. text end
  -- As src/lua/lua_core.c: the code in the kind's range, the enhanced
  -- code in its class, the text one bounded line.
  local function verdict(kind, def_code)
    return function(code, ecode, text)
      local c = code or def_code
      if math.floor(c / 100) ~= math.floor(def_code / 100) then
        error(kind .. ": reply code out of range", 2)
      end
      if ecode and ecode:sub(1, 1) ~= tostring(math.floor(c / 100)) then
        error(kind .. ": enhanced code does not match", 2)
      end
      if text and (#text > 400 or text:find("%c")) then error(kind .. ": bad text", 2) end
      return { kind = kind, code = c, ecode = ecode, text = text }
    end
  end
  smtp.reject = verdict("reject", 550)
  smtp.tempfail = verdict("tempfail", 451)
  smtp.accept = function() return { kind = "accept" } end
  function smtp.all(...)
    local out, n = {}, select("#", ...)
    for i = 1, n do out[i] = ((select(i, ...))()) end
    return unpack(out, 1, n)
  end

  -- The store: values with an expiry on f.clock.
  local kv = {}
  local function live(key)
    local e = f.store[key]
    if e and e.expires and e.expires <= f.clock then
      f.store[key] = nil
      return nil
    end
    return e
  end
  function kv.get(key)
    count("kv.get")
    if f.down then return nil, "unavailable" end
    local e = live(key)
    return e and e.value
  end
  function kv.set(key, value, opts)
    count("kv.set")
    if f.down then return nil, "unavailable" end
    opts = opts or {}
    local e = live(key)
    if opts.nx and e then return false, e.value end
    f.store[key] = { value = tostring(value), expires = opts.ttl and f.clock + opts.ttl }
    return true
  end
  function kv.incr(key, delta, opts)
    count("kv.incr")
    if f.down then return nil, "unavailable" end
    local e = live(key)
    local n = (e and tonumber(e.value) or 0) + (delta or 1)
    f.store[key] = { value = tostring(n), expires = e and e.expires or
      (opts and opts.ttl and f.clock + opts.ttl) }
    return n
  end
  -- GCRA as src/kv: burst at once, then one per 1/rate seconds.
  function kv.limit(key, o)
    count("kv.limit")
    if f.down then return nil, "unavailable" end
    local e = live(key)
    local step = 1 / o.rate
    local tat = math.max(e and tonumber(e.value) or f.clock, f.clock)
    local new_tat = tat + step * (o.cost or 1)
    local allow_at = new_tat - step * o.burst
    if f.clock < allow_at then return false, allow_at - f.clock, 0 end
    f.store[key] = { value = tostring(new_tat) }
    return true, 0, math.floor((step * o.burst - (new_tat - f.clock)) / step + 1e-9)
  end

  local dns = {}
  function dns.dnsbl(ip, zone)
    count("dns.dnsbl")
    local z = f.dnsbl[zone]
    if z == "servfail" then return nil, "servfail" end
    local hit = z and z[ip]
    if not hit then return false, { codes = {} } end
    return true, { codes = hit.codes or { "127.0.0.2" }, text = hit.text }
  end
  function dns.iprev(ip)
    count("dns.iprev")
    return f.iprev[ip] or { result = "permerror", names = {} }
  end
  function dns.helo_check(name, ip)
    count("dns.helo_check")
    local r = f.helo[name]
    if r == "servfail" then return nil, "servfail" end
    return r or { result = "match" }
  end

  local spf = {}
  function spf.check(o)
    count("spf.check")
    local r = f.spf[o.sender] or { result = "none" }
    local out = {}
    for k, v in pairs(r) do out[k] = v end
    out.header = out.header or ("Received-SPF: %s (fake) client-ip=%s;"):format(r.result, o.ip)
    return out
  end

  package.loaded["luasmtpd"] = smtp
  package.loaded["luasmtpd.kv"] = kv
  package.loaded["luasmtpd.dns"] = dns
  package.loaded["luasmtpd.spf"] = spf
  for _, m in ipairs(POLICY_MODULES) do package.loaded[m] = nil end

  -- A session: o.remote_ip, o.helo, o.auth, o.sender (then a transaction).
  function f.session(o)
    o = o or {}
    local s = { remote_ip = o.remote_ip or "192.0.2.1", helo = o.helo, auth = o.auth,
      local_ip = "127.0.0.1", data = {}, headers = {} }
    if o.sender then f.new_tx(s, o.sender) end
    return s
  end
  local txn = 0
  function f.new_tx(s, sender)
    txn = txn + 1
    s.tx = { id = "0000000000000001." .. txn, sender = sender }
    function s.tx.add_header(_, name, value)
      assert(not value:find("[%c]"), "a control character in a header value")
      s.headers[#s.headers + 1] = name .. ": " .. value
    end
  end
  return f
end

return M
