-- privacy_spec.lua — the privacy building blocks (src/privacy) through their
-- C drivers, built under ASan, UBSan and LeakSanitizer by
-- `make build/test/test_sealed build/test/test_cms`:
--
--   test_sealed DIR   the sealed spool/queue file format: round trips, and
--                     every flipped byte, truncation, extension, reordered
--                     or swapped record and wrong key refused
--   test_cms DIR      S/MIME encryption to RSA and EC certificates, each
--                     result decrypted by `openssl cms -decrypt` to the
--                     exact original bytes; a 10 MB message in little
--                     memory; certificate errors
--
-- A driver prints "ok <name>" or "not ok <name>: <detail>" per case (spec/c/
-- unit.h), "# ..." notes, and "# done rc=N" last; each case becomes an `it`.
-- Output includes stderr, so a sanitizer report (LeakSanitizer runs at exit)
-- fails the run.  The drivers run once, when this file loads.  A missing
-- binary or openssl tool is a failure, never a skip.
local H = require "spec.helpers"

local BIN = H.root .. "/build/test/"

local SANITIZER_MARKS = {
  "runtime error:",
  "ERROR: AddressSanitizer",
  "ERROR: LeakSanitizer",
}

local function tail(s, n)
  if #s <= n then return s end
  return "..." .. s:sub(-n)
end

-- { output, status, notes, cases = { {name, ok, detail} } }
local function run(name, dir)
  local path = BIN .. name
  assert(H.read_file(path), path .. " is missing: build it with `make build/test/" .. name .. "`")
  local out, rc = H.sh(H.q(path) .. " " .. H.q(dir))
  local r = { output = out, status = rc, cases = {}, notes = {} }
  for line in (out .. "\n"):gmatch("(.-)\n") do
    local ok_name = line:match("^ok (.+)$")
    local bad, detail = line:match("^not ok ([^:]+): (.*)$")
    if ok_name then
      r.cases[#r.cases + 1] = { name = ok_name, ok = true }
    elseif bad or line:match("^not ok ") then
      r.cases[#r.cases + 1] = { name = bad or line:sub(8), ok = false, detail = detail or line }
    elseif line:match("^# ") then
      r.notes[#r.notes + 1] = line
    end
  end
  return r
end

local function report(label, name)
  local dir = H.tmpdir()
  local ok, r = pcall(run, name, dir)
  H.sh("rm -rf " .. H.q(dir))
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
  return r
end

describe("privacy building blocks #privacy", function()
  it("has the openssl command-line tool the CMS checks decrypt with", function()
    local out, rc = H.sh("openssl version")
    assert(rc == 0 and out:match("^OpenSSL 3%."), "openssl 3 is needed: " .. out)
  end)

  report("sealed files (AES-256-GCM records)", "test_sealed")

  local r = report("S/MIME encryption at rest (CMS)", "test_cms")
  it("reports the memory used for the 10 MB message", function()
    local note
    for _, n in ipairs(r.notes or {}) do
      if n:find("10 MB message", 1, true) then note = n end
    end
    assert(note, "no memory note in the driver output")
    local heap = tonumber(note:match("heap peak (%d+) bytes"))
    assert(heap and heap < 1024 * 1024, note)
  end)
end)
