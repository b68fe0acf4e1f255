-- 32-kv_spec.lua — require "luasmtpd.kv" in hooks of the real binary: every
-- call on LMDB and on a real redis-server (peers.redis), TTL expiry, LMDB
-- state across a restart, two luasmtpd instances on one Redis sharing a
-- counter, an NX key, a GCRA limit and a memoized value, Redis down (nil,
-- "unavailable" at once; the hook decides), a session that goes while a
-- call waits on a paused Redis, misuse, and the `kv` setting's checks.
--
-- The config's rcpt hook runs the call that the recipient's local part
-- names, "op+arg+arg@example.test", and answers 250 with "R <results>": the
-- call's return values joined with ",".  Keys carry a per-run tag, so runs
-- never see each other's state in a Redis.

local socket = require "socket"
local H = require "spec.helpers"
local peers = require "spec.support.peers"

local TAG = ("t%d%d"):format(os.time() % 100000, math.random(1000, 9999))
local WAIT = 10 -- seconds, for every bounded wait

local config = [[
local smtp = require "luasmtpd"
listen = smtp.var("listen")
spool = smtp.var("spool")
hostname = "mx.example.test"
timeouts = { hook = 20 }
local redis = smtp.var("redis", "")
if redis ~= "" then
  kv = { backend = "redis", redis = redis, prefix = "spec:", command_timeout = 3,
         connect_timeout = 1 }
end
local kv = require "luasmtpd.kv"

local function show(...)
  local out = {}
  for i = 1, select("#", ...) do out[i] = tostring((select(i, ...))) end
  return table.concat(out, ",")
end

local memo_calls = 0
local memo = kv.memoize(function(k)
  memo_calls = memo_calls + 1
  return { value = k .. "-v", n = memo_calls }
end, { ttl = 60, prefix = "memo:" })

local ops = {}
function ops.get(k) return kv.get(k) end
function ops.set(k, v, ttl, nx)
  ttl = tonumber(ttl)
  return kv.set(k, v, { ttl = ttl ~= 0 and ttl or nil, nx = nx == "nx" or nil })
end
function ops.incr(k, d, ttl) return kv.incr(k, tonumber(d), { ttl = tonumber(ttl) }) end
function ops.del(k) return kv.del(k) end
function ops.limit(k, rate, burst, cost)
  return kv.limit(k, { rate = tonumber(rate), burst = tonumber(burst), cost = tonumber(cost) })
end
function ops.memo(k)
  local t = memo(k)
  return t.value, memo_calls
end
function ops.all(k)
  return smtp.all(function() return kv.incr(k) end, function() return kv.set(k .. "x", "1") end,
    function() return kv.get(k .. "none") end)
end
function ops.backend() return kv.backend() end
function ops.badkey() return kv.get(42) end
function ops.badopt(k) return kv.set(k, "v", { ttl = 1, tll = 2 }) end
function ops.nolimit(k) return kv.limit(k, { burst = 2 }) end

function hooks.rcpt(s, rcpt)
  local lp = rcpt:match("^([^@]+)@")
  local parts = {}
  for p in lp:gmatch("[^+]+") do parts[#parts + 1] = p end
  local op = table.remove(parts, 1)
  if op == "guard" then
    local n, err = kv.incr(parts[1])
    if not n then return smtp.tempfail(451, "4.3.0", "kv " .. err) end
    return smtp.accept("R " .. n)
  end
  return smtp.accept("R " .. show(ops[op](unpack(parts))))
end
]]

-- One RCPT that runs op on srv: the results after "R ", or nil, code, text.
local function call(srv, op)
  local c = H.session(srv.port, { rcpts = {} })
  c:send("RCPT TO:<" .. op .. "@example.test>\r\n")
  local code, text = c:reply()
  c:cmd("QUIT", 221)
  c:close()
  local r = text and text:match(" R (.*)$")
  if code == 250 and r then return r end
  return nil, code, text
end

local function must(srv, op)
  local r, code, text = call(srv, op)
  assert(r, ("%s: got %s %s\n--- log:\n%s"):format(op, tostring(code), tostring(text),
    srv:log()))
  return r
end

local function k(name) return TAG .. "-" .. name end

-- Poll op until it answers want (bounded).
local function wait_answer(srv, op, want)
  local last
  H.wait_for(function()
    last = call(srv, op)
    return last == want
  end, WAIT, op .. " -> " .. want .. " (last: " .. tostring(last) .. ")")
end

-- ---- every call, on each backend ----

local backends = {
  lmdb = function() return {} end,
  redis = function(ctx)
    ctx.redis = peers.redis{}
    return { redis = "127.0.0.1:" .. ctx.redis.port }
  end,
}

for _, name in ipairs{ "lmdb", "redis" } do
  describe("luasmtpd.kv on " .. name .. " #e2e #kv", function()
    local ctx, srv = {}, nil
    lazy_setup(function()
      srv = H.start_server{ config = config, defines = backends[name](ctx) }
    end)
    lazy_teardown(function()
      if srv then srv:stop() end
      if ctx.redis then ctx.redis:stop() end
    end)

    it("opens the " .. name .. " store at start", function()
      assert.equals(name, must(srv, "backend"))
      assert.truthy(srv:log():find("kv opened backend=" .. name, 1, true))
    end)

    it("gets nil (and no error) for an absent key", function()
      assert.equals("nil", must(srv, "get+" .. k("absent")))
    end)

    it("sets and gets a value", function()
      assert.equals("true", must(srv, "set+" .. k("a") .. "+hello"))
      assert.equals("hello", must(srv, "get+" .. k("a")))
    end)

    it("sets NX only when the key is absent, and returns what is there", function()
      assert.equals("true", must(srv, "set+" .. k("nx") .. "+first+0+nx"))
      assert.equals("false,first", must(srv, "set+" .. k("nx") .. "+second+0+nx"))
      assert.equals("first", must(srv, "get+" .. k("nx")))
    end)

    it("increments by one, by a delta, and below zero", function()
      assert.equals("1", must(srv, "incr+" .. k("n")))
      assert.equals("11", must(srv, "incr+" .. k("n") .. "+10"))
      assert.equals("-9", must(srv, "incr+" .. k("n") .. "+-20"))
      assert.equals("-9", must(srv, "get+" .. k("n")))
    end)

    it("returns nil, \"error\" and why for incr on a value that is not a number", function()
      must(srv, "set+" .. k("text") .. "+abc")
      local r = must(srv, "incr+" .. k("text"))
      assert.matches("^nil,error,", r)
    end)

    it("deletes: true when a key was removed, false when absent", function()
      must(srv, "set+" .. k("d") .. "+x")
      assert.equals("true", must(srv, "del+" .. k("d")))
      assert.equals("false", must(srv, "del+" .. k("d")))
      assert.equals("nil", must(srv, "get+" .. k("d")))
    end)

    it("limits with GCRA: a burst, then refusals with a retry_after", function()
      local key = k("gcra")
      -- 1 per 1000 s, burst 2: two now, then nothing for a long while.
      assert.equals("true,0,1", must(srv, "limit+" .. key .. "+0.001+2"))
      assert.equals("true,0,0", must(srv, "limit+" .. key .. "+0.001+2"))
      local allowed, retry, left = must(srv, "limit+" .. key .. "+0.001+2"):match(
        "^(%a+),([%d.e+]+),(%d+)$")
      assert.equals("false", allowed)
      assert.is_true(tonumber(retry) > 900 and tonumber(retry) <= 1000, retry)
      assert.equals("0", left)
      -- cost 0 only asks: nothing is left
      assert.matches(",0$", must(srv, "limit+" .. key .. "+0.001+2+0"))
    end)

    it("expires a value set with a TTL", function()
      assert.equals("true", must(srv, "set+" .. k("ttl") .. "+v+1"))
      assert.equals("v", must(srv, "get+" .. k("ttl")))
      wait_answer(srv, "get+" .. k("ttl"), "nil")
    end)

    it("sets incr's TTL when it creates the counter (a fixed window)", function()
      assert.equals("1", must(srv, "incr+" .. k("win") .. "+1+1"))
      assert.equals("2", must(srv, "incr+" .. k("win") .. "+1+1"))
      wait_answer(srv, "get+" .. k("win"), "nil")
      assert.equals("1", must(srv, "incr+" .. k("win") .. "+1+1"))
    end)

    it("runs calls in parallel inside smtp.all", function()
      assert.equals("1,true,nil", must(srv, "all+" .. k("par")))
      assert.equals("2,true,nil", must(srv, "all+" .. k("par")))
    end)

    it("memoize calls the function once for a repeated key", function()
      local first = must(srv, "memo+" .. k("m1"))
      local calls = tonumber(first:match(",(%d+)$"))
      assert.equals(k("m1") .. "-v," .. calls, first)
      assert.equals(k("m1") .. "-v," .. calls, must(srv, "memo+" .. k("m1")))
      assert.equals(k("m2") .. "-v," .. (calls + 1), must(srv, "memo+" .. k("m2")))
      assert.equals(k("m1") .. "-v," .. (calls + 1), must(srv, "memo+" .. k("m1")))
    end)

    local misuse = {
      { "badkey", "the key must be a string" },
      { "badopt+" .. k("o"), "unknown option 'tll'" },
      { "nolimit+" .. k("o"), "rate must be" },
    }
    for _, case in ipairs(misuse) do
      it("raises on misuse: " .. case[2] .. " (451, the hook's error in the log)", function()
        local r, code = call(srv, case[1])
        assert.is_nil(r)
        assert.equals(451, code)
        srv:wait_log((case[2]:gsub("%p", "%%%0")))
      end)
    end
  end)
end

-- ---- LMDB across a restart ----

describe("luasmtpd.kv on LMDB across a restart #e2e #kv", function()
  it("keeps its state when the server stops and starts again", function()
    local dir = H.tmpdir()
    local srv = H.start_server{ config = config, dir = dir }
    assert.equals("true", must(srv, "set+persist+kept"))
    assert.equals("1", must(srv, "incr+persist-n"))
    srv:stop()
    assert.truthy(H.read_file(dir .. "/spool/kv/data.mdb"), "no LMDB under the spool")
    srv = H.start_server{ config = config, dir = dir }
    assert.equals("kept", must(srv, "get+persist"))
    assert.equals("2", must(srv, "incr+persist-n"))
    srv:stop()
  end)
end)

-- ---- two nodes on one Redis ----

describe("two luasmtpd instances on one Redis #e2e #kv", function()
  local redis, a, b
  lazy_setup(function()
    redis = peers.redis{}
    local d = { redis = "127.0.0.1:" .. redis.port }
    a = H.start_server{ config = config, defines = d }
    b = H.start_server{ config = config, defines = d }
  end)
  lazy_teardown(function()
    if a then a:stop() end
    if b then b:stop() end
    if redis then redis:stop() end
  end)

  it("share a counter", function()
    assert.equals("1", must(a, "incr+" .. k("shared")))
    assert.equals("2", must(b, "incr+" .. k("shared")))
    assert.equals("3", must(a, "incr+" .. k("shared")))
    assert.equals("3", must(b, "get+" .. k("shared")))
  end)

  it("share an NX key: only the first node sets it", function()
    assert.equals("true", must(b, "set+" .. k("once") .. "+node-b+0+nx"))
    assert.equals("false,node-b", must(a, "set+" .. k("once") .. "+node-a+0+nx"))
  end)

  it("share a rate limit: it counts across both", function()
    local op = "limit+" .. k("rl") .. "+0.001+3"
    assert.matches("^true,", must(a, op))
    assert.matches("^true,", must(b, op))
    assert.matches("^true,", must(a, op))
    assert.matches("^false,", must(b, op))
    assert.matches("^false,", must(a, op))
  end)

  it("share memoized values: node b is served from node a's call", function()
    local first = must(a, "memo+" .. k("shm"))
    assert.equals(k("shm") .. "-v,", first:match("^(.*,)%d+$"))
    assert.equals(k("shm") .. "-v,0", must(b, "memo+" .. k("shm")))
  end)

  it("keep their keys under the configured prefix in Redis", function()
    assert.equals("3", redis:cmd("GET", "spec:" .. k("shared")))
  end)
end)

-- ---- Redis down, and a session that goes while a call waits ----

describe("luasmtpd.kv when Redis fails #e2e #kv", function()
  local redis, srv
  lazy_setup(function()
    redis = peers.redis{}
    srv = H.start_server{ config = config, defines = { redis = "127.0.0.1:" .. redis.port } }
  end)
  lazy_teardown(function()
    if srv then srv:stop() end
    if redis then
      H.sh("kill -CONT " .. redis.pid)
      redis:stop()
    end
  end)

  it("drops a pending call when its client leaves (paused Redis), and goes on", function()
    assert.equals("1", must(srv, "incr+" .. k("pause")))
    assert(select(2, H.sh("kill -STOP " .. redis.pid)) == 0)
    local c = H.session(srv.port, { rcpts = {} })
    c:send("RCPT TO:<get+" .. k("pause") .. "@example.test>\r\n")
    -- The hook waits on Redis; the client goes.
    socket.sleep(0.2)
    c:close()
    srv:wait_log("client%-gone while=rcpt", WAIT)
    assert(select(2, H.sh("kill -CONT " .. redis.pid)) == 0)
    assert.truthy(srv:alive())
    -- The connection was dropped after command_timeout and made anew.
    wait_answer(srv, "get+" .. k("pause"), "1")
  end)

  it("returns nil, \"unavailable\" at once when Redis is down, and the hook decides", function()
    local port = redis.port
    redis:stop()
    local t0 = socket.gettime()
    local c = H.session(srv.port, { rcpts = {} })
    c:cmd("RCPT TO:<guard+" .. k("down") .. "@example.test>", 451, "kv unavailable")
    -- No hang: well before kv.command_timeout (3 s); the session goes on.
    assert.is_true(socket.gettime() - t0 < 3, "took " .. (socket.gettime() - t0))
    c:cmd("NOOP", 250)
    c:cmd("QUIT", 221)
    c:close()
    -- Back when Redis is: the store reconnects by itself.
    redis = peers.redis{ port = port }
    wait_answer(srv, "guard+" .. k("down"), "1")
  end)

  it("starts while its Redis is down, and answers unavailable", function()
    local dead = H.start_server{ config = config,
      defines = { redis = "127.0.0.1:" .. peers.free_port() } }
    local r, code, text = call(dead, "guard+" .. k("never"))
    dead:stop()
    assert.is_nil(r)
    assert.equals(451, code)
    assert.matches("kv unavailable", text)
  end)
end)

-- ---- where the store can be used, and the `kv` setting ----

local function check_config(body)
  local dir = H.tmpdir()
  local path = dir .. "/conf.lua"
  H.write_file(path, 'listen = "127.0.0.1:0"\n' .. body)
  local out, rc = H.sh(H.q(H.binary) .. " -t -c " .. H.q(path))
  return out, rc, path
end

describe("the kv setting #e2e #kv", function()
  local bad = {
    { 'kv = { backend = "mysql" }', 'kv.backend must be "lmdb" or "redis"' },
    { 'kv = { bakend = "lmdb" }', "unknown setting kv.bakend" },
    { 'kv = { backend = "redis", redis = "redis.example:6379" }', "must be an IP address" },
    { 'kv = { redis = "127.0.0.1:0" }', "bad port" },
    { 'kv = { redis = "unix:relative.sock" }', "absolute path" },
    { 'kv = { backend = "lmdb", redis = "127.0.0.1:6379" }', 'kv.redis does not apply to backend = "lmdb"' },
    { 'kv = { backend = "redis", path = "/tmp/x" }', 'kv.path does not apply to backend = "redis"' },
    { 'kv = { redis = "127.0.0.1:6379", db = -1 }', "kv.db must be a whole number" },
    { 'kv = { redis = "127.0.0.1:6379", command_timeout = 0 }', "kv.command_timeout must be from" },
    { 'kv = { redis = "127.0.0.1:6379", prefix = string.rep("p", 65) }', "kv.prefix must be 0 to 64 bytes" },
    { 'kv = { map_size = 1000 }', "kv.map_size must be a whole number" },
    { 'kv = { path = 5 }', "kv.path must be a string" },
    { 'kv = "lmdb"', "kv must be a table" },
  }
  for _, case in ipairs(bad) do
    it("-t fails with file:line on " .. case[1], function()
      local out, rc, path = check_config("\n" .. case[1] .. "\n")
      assert.equals(1, rc, out)
      assert.truthy(out:find(path .. ":3: ", 1, true), out)
      assert.truthy(out:find(case[2], 1, true), out)
    end)
  end

  it("-t passes a good Redis setting without connecting to it", function()
    local out, rc = check_config('kv = { backend = "redis", redis = "127.0.0.1:1", ' ..
      'password = "pw", db = 3, prefix = "", connect_timeout = 0.5 }\n')
    assert.equals(0, rc, out)
  end)

  it("refuses to start when the LMDB directory cannot be made", function()
    local dir = H.tmpdir()
    local path = dir .. "/conf.lua"
    H.write_file(path, 'listen = "127.0.0.1:0"\nspool = "' .. dir .. '/spool"\n' ..
      'kv = { path = "/proc/luasmtpd-kv" }\n')
    local out, rc = H.sh("timeout 5 " .. H.q(H.binary) .. " -c " .. H.q(path))
    assert.equals(1, rc, out)
    assert.truthy(out:find("kv open-failed", 1, true), out)
    assert.is_nil(out:find("main started", 1, true), out)
  end)

  it("raises when called at load time (outside a hook)", function()
    local out, rc = check_config('local kv = require "luasmtpd.kv"\nkv.get("x")\n')
    assert.equals(1, rc, out)
    assert.truthy(out:find("kv.get: only inside a hook", 1, true), out)
  end)

  it("raises in a hook when the config never asked for a store", function()
    local srv = H.start_server{ config = [[
local smtp = require "luasmtpd"
listen = smtp.var("listen")
spool = smtp.var("spool")
function hooks.rcpt(s, rcpt) return smtp.accept(tostring(require("luasmtpd.kv").get("k"))) end
]] }
    local c = H.session(srv.port, { rcpts = {} })
    c:cmd("RCPT TO:<x@example.test>", 451, "4%.3%.0")
    c:close()
    srv:wait_log("no key%-value store")
    srv:stop()
    assert.is_nil(H.read_file(srv.dir .. "/spool/kv/data.mdb"))
  end)
end)
