-- RFC 2920 pipelining, early talkers and a client that does not read.
local H = require "spec.helpers"

describe("pipelining (RFC 2920) #e2e", function()
  local srv

  lazy_setup(function()
    srv = H.start_server{ config = H.basic_config .. [[
limits = { max_junk_commands = 100000, max_commands = 100000 }
function hooks.rcpt(s, rcpt)
  -- Some recipients take a while: the order of replies must not change.
  if rcpt:match("^slow") then smtp.sleep(0.05) end
  if rcpt:match("@example%.test$") then return smtp.accept() end
end
]] }
  end)
  lazy_teardown(function() srv:stop() end)

  it("answers a pipelined group in order", function()
    local c = H.connect(srv.port)
    c:expect(220)
    c:cmd("EHLO client.test", 250)
    c:send("MAIL FROM:<a@remote.test>\r\nRCPT TO:<b@example.test>\r\n" ..
      "RCPT TO:<b@elsewhere.test>\r\nRCPT TO:<c@example.test>\r\nDATA\r\n")
    c:expect(250, "2%.1%.0")
    c:expect(250, "2%.1%.5")
    c:expect(554, "relay")
    c:expect(250, "2%.1%.5")
    c:expect(354)
    c:send("Subject: p\r\n\r\nbody\r\n.\r\nQUIT\r\n")
    c:expect(250, "queued as")
    c:expect(221)
    assert.is_true(c:closed())
  end)

  it("keeps the order when a hook yields in the middle of the group", function()
    local c = H.connect(srv.port)
    c:expect(220)
    c:cmd("EHLO client.test", 250)
    c:send("MAIL FROM:<a@remote.test>\r\nRCPT TO:<slow1@example.test>\r\n" ..
      "RCPT TO:<fast@elsewhere.test>\r\nRCPT TO:<slow2@example.test>\r\nRSET\r\nNOOP\r\n")
    local codes = {}
    for i = 1, 6 do codes[i] = (c:reply()) end
    assert.same({ 250, 250, 554, 250, 250, 250 }, codes)
    c:close()
  end)

  it("answers the whole group even when it arrives one byte at a time", function()
    local c = H.connect(srv.port)
    c:expect(220)
    local group = "EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<b@example.test>\r\n"
    for i = 1, #group do c:send(group:sub(i, i)) end
    c:expect(250)
    c:expect(250)
    c:expect(250)
    c:close()
  end)

  it("stops reading from a client that does not read its replies, and catches up", function()
    local c = H.connect(srv.port)
    c:expect(220)
    c:cmd("EHLO client.test", 250)
    -- 30000 NOOPs (180 KB) without reading a single reply (750 KB of replies).
    local flood = ("NOOP\r\n"):rep(30000)
    local co = coroutine.wrap(function() c:send(flood) end)
    co()
    -- Meanwhile everybody else is served.
    local other = H.connect(srv.port)
    other:expect(220)
    other:cmd("NOOP", 250)
    other:close()
    for i = 1, 30000 do
      local code = c:reply()
      assert(code == 250, "reply " .. i .. " was " .. tostring(code))
    end
    c:cmd("QUIT", 221)
  end)
end)

describe("a client that talks before the greeting #e2e", function()
  it("is refused with 554 5.5.1 and disconnected", function()
    local srv = H.start_server{ config = H.basic_config .. "greet_pause = 2\n" }
    local c = H.connect(srv.port)
    c:send("EHLO early.test\r\n")
    c:expect(554, "^554 5%.5%.1 .*synchronization")
    assert.is_true(c:closed())
    srv:wait_log("smtp early%-talker")
    srv:stop()
  end)

  it("is refused while the connect hook still runs", function()
    local srv = H.start_server{ config = H.basic_config .. [[
function hooks.connect(s) smtp.sleep(2) end
]] }
    local c = H.connect(srv.port)
    c:send("EHLO early.test\r\n")
    c:expect(554, "synchronization")
    assert.is_true(c:closed())
    srv:stop()
  end)

  it("is served after the greeting when reject_early_talkers = false", function()
    local srv = H.start_server{ config = H.basic_config ..
      "greet_pause = 0.3\nreject_early_talkers = false\n" }
    local c = H.connect(srv.port)
    c:send("EHLO early.test\r\n")
    c:expect(220)
    c:expect(250)
    c:close()
    srv:stop()
  end)

  it("gets the greeting after greet_pause when it waits", function()
    local srv = H.start_server{ config = H.basic_config .. "greet_pause = 0.2\n" }
    local c = H.connect(srv.port)
    c:expect(220)
    c:cmd("EHLO patient.test", 250)
    c:close()
    srv:stop()
  end)
end)
