-- Crash safety: a 250 means the message is on disk.  kill -9 during a
-- bounded load; after a restart every acknowledged message is in the
-- Maildir, complete and byte-identical.
local H = require "spec.helpers"

local PYTHON = "/usr/bin/python3"

-- Rebuild the messages of the given ids, as the load generator made them
-- (one Python run writes them all into dir).
local function expected_all(ids, dir)
  local list = dir .. "/ids"
  H.write_file(list, table.concat(ids, "\n") .. "\n")
  local out, rc = H.sh(("%s -c %s %s %s %s"):format(PYTHON, H.q(
    "import sys, os; sys.path.insert(0, sys.argv[1]); import ackload\n" ..
    "for i in open(sys.argv[2]).read().split():\n" ..
    "    open(os.path.join(sys.argv[3], i), 'w', newline='').write(ackload.message(i))"),
    H.q(H.root .. "/spec/fixtures/load"), H.q(list), H.q(dir)))
  assert(rc == 0, out)
  local msgs = {}
  for _, id in ipairs(ids) do msgs[id] = H.read_file(dir .. "/" .. id) end
  return msgs
end

-- The stored file without our trace headers, CRLF as in the original.
local function original_of(stored)
  local lines, i = {}, 0
  for l in stored:gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
  -- Return-Path, Delivered-To, then Received: and its continuation lines.
  assert(lines[1]:match("^Return%-Path: "), lines[1])
  assert(lines[2]:match("^Delivered%-To: "), lines[2])
  assert(lines[3]:match("^Received: "), lines[3])
  i = 4
  while lines[i]:match("^\t") do i = i + 1 end
  local rest = {}
  for k = i, #lines do rest[#rest + 1] = lines[k] end
  return table.concat(rest, "\r\n") .. "\r\n"
end

describe("crash safety #e2e #crash", function()
  it("keeps every acknowledged message across kill -9", function()
    local dir = H.tmpdir()
    local defines = { maildir = dir .. "/mail", tls_cert = dir .. "/c.pem",
                      tls_key = dir .. "/k.pem", spool = dir .. "/spool" }
    local srv = H.start_server{ dir = dir, config_file = H.root .. "/examples/default.lua",
      defines = defines }
    local acks = dir .. "/acks"
    local load = H.spawn(("%s %s %d %s 4 400 30"):format(PYTHON,
      H.q(H.root .. "/spec/fixtures/load/ackload.py"), srv.port, H.q(acks)), dir .. "/load.log")
    H.wait_for(function()
      local a = H.read_file(acks) or ""
      local n = select(2, a:gsub("\n", ""))
      return n >= 300
    end, 30, "300 acknowledged messages")
    H.sh("kill -KILL " .. srv.pid)
    H.wait_for(function() return not H.alive(load) end, 40, "the load to stop")

    local ids = {}
    for id in (H.read_file(acks) or ""):gmatch("([^\n]+)") do ids[#ids + 1] = id end
    assert.is_true(#ids >= 300)

    -- Restart on the same spool and Maildirs: it cleans the spool's tmp/.
    local again = H.start_server{ dir = dir, config_file = H.root .. "/examples/default.lua",
      defines = defines }
    again:stop()
    assert.same({}, H.files(dir .. "/spool/tmp"))

    local stored = {}
    for _, f in ipairs(H.files(dir .. "/mail/example.test/crash/new")) do
      local data = H.read_file(f)
      local id = data:match("\nX%-Test%-Id: ([^\n]+)\n")
      assert.truthy(id, "a stored message without its id: " .. f)
      -- Every file in new/ is complete, acknowledged or not.
      local tail = "\nEND " .. id .. "\n"
      assert.equals(tail, data:sub(-#tail), "incomplete message " .. f)
      stored[id] = data
    end
    local want_dir = dir .. "/expected"
    os.execute("mkdir -p " .. H.q(want_dir))
    local want = expected_all(ids, want_dir)
    for _, id in ipairs(ids) do
      assert.truthy(stored[id], "acknowledged message " .. id .. " is missing")
      assert.equals(want[id], original_of(stored[id]))
    end
  end)
end)
