-- 25-commit_faults_spec.lua — the commit path under faults (issue 8.6,
-- issue 10): EIO and ENOSPC injected at every step of spool_commit
-- (src/queue/spool.c) with the LD_PRELOAD shim.  Each time the client gets
-- a 4xx (452 4.3.1 when the disk is full), queue/ holds no entry of that
-- message — no message file without its envelope, no envelope without its
-- message, nothing empty — and the next message is queued whole.
local H = require "spec.helpers"

-- The steps, as the shim sees them: "OP SUBSTRING", for each commit mode
-- (src/queue/commit.h).  The spool file lives in tmp/ as s<pid>.<n>; the
-- envelope is written as tmp/<id>.env first.
local MODES = {
  filesystem = {
    { "open of the envelope", "open .env" },
    { "write of the envelope", "write .env" },
    { "syncfs of the spool", "syncfs /spool" },
    { "rename of the message into queue/", "rename /spool/tmp/s" },
    { "rename of the envelope into queue/", "rename /spool/tmp/" },
    { "fsync of queue/", "fsync /spool/queue" },
  },
  file = {
    { "fsync of the message", "fsync /spool/tmp/s" },
    { "open of the envelope", "open .env" },
    { "write of the envelope", "write .env" },
    { "fsync of the envelope", "fsync .env" },
    { "rename of the message into queue/", "rename /spool/tmp/s" },
    { "rename of the envelope into queue/", "rename /spool/tmp/" },
    { "fsync of queue/", "fsync /spool/queue" },
  },
}

local function send_message(port, body)
  local c = H.session(port)
  c:cmd("DATA", 354)
  c:send("Subject: faults\r\n\r\n" .. body .. "\r\n.\r\n")
  local code, text = c:reply()
  c:cmd("QUIT", 221)
  c:close()
  return code, text
end

-- Every entry of queue/: ids with their data and envelope files.
local function queue_entries(dir)
  local entries = {}
  for _, f in ipairs(H.files(dir .. "/spool/queue")) do
    local name = f:match("([^/]+)$")
    local id, env = name:match("^(.-)(%.env)$")
    id = id or name
    entries[id] = entries[id] or {}
    entries[id][env and "env" or "data"] = H.read_file(f)
  end
  return entries
end

-- No orphan, nothing empty: every entry is a whole message with its envelope.
local function assert_queue_whole(dir, what)
  for id, e in pairs(queue_entries(dir)) do
    assert(e.env and e.data, what .. ": queue entry " .. id .. " is half (" ..
      (e.env and "envelope only" or "data only") .. ")")
    assert(#e.data > 0, what .. ": queue entry " .. id .. " has an empty message")
    assert(e.env:find("\nend\n$"), what .. ": envelope of " .. id .. " is cut off")
  end
end

local function count(t) local n = 0 for _ in pairs(t) do n = n + 1 end return n end

for _, mode in ipairs{ "filesystem", "file" } do
describe("the commit path (commit_sync = " .. mode .. ") under injected faults #e2e #faults",
  function()
  local srv, faults, dir

  lazy_setup(function()
    dir = H.tmpdir()
    faults = dir .. "/faults"
    H.set_faults(faults, "")
    srv = H.start_server{ dir = dir, faults_file = faults,
      config = H.basic_config .. 'commit_sync = "' .. mode .. '"\n' }
  end)
  lazy_teardown(function() srv:stop() end)

  for _, errname in ipairs{ "EIO", "ENOSPC" } do
    for _, step in ipairs(MODES[mode]) do
      it(("answers a %s in the %s with %s, leaves no half entry, and queues the next message")
        :format(errname, step[1], errname == "ENOSPC" and "452 4.3.1" or "451 4.3.0"), function()
        local before = count(queue_entries(dir))
        H.set_faults(faults, step[2] .. " " .. errname .. " 1\n")
        local code, text = send_message(srv.port, "faulty " .. step[1])
        H.set_faults(faults, "")
        if errname == "ENOSPC" then
          assert.equals(452, code, text)
          assert.matches("^452 4%.3%.1 ", text)
        else
          assert.equals(451, code, text)
          assert.matches("^451 4%.3%.0 ", text)
        end
        assert_queue_whole(dir, step[1])
        assert.equals(before, count(queue_entries(dir)), "an entry was left for the refused message")
        srv:wait_log("queue commit%-error")
        -- The next message is fine, and whole.
        code, text = send_message(srv.port, "after " .. step[1])
        assert.equals(250, code, text)
        assert.equals(before + 1, count(queue_entries(dir)))
        assert_queue_whole(dir, "the next message")
        assert.truthy(srv:alive())
      end)
    end
  end
end)
end
