-- kv_spec.lua — the key-value store (src/kv) through its C drivers, built
-- under ASan and UBSan by `make build/test/test_kv_lmdb build/test/test_kv_redis`:
--
--   test_kv_lmdb DIR                     LMDB in a temp dir
--   test_kv_redis live HOST:PORT SOCKET  a real redis-server (peers.redis)
--   test_kv_redis fake                   a fake Redis inside the driver
--   test_kv_redis outage HOST:PORT       this spec stops, restarts (same
--                                        port), pauses and resumes Redis
--                                        when the driver asks
--
-- A driver prints "ok <name>" or "not ok <name>: <detail>" per case (spec/c/
-- unit.h), "# ..." notes, and "# done rc=N" last; each case becomes an `it`.
-- Output includes stderr, so a sanitizer report (LeakSanitizer runs at exit)
-- fails the run.  The drivers run once, when this file loads.  A missing
-- binary or peer is a failure, never a skip.

local socket = require "socket"
local H = require "spec.helpers"
local peers = require "spec.support.peers"

local BIN = H.root .. "/build/test/"
local OUTAGE_TIMEOUT = 120 -- seconds for the whole outage driver

local SANITIZER_MARKS = {
  "runtime error:",
  "ERROR: AddressSanitizer",
  "ERROR: LeakSanitizer",
}

local function tail(s, n)
  if #s <= n then return s end
  return "..." .. s:sub(-n)
end

-- { output, status, cases = { {name, ok, detail} } } from a driver's output.
local function parse(output)
  local r = { output = output, cases = {} }
  for line in (output .. "\n"):gmatch("(.-)\n") do
    local rc = line:match("^# done rc=(%d+)$")
    if rc then r.status = tonumber(rc) end
    local name = line:match("^ok (.+)$")
    if name then
      r.cases[#r.cases + 1] = { name = name, ok = true }
    else
      local bad, detail = line:match("^not ok ([^:]+): (.*)$")
      bad = bad or line:match("^not ok (.+)$")
      if bad then
        r.cases[#r.cases + 1] = { name = bad, ok = false, detail = detail or "(no detail)" }
      end
    end
  end
  return r
end

local function driver(name)
  local path = BIN .. name
  local f = io.open(path, "rb")
  if not f then
    error(path .. " is missing: build it with `make " .. "build/test/" .. name .. "`", 0)
  end
  f:close()
  return path
end

-- Run a driver to its end.  Its status is its "# done rc=N" line and the
-- shell's exit status, which differ when LeakSanitizer fails the exit.
local function run(cmd)
  local out, rc = H.sh(cmd)
  local r = parse(out)
  if rc ~= 0 then r.status = rc end
  return r
end

-- Stop/start/pause/resume redis when the outage driver asks, by SIGUSR1.
local function run_outage(tmp)
  local bin = driver("test_kv_redis")
  local redis = peers.redis{}
  local port, paused = redis.port, false
  local log = tmp .. "/outage.log"
  local pid = H.spawn(H.q(bin) .. " outage 127.0.0.1:" .. port, log)
  local actions = {
    stop = function() redis:stop() end,
    start = function() redis = peers.redis{ port = port } end,
    pause = function() H.sh("kill -STOP " .. redis.pid); paused = true end,
    resume = function() H.sh("kill -CONT " .. redis.pid); paused = false end,
  }
  local answered, deadline = 0, socket.gettime() + OUTAGE_TIMEOUT
  local ok, err = pcall(function()
    while H.alive(pid) do
      if socket.gettime() > deadline then error("outage driver did not finish", 0) end
      local needs = {}
      for what in (H.read_file(log) or ""):gmatch("# need (%a+)\n") do
        needs[#needs + 1] = what
      end
      if #needs > answered then
        answered = answered + 1
        local act = actions[needs[answered]]
        if not act then error("driver asked for " .. needs[answered], 0) end
        act()
        H.sh("kill -USR1 " .. pid)
      end
      socket.sleep(0.05)
    end
  end)
  if H.alive(pid) then H.stop_pid(pid, "KILL") end
  if paused and redis.pid then H.sh("kill -CONT " .. redis.pid) end
  redis:stop()
  if not ok then error(err .. "\n--- driver output:\n" .. tail(H.read_file(log) or "", 3000), 0) end
  return parse(H.read_file(log) or "")
end

local function report(label, runner)
  local ok, r = pcall(runner)
  describe(label, function()
    if not ok then
      it("runs", function() error(r, 0) end)
      return
    end
    it("ends with rc=0 after at least one case", function()
      assert(#r.cases > 0, "no case line; output:\n" .. tail(r.output, 3000))
      assert(r.status == 0, "driver status " .. tostring(r.status) .. "; output:\n" ..
        tail(r.output, 3000))
    end)
    it("has no sanitizer report", function()
      for _, mark in ipairs(SANITIZER_MARKS) do
        local at = r.output:find(mark, 1, true)
        if at then
          error("sanitizer report:\n" .. r.output:sub(math.max(1, at - 200), at + 2500), 0)
        end
      end
    end)
    for _, case in ipairs(r.cases) do
      it(case.name, function() assert(case.ok, case.detail) end)
    end
  end)
end

local tmp = H.tmpdir()

describe("kv store #kv", function()
  report("on LMDB", function()
    return run(H.q(driver("test_kv_lmdb")) .. " " .. H.q(tmp))
  end)

  report("on a real Redis", function()
    local bin = driver("test_kv_redis")
    local redis = peers.redis{ unix = true }
    local ok, r = pcall(run, H.q(bin) .. " live 127.0.0.1:" .. redis.port .. " " ..
      H.q(redis.socket))
    redis:stop()
    if not ok then error(r, 0) end
    return r
  end)

  report("on a fake Redis (wrong replies, silence)", function()
    return run(H.q(driver("test_kv_redis")) .. " fake")
  end)

  report("when Redis stops, comes back, hangs", function()
    return run_outage(tmp)
  end)
end)

H.sh("rm -rf " .. H.q(tmp))
