-- faultinject_spec.lua — the LD_PRELOAD fault-injection shim
-- (spec/fixtures/faultinject/faultinject.c) on a small C program,
-- spec/fixtures/faultinject/probe.c, that runs the calls named on its
-- command line and prints "<call> ok" or "<call> <ERRNO>" for each.
-- spec/e2e/22-faultinject_spec.lua uses the shim with the real server.
local H = require "spec.helpers"

local SHIM = H.faultinject
local PROBE = H.root .. "/build/test/faultinject-probe"
local PROBE_ASAN = H.root .. "/build/test/faultinject-probe-asan"

-- Runs the probe with the shim and these rules; returns its output lines
-- (stdout and stderr) and exit status.  opts.env: extra "K=V" words;
-- opts.preload: LD_PRELOAD instead of the shim alone; opts.probe.
local function probe(dir, rules, steps, opts)
  opts = opts or {}
  local faults = dir .. "/faults"
  if rules then H.set_faults(faults, rules) end
  local cmd = { "env", "LD_PRELOAD=" .. H.q(opts.preload or SHIM),
    "LUASMTPD_FAULTS_FILE=" .. H.q(faults) }
  for _, e in ipairs(opts.env or {}) do cmd[#cmd + 1] = e end
  cmd[#cmd + 1] = H.q(opts.probe or PROBE)
  for _, s in ipairs(steps) do cmd[#cmd + 1] = H.q(s) end
  local out, rc = H.sh("timeout 20 " .. table.concat(cmd, " "))
  local lines = {}
  for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
  return lines, rc, out
end

local function fresh()
  local dir = H.tmpdir()
  H.sh("mkdir -p " .. H.q(dir .. "/spool") .. " " .. H.q(dir .. "/other"))
  return dir
end

describe("faultinject.so", function()
  it("is built with its probe programs", function()
    for _, f in ipairs({ SHIM, PROBE, PROBE_ASAN }) do
      assert(H.read_file(f), f .. " is missing: make " .. f:gsub("^.*/build/", "build/"))
    end
  end)

  it("changes nothing without a rules file", function()
    local dir = fresh()
    local f = dir .. "/spool/a"
    local lines, rc = probe(dir, nil, { "open", f, "write", "fsync", "fdatasync",
      "ftruncate", "close", "rename", f, f .. "2", "unlink", f .. "2" })
    assert.equals(0, rc)
    assert.same({ "open ok", "write ok", "fsync ok", "fdatasync ok", "ftruncate ok",
      "close ok", "rename ok", "unlink ok" }, lines)
  end)

  it("fails fsync on a matching path with EIO on the 2nd call only", function()
    local dir = fresh()
    local lines = probe(dir, "fsync /spool/ EIO 2\n", { "open", dir .. "/other/x",
      "fsync", "fsync", "open", dir .. "/spool/a", "fsync", "fsync", "fsync", "fsync" })
    assert.same({ "open ok", "fsync ok", "fsync ok", "open ok",
      "fsync ok", "fsync EIO", "fsync ok", "fsync ok" }, lines)
  end)

  it("fails every write, pwrite and writev with ENOSPC when NTH is 0", function()
    local dir = fresh()
    local lines = probe(dir, "write /spool/ ENOSPC 0\n", { "open", dir .. "/spool/a",
      "write", "pwrite", "writev", "write", "fsync", "open", dir .. "/other/b", "write" })
    assert.same({ "open ok", "write ENOSPC", "pwrite ENOSPC", "writev ENOSPC",
      "write ENOSPC", "fsync ok", "open ok", "write ok" }, lines)
    assert.equals("", H.read_file(dir .. "/spool/a"))
  end)

  it("fails open and openat (a relative name under its directory)", function()
    local dir = fresh()
    local lines = probe(dir, "open /spool/q EMFILE 0\nopen /other/ EACCES 2\n",
      { "open", dir .. "/spool/q1", "openat", dir .. "/spool", "q2",
        "openat", dir .. "/spool", "r", "open", dir .. "/other/1",
        "open", dir .. "/other/2", "open", dir .. "/other/3" })
    assert.same({ "open EMFILE", "openat EMFILE", "openat ok", "open ok",
      "open EACCES", "open ok" }, lines)
    assert.is_nil(H.read_file(dir .. "/spool/q1"))
  end)

  it("matches rename and link on either path; unlink, mkdir, ftruncate, fdatasync", function()
    local dir = fresh()
    local a, q = dir .. "/other/a", dir .. "/spool/a"
    local lines = probe(dir, table.concat({
      "rename /spool/ EDQUOT 1", "link /spool/ EIO 0", "unlink /spool/ EACCES 0",
      "mkdir /spool/ ENOSPC 0", "ftruncate /spool/ EIO 0", "fdatasync /spool/ EIO 0",
      "" }, "\n"), { "open", a, "close",
        "rename", a, q,          -- to a matching path: EDQUOT
        "rename", a, q,          -- the rule's 1st call is spent
        "link", q, a,            -- from a matching path
        "unlink", q, "mkdir", dir .. "/spool/d", "mkdir", dir .. "/other/d",
        "open", q, "ftruncate", "fdatasync", "fsync" })
    assert.same({ "open ok", "close ok", "rename EDQUOT", "rename ok", "link EIO",
      "unlink EACCES", "mkdir ENOSPC", "mkdir ok", "open ok", "ftruncate EIO",
      "fdatasync EIO", "fsync ok" }, lines)
  end)

  it("re-reads the rules when the file changes, and a removed file disarms", function()
    local dir = fresh()
    local faults, out = dir .. "/faults", dir .. "/probe.out"
    H.set_faults(faults, "fsync /other/ EIO 0\n")
    local pid = H.spawn(table.concat({ "env", "LD_PRELOAD=" .. H.q(SHIM),
      "LUASMTPD_FAULTS_FILE=" .. H.q(faults), H.q(PROBE),
      "open", H.q(dir .. "/spool/a"), "fsync",
      "wait", H.q(dir .. "/go1"), "fsync",
      "wait", H.q(dir .. "/go2"), "fsync" }, " "), out)
    local function wait_lines(n)
      return H.wait_for(function()
        local t = {}
        for l in (H.read_file(out) or ""):gmatch("[^\n]+") do t[#t + 1] = l end
        return #t >= n and t
      end, 10, n .. " probe lines")
    end
    wait_lines(2)
    H.set_faults(faults, "fsync /spool/ EIO 0\n")        -- arm
    H.write_file(dir .. "/go1", "")
    wait_lines(4)
    os.remove(faults)                                   -- disarm
    H.write_file(dir .. "/go2", "")
    local lines = wait_lines(6)
    H.wait_for(function() return not H.alive(pid) end, 10, "the probe to exit")
    assert.same({ "open ok", "fsync ok", "wait", "fsync EIO", "wait", "fsync ok" }, lines)
  end)

  it("reports a bad rule line on stderr and keeps the good ones", function()
    local dir = fresh()
    local lines = probe(dir, "# a comment\n\nfsync /spool/\nbogus /x EIO 1\n" ..
      "fsync /spool/ EWHAT 1\nfsync /spool/ EIO 1\n",
      { "open", dir .. "/spool/a", "fsync", "fsync" })
    local text = table.concat(lines, "\n")
    assert.truthy(text:find("faults:3: not OP SUBSTRING ERRNO NTH", 1, true), text)
    assert.truthy(text:find("faults:4: not OP", 1, true), text)
    assert.truthy(text:find("faults:5: not OP", 1, true), text)
    assert.truthy(text:find("fsync EIO\nfsync ok", 1, true), text)
  end)

  it("works in an ASan build with the ASan runtime preloaded first", function()
    local dir = fresh()
    local asan = H.sh("cc -print-file-name=libasan.so"):gsub("%s+$", "")
    local lines, rc, out = probe(dir, "fsync /spool/ EIO 2\nwrite /spool/ ENOSPC 1\n",
      { "open", dir .. "/spool/a", "write", "write", "fsync", "fsync" },
      { probe = PROBE_ASAN, preload = asan .. " " .. SHIM,
        -- log_path makes ASan call mkdir() before any constructor ran
        -- (as in scripts/test.sh's sanitizer pass).
        env = { "ASAN_OPTIONS=log_path=" .. H.q(dir .. "/asan/log") } })
    assert.equals(0, rc, out)
    assert.same({}, H.files(dir .. "/asan"))
    assert.same({ "open ok", "write ENOSPC", "write ok", "fsync ok", "fsync EIO" }, lines)
  end)

  it("works in an ASan build alone in LD_PRELOAD with verify_asan_link_order=0", function()
    local dir = fresh()
    local lines, rc, out = probe(dir, "fsync /spool/ EIO 2\n",
      { "open", dir .. "/spool/a", "fsync", "fsync" },
      { probe = PROBE_ASAN, env = { "ASAN_OPTIONS=verify_asan_link_order=0:log_path=" ..
        H.q(dir .. "/asan/log") } })
    assert.equals(0, rc, out)
    assert.same({ "open ok", "fsync ok", "fsync EIO" }, lines)
    -- Without the option ASan refuses to start: why the helper preloads it.
    local _, rc2, out2 = probe(dir, nil, { "fsync" }, { probe = PROBE_ASAN,
      env = { "ASAN_OPTIONS=verify_asan_link_order=1" } })
    assert.are_not.equal(0, rc2)
    assert.truthy(out2:find("does not come first", 1, true), out2)
  end)

  it("counts calls from many threads under one lock", function()
    -- 8 threads x 50 fsyncs: the 200th call of all fails, and only it.
    local dir = fresh()
    for _, p in ipairs({ PROBE, PROBE_ASAN }) do
      local lines, rc, out = probe(dir, "fsync /spool/ EIO 200\n",
        { "open", dir .. "/spool/a", "threads", "8", "50" }, { probe = p,
          preload = p == PROBE_ASAN and
            (H.sh("cc -print-file-name=libasan.so"):gsub("%s+$", "") .. " " .. SHIM) or nil })
      assert.equals(0, rc, out)
      assert.same({ "open ok", "threads ok=399 EIO=1 other=0" }, lines)
    end
  end)
end)
