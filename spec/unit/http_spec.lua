-- http_spec.lua — the HTTP client (src/http/) against nginx on 127.0.0.1.
--
-- nginx (spec/support/http_peer.lua) serves fixed answers on a plain and a
-- TLS port; the C driver build/test/test_http (ASan, UBSan, LeakSanitizer)
-- runs every case against it and prints "ok <name>" / "not ok <name>:
-- <detail>" lines, one `it` each (as spec/unit/c_units_spec.lua).  The
-- driver runs once, when this file loads; nginx is stopped right after, by
-- PID.  nginx's access log then shows whether the two sequential requests
-- of the reuse case went over one connection.
--
-- A missing driver or nginx is a failure, never a skip.

local H = require "spec.helpers"
local http_peer = require "spec.support.http_peer"

local DRIVER = H.root .. "/build/test/test_http"
local SANITIZER_MARKS = {
  "runtime error:",
  "ERROR: AddressSanitizer",
  "ERROR: LeakSanitizer",
}

local function tail(s, n)
  if #s <= n then return s end
  return "..." .. s:sub(-n)
end

-- Runs the driver against a fresh nginx; returns a result table.
local function run_driver()
  local r = { cases = {} }
  local f = io.open(DRIVER, "rb")
  if not f then
    r.missing = DRIVER .. " is missing: build it with `make build/test/test_http`"
    return r
  end
  f:close()
  local ok, web = pcall(http_peer.nginx, { timeout = 10 })
  if not ok then
    r.missing = "nginx did not start: " .. tostring(web)
    return r
  end
  r.token = ("t%d%d"):format(os.time(), math.random(1, 1e9))
  local env = ("HTTP_PORT=%d HTTPS_PORT=%d HTTP_CA=%s HTTP_TOKEN=%s"):format(
    web.port, web.tls_port, H.q(web.ca_file), r.token)
  -- The loops inside are bounded; `timeout` bounds the whole run too.
  local output, status = H.sh("cd " .. H.q(H.root) .. " && " .. env ..
    " timeout 120 " .. H.q(DRIVER))
  r.status = status
  r.access_log = web:access_log()
  web:stop()
  local lines = {}
  for line in (output .. "\n"):gmatch("(.-)\n") do
    lines[#lines + 1] = line
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
  r.output = table.concat(lines, "\n")
  return r
end

local r = run_driver()

describe("HTTP client #http against nginx", function()
  if r.missing then
    it("has its driver and its server", function() error(r.missing, 0) end)
    return
  end

  it("exits 0 after its cases", function()
    assert(#r.cases > 0, "test_http printed no case line; output:\n" .. tail(r.output, 2000))
    assert(r.status == 0, "test_http exited with status " .. tostring(r.status) ..
      "; output:\n" .. tail(r.output, 3000))
  end)

  it("has no sanitizer report", function()
    for _, mark in ipairs(SANITIZER_MARKS) do
      local at = r.output:find(mark, 1, true)
      if at then
        error("test_http output has a sanitizer report:\n" ..
          r.output:sub(math.max(1, at - 200), at + 2500), 0)
      end
    end
  end)

  for _, case in ipairs(r.cases) do
    it(case.name, function() assert(case.ok, case.detail) end)
  end

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
