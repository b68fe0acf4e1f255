-- spec/support/cdriver.lua — run a C driver of spec/c/ (spec/c/unit.h) and
-- turn its output into busted cases.
--
--   local cdriver = require "spec.support.cdriver"
--   cdriver.describe(describe, it, "C driver test_dns", "test_dns", function()
--     return dns_peer.env     -- environment for the driver ("" for none)
--   end, cleanup)
--
-- (busted's describe and it live in the spec file's environment: pass them.)
--
-- The driver (build/test/<name>, built by `make test`) prints "ok <case>"
-- or "not ok <case>: <detail>" per case and exits 0 only if all passed.  It
-- runs once, when the spec file loads, with stderr merged, so that a
-- sanitizer report fails the run.  setup() runs first and returns the
-- environment assignments; an error in it, a missing binary, no case line,
-- a non-zero exit or a sanitizer report each fail an `it`, never skip.

local H = require "spec.helpers"

local M = {}

local SANITIZER_MARKS = { "runtime error:", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer" }

local function tail(s, n)
  if #s <= n then return s end
  return "..." .. s:sub(-n)
end

-- { path, missing, output, status, cases = { {name, ok, detail} } }
function M.run(name, env, timeout)
  local r = { path = H.root .. "/build/test/" .. name, cases = {} }
  local f = io.open(r.path, "rb")
  if not f then r.missing = true; return r end
  f:close()
  local out = H.sh("cd " .. H.q(H.root) .. " && timeout " .. (timeout or 300) ..
    " env " .. (env or "") .. " " .. H.q(r.path) .. " 2>&1; echo \"__exit=$?\"")
  local lines = {}
  for line in (out .. "\n"):gmatch("(.-)\n") do
    local status = line:match("^__exit=(%d+)$")
    if status then
      r.status = tonumber(status)
    elseif line ~= "" then
      lines[#lines + 1] = line
      local ok_name = line:match("^ok (.+)$")
      if ok_name then
        r.cases[#r.cases + 1] = { name = ok_name, ok = true }
      else
        local bad, detail = line:match("^not ok ([^:]+): (.*)$")
        bad = bad or line:match("^not ok (.+)$")
        if bad then
          r.cases[#r.cases + 1] = { name = bad, ok = false, detail = detail or "(no detail)" }
        end
      end
    end
  end
  r.output = table.concat(lines, "\n")
  return r
end

-- A describe block for driver name: setup() -> env string; cleanup() after.
function M.describe(describe, it, title, name, setup, cleanup)
  local ok, env = pcall(setup)
  local r
  if ok then r = M.run(name, env) end
  if cleanup then pcall(cleanup) end

  describe(title, function()
    if not ok then
      it("has its peers", function() error(tostring(env), 0) end)
      return
    end
    if r.missing then
      it("is built", function()
        error(r.path .. " is missing: build it with `make build/test/" .. name .. "`", 0)
      end)
      return
    end
    it("exits 0 after at least one case", function()
      assert(#r.cases > 0, name .. " printed no case line; output:\n" .. tail(r.output, 2000))
      assert(r.status == 0, name .. " exited with status " .. tostring(r.status) ..
        "; output:\n" .. tail(r.output, 2000))
    end)
    it("has no sanitizer report", function()
      for _, mark in ipairs(SANITIZER_MARKS) do
        local at = r.output:find(mark, 1, true)
        if at then
          error(name .. " output has a sanitizer report:\n" ..
            r.output:sub(math.max(1, at - 200), at + 1800), 0)
        end
      end
    end)
    for _, case in ipairs(r.cases) do
      it(case.name, function() assert(case.ok, case.detail) end)
    end
  end)
end

return M
