-- Every bound, tested at n and at n+1 (RFC 5321 4.5.3 and our own).
local H = require "spec.helpers"

-- A command line of exactly n octets including CRLF.
local function line_of(prefix, n)
  return prefix .. (" "):rep(n - 2 - #prefix) .. "x"
end

describe("line limits #e2e", function()
  local srv

  lazy_setup(function() srv = H.start_server{ config = H.basic_config } end)
  lazy_teardown(function() srv:stop() end)

  it("accepts a command line of 512 octets", function()
    local c = H.connect(srv.port)
    c:expect(220)
    local l = "NOOP " .. ("a"):rep(505)
    assert.equals(512, #l + 2)
    c:cmd(l, 250)
    c:close()
  end)

  it("refuses a command line of 513 octets with 500 5.5.2 and goes on", function()
    local c = H.connect(srv.port)
    c:expect(220)
    c:cmd("NOOP " .. ("a"):rep(506), 500, "^500 5%.5%.2 ")
    c:cmd("NOOP", 250)
    c:close()
  end)

  it("allows MAIL 512 octets more for parameters (1024 in all)", function()
    local c = H.session(srv.port, { from = false })
    local l = "MAIL FROM:<a@remote.test> SIZE=10"
    l = l .. (" "):rep(1022 - #l)
    assert.equals(1024, #l + 2)
    c:cmd(l, 250)
    c:close()
  end)

  it("refuses a MAIL line of 1025 octets", function()
    local c = H.session(srv.port, { from = false })
    local l = "MAIL FROM:<a@remote.test> SIZE=10"
    c:cmd(l .. (" "):rep(1023 - #l), 500, "^500 5%.5%.2 ")
    c:close()
  end)

  it("hangs up on a line that never ends", function()
    local c = H.connect(srv.port)
    c:expect(220)
    c:send(("A"):rep(20000))
    c:expect(500, "^500 5%.5%.2 ")
    c:expect(421)
    assert.is_true(c:closed())
  end)

  it("serves others while a client dribbles a line without end", function()
    local slow = H.connect(srv.port)
    slow:expect(220)
    slow:send("NOOP and then nothing")
    local c = H.connect(srv.port)
    c:expect(220)
    c:cmd("NOOP", 250)
    c:close()
    slow:close()
  end)
end)

describe("transaction limits #e2e", function()
  local srv

  lazy_setup(function()
    srv = H.start_server{ config = H.basic_config .. [[
limits = { max_recipients = 100, max_transactions = 2 }
]] }
  end)
  lazy_teardown(function() srv:stop() end)

  it("accepts 100 recipients and refuses the 101st with 452 4.5.3", function()
    local c = H.session(srv.port, { rcpts = {} })
    local cmds = {}
    for i = 1, 101 do cmds[i] = "RCPT TO:<u" .. i .. "@example.test>\r\n" end
    c:send(table.concat(cmds))
    for i = 1, 100 do c:expect(250) end
    c:expect(452, "^452 4%.5%.3 ")
    c:cmd("DATA", 354)
    c:send("x\r\n.\r\n")
    c:expect(250)
    c:close()
  end)

  it("allows max_transactions messages and closes at the next MAIL", function()
    local c = H.session(srv.port, { from = false })
    for _ = 1, 2 do
      c:cmd("MAIL FROM:<a@remote.test>", 250)
      c:cmd("RCPT TO:<b@example.test>", 250)
      c:cmd("DATA", 354)
      c:send("x\r\n.\r\n")
      c:expect(250)
    end
    c:cmd("MAIL FROM:<a@remote.test>", 421, "^421 4%.7%.0 ")
    assert.is_true(c:closed())
  end)
end)

describe("session limits #e2e", function()
  local srv

  lazy_setup(function()
    srv = H.start_server{ config = H.basic_config .. [[
limits = { max_errors = 3, max_commands = 6, max_junk_commands = 2 }
]] }
  end)
  lazy_teardown(function() srv:stop() end)

  it("allows max_errors errors", function()
    local c = H.connect(srv.port)
    c:expect(220)
    for _ = 1, 3 do c:cmd("BOGUS", 500) end
    c:cmd("EHLO client.test", 250)
    c:close()
  end)

  it("closes with 421 4.7.0 at one error more", function()
    local c = H.connect(srv.port)
    c:expect(220)
    for _ = 1, 3 do c:cmd("BOGUS", 500) end
    c:send("BOGUS\r\n")
    c:expect(500)
    c:expect(421, "^421 4%.7%.0 .*too many errors")
    assert.is_true(c:closed())
  end)

  it("allows max_commands commands", function()
    local c = H.connect(srv.port)
    c:expect(220)
    for _ = 1, 5 do c:cmd("EHLO client.test", 250) end
    c:cmd("QUIT", 221)		-- the 6th command
  end)

  it("closes with 421 4.7.0 at one command more", function()
    local c = H.connect(srv.port)
    c:expect(220)
    for _ = 1, 6 do c:cmd("EHLO client.test", 250) end
    c:cmd("EHLO client.test", 421, "^421 4%.7%.0 .*too many commands")
    assert.is_true(c:closed())
  end)

  it("counts junk commands past max_junk_commands as errors", function()
    local c = H.connect(srv.port)
    c:expect(220)
    -- NOOP 1-2 are free; NOOP 3-5 are errors 1-3 (max_errors = 3).
    for _ = 1, 5 do c:cmd("NOOP", 250) end
    -- NOOP 6 is the 4th error: answered, then the session ends.
    c:cmd("NOOP", 250)
    c:expect(421, "too many errors")
    assert.is_true(c:closed())
  end)
end)

describe("connection limits #e2e", function()
  it("allows max_connections_per_ip and refuses one more with 421 4.7.0", function()
    local srv = H.start_server{ config = H.basic_config ..
      "limits = { max_connections_per_ip = 2 }\n" }
    local a, b = H.connect(srv.port), H.connect(srv.port)
    a:expect(220)
    b:expect(220)
    local c = H.connect(srv.port)
    c:expect(421, "^421 4%.7%.0 .*too many connections from your address")
    assert.is_true(c:closed())
    a:cmd("QUIT", 221)
    assert.is_true(a:closed())
    H.wait_for(function()
      local d = H.connect(srv.port)
      local code = d:reply()
      d:close()
      return code == 220
    end, 5, "a slot to free up")
    b:close()
    srv:stop()
  end)

  it("allows max_connections in all and refuses one more with 421 4.7.0", function()
    local srv = H.start_server{ config = H.basic_config ..
      "limits = { max_connections = 3 }\n" }
    local conns = {}
    for i = 1, 3 do
      conns[i] = H.connect(srv.port)
      conns[i]:expect(220)
    end
    local extra = H.connect(srv.port)
    extra:expect(421, "^421 4%.7%.0 .*too many connections")
    assert.is_true(extra:closed())
    for _, c in ipairs(conns) do c:close() end
    srv:stop()
  end)
end)

describe("timeouts (RFC 5321 4.5.3.2) #e2e", function()
  local srv

  lazy_setup(function()
    srv = H.start_server{ config = H.basic_config ..
      "timeouts = { command = 0.3, data = 0.3 }\n" }
  end)
  lazy_teardown(function() srv:stop() end)

  it("closes an idle session with 421 4.4.2", function()
    local c = H.connect(srv.port)
    c:expect(220)
    c:expect(421, "^421 4%.4%.2 .*timeout")
    assert.is_true(c:closed())
  end)

  it("closes a session that stalls in DATA with 421 4.4.2", function()
    local c = H.session(srv.port)
    c:cmd("DATA", 354)
    c:send("Subject: stall\r\n")
    c:expect(421, "^421 4%.4%.2 ")
    assert.is_true(c:closed())
    assert.same({}, H.nonempty_files(srv.dir .. "/spool/tmp"))
  end)

  it("keeps a session open while the client keeps talking", function()
    local c = H.connect(srv.port)
    c:expect(220)
    for _ = 1, 4 do
      H.sleep(0.15)
      c:cmd("NOOP", 250)
    end
    c:close()
  end)
end)
