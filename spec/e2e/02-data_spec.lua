-- DATA and BDAT content: dot transparency, SMTP smuggling, limits, trace.
local H = require "spec.helpers"

-- Without a message hook an accepted message is committed to the queue.
local function queued(srv)
  local out = {}
  for _, f in ipairs(H.files(srv.dir .. "/spool/queue")) do
    if not f:match("%.env$") then out[#out + 1] = H.read_file(f) end
  end
  return out
end

-- The message without our Received: header (its first line and the
-- tab-indented lines that continue it).
local function body_of(msg)
  assert(msg:sub(1, 9) == "Received:", "no Received: header first")
  local pos = msg:find("\r\n", 1, true) + 2
  while msg:sub(pos, pos) == "\t" do
    pos = msg:find("\r\n", pos, true) + 2
  end
  return msg:sub(pos)
end

-- "BDAT <size> [LAST]" followed by the chunk itself.
local function bdat(chunk, last)
  return "BDAT " .. #chunk .. (last and " LAST" or "") .. "\r\n" .. chunk
end

describe("DATA #e2e", function()
  local srv

  before_each(function()
    srv = H.start_server{ config = H.basic_config .. [[
limits = { max_message_size = 2048, max_hops = 3 }
]] }
  end)
  after_each(function() srv:stop() end)

  it("stores the message with a Received: trace header first", function()
    local c = H.session(srv.port)
    c:cmd("DATA", 354)
    c:send("Subject: hi\r\n\r\nhello\r\n.\r\n")
    c:expect(250)
    local msgs = queued(srv)
    assert.equals(1, #msgs)
    assert.truthy(msgs[1]:match("^Received: from client%.test %(%[127%.0%.0%.1%]%)\r\n" ..
      "\tby mx%.example%.test %(luasmtpd%) with ESMTP id %x+%.1\r\n\tfor <user@example%.test>;\r\n\t"))
    assert.equals("Subject: hi\r\n\r\nhello\r\n", body_of(msgs[1]))
  end)

  it("writes an envelope beside the queued message", function()
    local c = H.session(srv.port, { rcpts = { "a@example.test", "b@example.test" } })
    c:cmd("DATA", 354)
    c:send("x\r\n.\r\n")
    c:expect(250)
    local env
    for _, f in ipairs(H.files(srv.dir .. "/spool/queue")) do
      if f:match("%.env$") then env = H.read_file(f) end
    end
    -- message/envelope.h: versioned, every field xtext-encoded.
    local id = env:match("\nid (%S+)\n")
    assert.truthy(id, env)
    assert.matches("^luasmtpd%-envelope 1\nid " .. id:gsub("%p", "%%%0") ..
      "\ncreated %d+\nfrom sender@remote%.test\nsmtputf8 0\n" ..
      "rcpt a@example%.test a@example%.test %+ %+ 0 0 0\n" ..
      "rcpt b@example%.test b@example%.test %+ %+ 0 0 0\nend\n$", env)
  end)

  it("accepts an empty message", function()
    local c = H.session(srv.port)
    c:cmd("DATA", 354)
    c:send(".\r\n")
    c:expect(250)
    assert.equals("", body_of(queued(srv)[1]))
  end)

  it("removes the stuffed dot of a line that starts with a dot", function()
    local c = H.session(srv.port)
    c:cmd("DATA", 354)
    c:send("..leading dot\r\n...\r\n.\r\n")
    c:expect(250)
    assert.equals(".leading dot\r\n..\r\n", body_of(queued(srv)[1]))
  end)

  it("keeps a line that only contains a stuffed dot", function()
    local c = H.session(srv.port)
    c:cmd("DATA", 354)
    c:send("a\r\n..\r\nb\r\n.\r\n")
    c:expect(250)
    assert.equals("a\r\n.\r\nb\r\n", body_of(queued(srv)[1]))
  end)

  it("accepts a text line of 1000 octets with CRLF", function()
    local c = H.session(srv.port)
    c:cmd("DATA", 354)
    c:send(("x"):rep(998) .. "\r\n.\r\n")
    c:expect(250)
  end)

  it("refuses a text line of 1001 octets after the dot with 554 5.6.0", function()
    local c = H.session(srv.port)
    c:cmd("DATA", 354)
    c:send(("x"):rep(999) .. "\r\n.\r\n")
    c:expect(554, "^554 5%.6%.0 ")
    assert.equals(0, #queued(srv))
    c:cmd("NOOP", 250)
  end)

  it("accepts a message of exactly max_message_size octets", function()
    local c = H.session(srv.port)
    c:cmd("DATA", 354)
    -- 2048 octets: 32 lines of 62 characters + CRLF
    c:send((("y"):rep(62) .. "\r\n"):rep(32) .. ".\r\n")
    c:expect(250)
  end)

  it("refuses a message one octet over max_message_size with 552 5.3.4", function()
    local c = H.session(srv.port)
    c:cmd("DATA", 354)
    c:send((("y"):rep(62) .. "\r\n"):rep(32) .. "z\r\n.\r\n")
    c:expect(552, "^552 5%.3%.4 ")
    assert.equals(0, #queued(srv))
    c:cmd("NOOP", 250)
  end)

  it("accepts max_hops Received: headers", function()
    local c = H.session(srv.port)
    c:cmd("DATA", 354)
    c:send(("Received: from a by b\r\n"):rep(3) .. "\r\nbody\r\n.\r\n")
    c:expect(250)
  end)

  it("refuses one Received: header more than max_hops with 554 5.4.6", function()
    local c = H.session(srv.port)
    c:cmd("DATA", 354)
    c:send(("Received: from a by b\r\n"):rep(4) .. "\r\nbody\r\n.\r\n")
    c:expect(554, "^554 5%.4%.6 ")
  end)

  it("does not count Received: lines in the body", function()
    local c = H.session(srv.port)
    c:cmd("DATA", 354)
    c:send("Subject: x\r\n\r\n" .. ("Received: quoted\r\n"):rep(10) .. ".\r\n")
    c:expect(250)
  end)

  it("handles several messages in one session", function()
    local c = H.session(srv.port)
    for i = 1, 3 do
      if i > 1 then
        c:cmd("MAIL FROM:<s@remote.test>", 250)
        c:cmd("RCPT TO:<user@example.test>", 250)
      end
      c:cmd("DATA", 354)
      c:send("n=" .. i .. "\r\n.\r\n")
      c:expect(250, "queued as %x+%." .. i .. "$")
    end
    assert.equals(3, #queued(srv))
  end)

  it("discards a message whose client disconnects mid-DATA", function()
    local c = H.session(srv.port)
    c:cmd("DATA", 354)
    c:send("partial\r\n")
    c:close()
    srv:wait_log("reason=\"client disconnected during message\"")
    assert.equals(0, #queued(srv))
    assert.same({}, H.nonempty_files(srv.dir .. "/spool/tmp"))
  end)
end)

describe("SMTP smuggling defence (bare LF / bare CR) #e2e", function()
  local srv

  lazy_setup(function()
    srv = H.start_server{ config = H.basic_config }
  end)
  lazy_teardown(function() srv:stop() end)

  -- A smuggled second message: if the server took the fake end of data,
  -- these commands would run and a second message would be queued.
  local smuggled = "MAIL FROM:<evil@remote.test>\r\nRCPT TO:<victim@example.test>\r\n" ..
    "DATA\r\nSubject: smuggled\r\n\r\nevil\r\n"

  local forms = {
    ["<LF>.<LF>"] = "\n.\n",
    ["<LF>.<CR><LF>"] = "\n.\r\n",
    ["<CR><LF>.<LF>"] = "\r\n.\n",
    ["<CR>.<CR>"] = "\r.\r",
    ["<CR>.<CR><LF>"] = "\r.\r\n",
    ["<CR><LF>.<CR>"] = "\r\n.\r",
    ["<LF>.<CR>"] = "\n.\r",
  }
  for name, eod in pairs(forms) do
    it("never ends DATA at " .. name .. " and refuses the message", function()
      local before = #H.files(srv.dir .. "/spool/queue")
      local c = H.session(srv.port)
      c:cmd("DATA", 354)
      c:send("Subject: real\r\n\r\nbody" .. eod .. smuggled .. ".\r\n")
      -- Exactly one reply for the whole thing: the refusal after the real dot.
      c:expect(550, "^550 5%.5%.2 Error: bare <[CRLF]+> received$")
      c:cmd("NOOP", 250)
      assert.equals(before, #H.files(srv.dir .. "/spool/queue"))
      c:close()
    end)
  end

  it("refuses a command ended by a bare LF with 550 5.5.2", function()
    local c = H.connect(srv.port)
    c:expect(220)
    c:send("EHLO client.test\n")
    c:expect(550, "^550 5%.5%.2 Error: bare <LF> received")
    c:cmd("EHLO client.test", 250)
    c:close()
  end)

  it("refuses a command containing a bare CR", function()
    local c = H.connect(srv.port)
    c:expect(220)
    c:send("NOOP\rRSET\r\n")
    c:expect(550, "bare <CR>")
    c:close()
  end)
end)

describe("bare_lf = \"normalize\" #e2e", function()
  local srv

  lazy_setup(function()
    srv = H.start_server{ config = H.basic_config .. [[
bare_lf = "normalize"
]] }
  end)
  lazy_teardown(function() srv:stop() end)

  it("stores bare LF lines as CRLF and still requires CRLF.CRLF", function()
    local c = H.session(srv.port)
    c:cmd("DATA", 354)
    c:send("a\nb\n.\nc\r\n.\r\n")
    c:expect(250)
    local files = H.files(srv.dir .. "/spool/queue")
    local msg
    for _, f in ipairs(files) do if not f:match("%.env$") then msg = H.read_file(f) end end
    assert.truthy(msg:find("\r\n\r\na\r\nb\r\n.\r\nc\r\n$", 1, false) or
      msg:find("a\r\nb\r\n.\r\nc\r\n$"))
  end)

  it("accepts a command ended by a bare LF", function()
    local c = H.connect(srv.port)
    c:expect(220)
    c:send("EHLO client.test\n")
    c:expect(250)
    c:close()
  end)
end)

describe("bare_lf_reject_code = 521 #e2e", function()
  it("disconnects after refusing a bare LF", function()
    local srv = H.start_server{ config = H.basic_config .. "bare_lf_reject_code = 521\n" }
    local c = H.connect(srv.port)
    c:expect(220)
    c:send("NOOP\n")
    c:expect(521, "^521 5%.5%.2 ")
    assert.is_true(c:closed())
    srv:stop()
  end)
end)

describe("BDAT (RFC 3030) #e2e", function()
  local srv

  before_each(function()
    srv = H.start_server{ config = H.basic_config .. [[
limits = { max_message_size = 2048 }
]] }
  end)
  after_each(function() srv:stop() end)

  local function one_queued()
    local msgs = queued(srv)
    assert.equals(1, #msgs)
    return body_of(msgs[1])
  end

  it("takes a message in chunks and answers each", function()
    local c = H.session(srv.port)
    c:send(bdat("Subject: x\r\n"))
    c:expect(250, "^250 2%.0%.0 Ok: 12 octets received")
    c:send(bdat("\r\nbody\r\n\r\n", true))
    c:expect(250, "queued as")
    assert.equals("Subject: x\r\n\r\nbody\r\n\r\n", one_queued())
  end)

  it("takes BDAT 0 LAST to end the message", function()
    local c = H.session(srv.port)
    c:send(bdat("abc\r\n"))
    c:expect(250)
    c:cmd("BDAT 0 LAST", 250, "queued as")
    assert.equals("abc\r\n", one_queued())
  end)

  it("does not interpret dots or CRLF.CRLF inside a chunk", function()
    local c = H.session(srv.port)
    local chunk = "a\r\n.\r\nMAIL FROM:<x@y.test>\r\n..b\r\n"
    c:send(bdat(chunk, true))
    c:expect(250, "queued as")
    assert.equals(chunk, one_queued())
  end)

  it("adds a final CRLF when the last chunk lacks one", function()
    local c = H.session(srv.port)
    c:send(bdat("abc", true))
    c:expect(250)
    assert.equals("abc\r\n", one_queued())
  end)

  it("accepts pipelined chunks in one packet", function()
    local c = H.session(srv.port)
    c:send(bdat("ab\r\n") .. bdat("cd\r\n") .. bdat("ef\r\n", true) .. "NOOP\r\n")
    c:expect(250, "4 octets")
    c:expect(250, "8 octets")
    c:expect(250, "queued as")
    c:expect(250)
    assert.equals("ab\r\ncd\r\nef\r\n", one_queued())
  end)

  it("reads and refuses a chunk without MAIL (503) and stays in sync", function()
    local c = H.connect(srv.port)
    c:expect(220)
    c:cmd("EHLO client.test", 250)
    c:send(bdat("NOOP\r\nNOOP\r\n"))
    c:expect(503, "^503 5%.5%.1 ")
    c:cmd("NOOP", 250)
    c:close()
  end)

  it("refuses BDAT after HELO (CHUNKING not negotiated)", function()
    local c = H.connect(srv.port)
    c:expect(220)
    c:cmd("HELO client.test", 250)
    c:cmd("MAIL FROM:<a@remote.test>", 250)
    c:cmd("RCPT TO:<b@example.test>", 250)
    c:send(bdat("ab\r\n", true))
    c:expect(503)
    c:cmd("NOOP", 250)
    c:close()
  end)

  it("refuses a malformed BDAT with 501 5.5.4 and hangs up", function()
    local c = H.session(srv.port)
    c:cmd("BDAT ten", 501, "^501 5%.5%.4 ")
    assert.is_true(c:closed())
  end)

  it("refuses DATA after BDAT in the same transaction", function()
    local c = H.session(srv.port)
    c:send(bdat("ab\r\n"))
    c:expect(250)
    c:cmd("DATA", 503, "^503 5%.5%.1 ")
    c:close()
  end)

  it("refuses a chunked message over the size limit at LAST with 552", function()
    local c = H.session(srv.port)
    local chunk = ("z"):rep(1022) .. "\r\n"
    c:send(bdat(chunk))
    c:expect(250)
    c:send(bdat(chunk))
    c:expect(250)
    c:send(bdat("q", true))
    c:expect(552, "^552 5%.3%.4 ")
    assert.equals(0, #queued(srv))
    c:cmd("NOOP", 250)
  end)

  it("refuses a bare LF inside a chunk", function()
    local c = H.session(srv.port)
    c:send(bdat("ab\ncd\r\n", true))
    c:expect(550, "bare <LF>")
    assert.equals(0, #queued(srv))
  end)
end)

describe("received_header = false #e2e", function()
  it("stores the message exactly as received", function()
    local srv = H.start_server{ config = H.basic_config .. "received_header = false\n" }
    local c = H.session(srv.port)
    c:cmd("DATA", 354)
    c:send("Subject: x\r\n\r\nbody\r\n.\r\n")
    c:expect(250)
    assert.same({ "Subject: x\r\n\r\nbody\r\n" }, queued(srv))
    srv:stop()
  end)
end)
