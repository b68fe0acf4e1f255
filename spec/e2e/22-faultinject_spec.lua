-- The fault-injection shim (spec/fixtures/faultinject/faultinject.c) with
-- the real server: H.start_server{ faults_file = path } preloads it, and
-- H.set_faults(path, rules) arms and disarms it while the server runs.
-- What the commit path answers to each fault is specified elsewhere; here
-- only that a fault reaches the server's worker threads as a temporary
-- failure and that disarming brings 250 back.
local H = require "spec.helpers"

local function send_message(port)
  local c = H.session(port)
  c:cmd("DATA", 354)
  c:send("Subject: faults\r\n\r\nhello\r\n.\r\n")
  local code, text = c:reply()
  c:cmd("QUIT", 221)
  c:close()
  return code, text
end

describe("fault injection into the real server #e2e", function()
  local srv, faults

  lazy_setup(function()
    local dir = H.tmpdir()
    faults = dir .. "/faults"
    srv = H.start_server{ dir = dir, config = H.basic_config, faults_file = faults }
  end)
  lazy_teardown(function() srv:stop() end)

  it("runs the server with the shim preloaded", function()
    local env = H.read_file("/proc/" .. srv.pid .. "/environ") or ""
    assert.truthy(env:find("LD_PRELOAD=[^%z]*faultinject%.so"), "no LD_PRELOAD")
    local maps = H.read_file("/proc/" .. srv.pid .. "/maps") or ""
    assert.truthy(maps:find("faultinject.so", 1, true), "the shim is not loaded")
    assert.equals(250, (send_message(srv.port)))
  end)

  it("answers 4xx while fsync under the spool fails, 250 once disarmed", function()
    H.set_faults(faults, "fsync /spool/ EIO 0\n")
    local code, text = send_message(srv.port)
    assert.is_true(code >= 400 and code < 500, tostring(text))
    H.set_faults(faults, "")
    assert.equals(250, (send_message(srv.port)))
    assert.is_true(srv:alive())
  end)

  it("answers 4xx while writes under the spool fail with ENOSPC", function()
    H.set_faults(faults, "write /spool/ ENOSPC 0\n")
    local code, text = send_message(srv.port)
    assert.is_true(code >= 400 and code < 500, tostring(text))
    H.set_faults(faults, "")
    assert.equals(250, (send_message(srv.port)))
  end)
end)
