-- http_spec.lua — the HTTP client (src/http/) against nginx on 127.0.0.1.
--
-- nginx (spec/support/http_peer.lua) serves fixed answers on a plain and a
-- TLS port; the C driver build/test/test_http (ASan, UBSan, LeakSanitizer)
-- runs every case against it and prints "ok <name>" / "not ok <name>:
-- <detail>" lines, one `it` each (as spec/unit/c_units_spec.lua).  The
-- driver runs once, when this file loads; nginx is stopped right after, by
-- PID.  nginx's access log then shows whether the two sequential requests
-- of the reuse case went over one connection.  build/test/test_http_wire
-- needs no server of ours: it answers itself, with canned bytes, on
-- 127.0.0.1.
--
-- A missing driver or nginx is a failure, never a skip.

local H = require "spec.helpers"
local http_peer = require "spec.support.http_peer"

local DRIVER = H.root .. "/build/test/test_http"
local WIRE_DRIVER = H.root .. "/build/test/test_http_wire"
local SANITIZER_MARKS = {
  "runtime error:",
  "ERROR: AddressSanitizer",
  "ERROR: LeakSanitizer",
}

local function tail(s, n)
  if #s <= n then return s end
  return "..." .. s:sub(-n)
end

-- "ok <name>" / "not ok <name>: <detail>" lines -> cases; output text.
local function parse(output)
  local cases, lines = {}, {}
  for line in (output .. "\n"):gmatch("(.-)\n") do
    lines[#lines + 1] = line
    local name = line:match("^ok (.+)$")
    if name then
      cases[#cases + 1] = { name = name, ok = true }
    else
      local bad, detail = line:match("^not ok ([^:]+): (.*)$")
      bad = bad or line:match("^not ok (.+)$")
      if bad then
        cases[#cases + 1] = { name = bad, ok = false, detail = detail or "(no detail)" }
      end
    end
  end
  return cases, table.concat(lines, "\n")
end

local function missing(driver)
  local f = io.open(driver, "rb")
  if not f then
    return driver .. " is missing: build it with `make " .. driver:match("build/test/.*$") .. "`"
  end
  f:close()
end

-- Runs a driver with env (a string of NAME=value words); a result table.
local function run(driver, env)
  local r = {}
  -- The loops inside are bounded; `timeout` bounds the whole run too.
  local output, status = H.sh("cd " .. H.q(H.root) .. " && " .. (env or "") ..
    " timeout 120 " .. H.q(driver))
  r.status = status
  r.cases, r.output = parse(output)
  return r
end

-- test_http against a fresh nginx, stopped right after.
local function run_http()
  local why = missing(DRIVER)
  if why then return { missing = why } end
  local ok, web = pcall(http_peer.nginx, { timeout = 10 })
  if not ok then return { missing = "nginx did not start: " .. tostring(web) } end
  local token = ("t%d%d"):format(os.time(), math.random(1, 1e9))
  local r = run(DRIVER, ("HTTP_PORT=%d HTTPS_PORT=%d HTTP_CA=%s HTTP_TOKEN=%s"):format(
    web.port, web.tls_port, H.q(web.ca_file), token))
  r.token = token
  r.access_log = web:access_log()
  web:stop()
  return r
end

local function run_wire()
  local why = missing(WIRE_DRIVER)
  if why then return { missing = why } end
  return run(WIRE_DRIVER)
end

-- The its every driver gets: it ran, exited 0, no sanitizer report, cases.
local function driver_its(name, r)
  if r.missing then
    it("has its driver and its server", function() error(r.missing, 0) end)
    return false
  end

  it("exits 0 after its cases", function()
    assert(#r.cases > 0, name .. " printed no case line; output:\n" .. tail(r.output, 2000))
    assert(r.status == 0, name .. " exited with status " .. tostring(r.status) ..
      "; output:\n" .. tail(r.output, 3000))
  end)

  it("has no sanitizer report", function()
    for _, mark in ipairs(SANITIZER_MARKS) do
      local at = r.output:find(mark, 1, true)
      if at then
        error(name .. " output has a sanitizer report:\n" ..
          r.output:sub(math.max(1, at - 200), at + 2500), 0)
      end
    end
  end)

  for _, case in ipairs(r.cases) do
    it(case.name, function() assert(case.ok, case.detail) end)
  end
  return true
end

local r = run_http()
local wire = run_wire()

describe("HTTP client #http against nginx", function()
  if not driver_its("test_http", r) then return end

  it("sent the two reuse requests over one nginx connection", function()
    local seen = {}
    for conn, nreq, n in r.access_log:gmatch("(%d+) (%d+) /reuse%?n=(%d)&t=" .. r.token .. " 200") do
      seen[tonumber(n)] = { conn = conn, nreq = tonumber(nreq) }
    end
    assert(seen[1] and seen[2], "reuse requests not in the access log:\n" .. tail(r.access_log, 2000))
    assert.are.equal(seen[1].conn, seen[2].conn)
    assert.are.equal(seen[1].nreq + 1, seen[2].nreq)
  end)
end)

describe("HTTP client #http reading canned answers", function()
  driver_its("test_http_wire", wire)
end)
