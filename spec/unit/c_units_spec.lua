-- c_units_spec.lua — the C unit drivers of spec/c/, one `it` per case.
--
-- Each driver (built by `make build/test/<driver>` under ASan and UBSan)
-- prints one line per case, "ok <name>" or "not ok <name>: <detail>", and
-- exits 0 only if every case passed (spec/c/unit.h).  The drivers run once,
-- when this file loads; stderr is captured with stdout so that a sanitizer
-- report fails the run.  A missing binary is a failure, never a skip.

local DRIVERS = { "test_parse", "test_data", "test_reply" }

local source = debug.getinfo(1, "S").source
local root = source:match("^@(.*)/spec/unit/[^/]+$") or "."

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function tail(s, n)
  if #s <= n then
    return s
  end
  return "..." .. s:sub(-n)
end

-- Runs one driver; returns { path, missing, output, status, cases }.
local function run(driver)
  local r = { path = root .. "/build/test/" .. driver, cases = {} }
  local f = io.open(r.path, "rb")

  if not f then
    r.missing = true
    return r
  end
  f:close()
  -- LuaJIT's pipe:close() gives no exit status: the shell prints it last.
  local p = assert(io.popen("cd " .. shell_quote(root) .. " && " ..
    shell_quote(r.path) .. " 2>&1; echo \"__exit=$?\""))
  local output = p:read("*a")
  p:close()

  local lines = {}
  for line in (output .. "\n"):gmatch("(.-)\n") do
    local status = line:match("^__exit=(%d+)$")
    if status then
      r.status = tonumber(status)
    else
      lines[#lines + 1] = line
      local name = line:match("^ok (.+)$")
      if name then
        r.cases[#r.cases + 1] = { name = name, ok = true }
      else
        local bad, detail = line:match("^not ok ([^:]+): (.*)$")
        bad = bad or line:match("^not ok (.+)$")
        if bad then
          r.cases[#r.cases + 1] = { name = bad, ok = false,
            detail = detail or "(no detail)" }
        end
      end
    end
  end
  if lines[#lines] == "" then
    lines[#lines] = nil
  end
  r.output = table.concat(lines, "\n")
  return r
end

local SANITIZER_MARKS = {
  "runtime error:",
  "ERROR: AddressSanitizer",
  "ERROR: LeakSanitizer",
}

for _, driver in ipairs(DRIVERS) do
  local r = run(driver)

  describe("C unit driver " .. driver, function()
    if r.missing then
      it("is built", function()
        error(r.path .. " is missing: build it with `make build/test/" ..
          driver .. "` (the C unit cases did not run)", 0)
      end)
      return
    end

    it("exits 0 after at least one case", function()
      assert(#r.cases > 0, driver .. " printed no case line; output:\n" ..
        tail(r.output, 2000))
      assert(r.status == 0, driver .. " exited with status " ..
        tostring(r.status) .. "; output:\n" .. tail(r.output, 2000))
    end)

    it("has no sanitizer report", function()
      for _, mark in ipairs(SANITIZER_MARKS) do
        local at = r.output:find(mark, 1, true)
        if at then
          error(driver .. " output has a sanitizer report:\n" ..
            r.output:sub(math.max(1, at - 200), at + 1800), 0)
        end
      end
    end)

    for _, case in ipairs(r.cases) do
      it(case.name, function()
        assert(case.ok, case.detail)
      end)
    end
  end)
end
