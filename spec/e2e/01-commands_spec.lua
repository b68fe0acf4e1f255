-- Every command of RFC 5321 (+ESMTP) and its reply codes, over a socket.
local H = require "spec.helpers"

describe("SMTP commands #e2e", function()
  local srv

  lazy_setup(function()
    srv = H.start_server{ config = H.basic_config .. [[
function hooks.rcpt(s, rcpt)
  if rcpt == "Postmaster" or rcpt:match("@example%.test$")
     or rcpt:match("@%[127%.0%.0%.1%]$") then
    return smtp.accept()
  end
end
]] }
  end)
  lazy_teardown(function() srv:stop() end)

  local function greeted()
    local c = H.connect(srv.port)
    c:expect(220)
    c:cmd("EHLO client.test", 250)
    return c
  end

  it("greets with 220 and the hostname, without an enhanced code (RFC 2034)", function()
    local c = H.connect(srv.port)
    local text = c:expect(220)
    assert.equals("220 mx.example.test ESMTP luasmtpd", text)
    c:close()
  end)

  it("answers EHLO with every advertised extension", function()
    local c = H.connect(srv.port)
    c:expect(220)
    c:send("EHLO client.test\r\n")
    local code, _, lines = c:reply()
    assert.equals(250, code)
    assert.equals("250-mx.example.test", lines[1])
    local ext = {}
    for i = 2, #lines do ext[lines[i]:sub(5)] = true end
    for _, want in ipairs{ "PIPELINING", "8BITMIME", "SMTPUTF8",
                           "ENHANCEDSTATUSCODES", "CHUNKING" } do
      assert.is_true(ext[want], want .. " not advertised")
    end
    local size
    for k in pairs(ext) do size = size or k:match("^SIZE (%d+)$") end
    assert.equals(25 * 1024 * 1024, tonumber(size))
    c:close()
  end)

  it("answers HELO with a single 250 line and no extensions", function()
    local c = H.connect(srv.port)
    c:expect(220)
    local _, lines = c:cmd("HELO client.test", 250)
    assert.equals(1, #lines)
    c:close()
  end)

  it("refuses EHLO without a hostname with 501 5.5.4", function()
    local c = H.connect(srv.port)
    c:expect(220)
    c:cmd("EHLO", 501, "^501 5%.5%.4 ")
    c:close()
  end)

  it("accepts an address literal as the EHLO argument", function()
    local c = H.connect(srv.port)
    c:expect(220)
    c:cmd("EHLO [127.0.0.1]", 250)
    c:close()
  end)

  it("accepts MAIL with 250 2.1.0 and RCPT with 250 2.1.5", function()
    local c = greeted()
    c:cmd("MAIL FROM:<a@remote.test>", 250, "^250 2%.1%.0 ")
    c:cmd("RCPT TO:<b@example.test>", 250, "^250 2%.1%.5 ")
    c:close()
  end)

  it("accepts the null sender <>", function()
    local c = greeted()
    c:cmd("MAIL FROM:<>", 250, "^250 2%.1%.0")
    c:close()
  end)

  it("accepts <Postmaster> without a domain, in any case", function()
    local c = greeted()
    c:cmd("MAIL FROM:<a@remote.test>", 250)
    c:cmd("RCPT TO:<Postmaster>", 250)
    c:cmd("RCPT TO:<POSTMASTER>", 250)
    c:close()
  end)

  it("accepts a quoted local part", function()
    local c = greeted()
    c:cmd('MAIL FROM:<"john doe"@remote.test>', 250)
    c:cmd('RCPT TO:<"odd\\"one"@example.test>', 250)
    c:close()
  end)

  it("accepts an address literal domain", function()
    local c = greeted()
    c:cmd("MAIL FROM:<a@[192.0.2.1]>", 250)
    c:cmd("RCPT TO:<b@[127.0.0.1]>", 250)
    c:close()
  end)

  it("accepts and ignores a source route", function()
    local c = greeted()
    c:cmd("MAIL FROM:<@relay.test,@other.test:a@remote.test>", 250)
    c:close()
  end)

  it("refuses MAIL without angle brackets with 501 5.5.4", function()
    local c = greeted()
    c:cmd("MAIL FROM:a@remote.test", 501, "^501 5%.5%.4 ")
    c:close()
  end)

  it("refuses a malformed sender with 501 5.1.7", function()
    local c = greeted()
    c:cmd("MAIL FROM:<a..b@remote.test>", 501, "^501 5%.1%.7 ")
    c:close()
  end)

  it("refuses a malformed recipient with 501 5.1.3", function()
    local c = greeted()
    c:cmd("MAIL FROM:<a@remote.test>", 250)
    c:cmd("RCPT TO:<b@example.test.>", 501, "^501 5%.1%.3 ")
    c:close()
  end)

  it("refuses the null path as a recipient", function()
    local c = greeted()
    c:cmd("MAIL FROM:<a@remote.test>", 250)
    c:cmd("RCPT TO:<>", 501, "^501 5%.1%.3 ")
    c:close()
  end)

  it("accepts DATA with 354 and the message with 250 2.0.0", function()
    local c = greeted()
    c:cmd("MAIL FROM:<a@remote.test>", 250)
    c:cmd("RCPT TO:<b@example.test>", 250)
    c:cmd("DATA", 354)
    c:send("Subject: hi\r\n\r\nhello\r\n.\r\n")
    c:expect(250, "^250 2%.0%.0 Ok: queued as %x+%.1$")
    c:close()
  end)

  it("accepts RSET with 250 2.0.0 and forgets the transaction", function()
    local c = greeted()
    c:cmd("MAIL FROM:<a@remote.test>", 250)
    c:cmd("RSET", 250, "^250 2%.0%.0")
    c:cmd("RCPT TO:<b@example.test>", 503, "^503 5%.5%.1 ")
    c:cmd("MAIL FROM:<a@remote.test>", 250)
    c:close()
  end)

  it("answers NOOP with 250 2.0.0", function()
    local c = greeted()
    c:cmd("NOOP", 250, "^250 2%.0%.0")
    c:close()
  end)

  it("answers QUIT with 221 2.0.0 and closes", function()
    local c = greeted()
    c:cmd("QUIT", 221, "^221 2%.0%.0")
    assert.is_true(c:closed())
  end)

  it("answers VRFY with 252 2.0.0 when no hook answers", function()
    local c = greeted()
    c:cmd("VRFY someone", 252, "^252 2%.0%.0 ")
    c:close()
  end)

  it("refuses VRFY without an argument with 501 5.5.4", function()
    local c = greeted()
    c:cmd("VRFY", 501, "^501 5%.5%.4 ")
    c:close()
  end)

  it("answers HELP with 214 2.0.0", function()
    local c = greeted()
    c:cmd("HELP", 214, "^214 2%.0%.0 ")
    c:close()
  end)

  it("answers EXPN with 502 5.5.1 (not implemented)", function()
    local c = greeted()
    c:cmd("EXPN list", 502, "^502 5%.5%.1 ")
    c:close()
  end)

  it("answers an unknown verb with 500 5.5.1", function()
    local c = greeted()
    c:cmd("FROB x", 500, "^500 5%.5%.1 ")
    c:close()
  end)

  it("treats verbs case-insensitively", function()
    local c = H.connect(srv.port)
    c:expect(220)
    c:cmd("ehlo client.test", 250)
    c:cmd("mail from:<a@remote.test>", 250)
    c:cmd("rcpt to:<b@example.test>", 250)
    c:close()
  end)

  it("refuses MAIL before EHLO with 503 5.5.1", function()
    local c = H.connect(srv.port)
    c:expect(220)
    c:cmd("MAIL FROM:<a@remote.test>", 503, "^503 5%.5%.1 ")
    c:close()
  end)

  it("refuses RCPT before MAIL with 503 5.5.1", function()
    local c = greeted()
    c:cmd("RCPT TO:<b@example.test>", 503, "^503 5%.5%.1 ")
    c:close()
  end)

  it("refuses DATA before MAIL with 503 5.5.1", function()
    local c = greeted()
    c:cmd("DATA", 503, "^503 5%.5%.1 ")
    c:close()
  end)

  it("refuses DATA without an accepted recipient with 554 5.5.1", function()
    local c = greeted()
    c:cmd("MAIL FROM:<a@remote.test>", 250)
    c:cmd("RCPT TO:<b@elsewhere.test>", 554)
    c:cmd("DATA", 554, "^554 5%.5%.1 ")
    c:close()
  end)

  it("refuses a nested MAIL with 503 5.5.1", function()
    local c = greeted()
    c:cmd("MAIL FROM:<a@remote.test>", 250)
    c:cmd("MAIL FROM:<a@remote.test>", 503, "^503 5%.5%.1 ")
    c:close()
  end)

  it("refuses DATA with an argument with 501 5.5.4", function()
    local c = greeted()
    c:cmd("MAIL FROM:<a@remote.test>", 250)
    c:cmd("RCPT TO:<b@example.test>", 250)
    c:cmd("DATA now", 501, "^501 5%.5%.4 ")
    c:close()
  end)

  it("forgets the transaction on a second EHLO (RFC 5321 4.1.4)", function()
    local c = greeted()
    c:cmd("MAIL FROM:<a@remote.test>", 250)
    c:cmd("EHLO client.test", 250)
    c:cmd("RCPT TO:<b@example.test>", 503)
    c:close()
  end)

  it("hangs up on an HTTP request with 221 2.7.0", function()
    local c = H.connect(srv.port)
    c:expect(220)
    c:cmd("GET / HTTP/1.0", 221, "^221 2%.7%.0 ")
    assert.is_true(c:closed())
  end)

  it("hangs up on a header line sent as a command", function()
    local c = H.connect(srv.port)
    c:expect(220)
    c:cmd("Subject: hello", 221)
    assert.is_true(c:closed())
  end)

  it("logs each session's events with its 16-hex session id", function()
    local c = greeted()
    c:cmd("QUIT", 221)
    assert.is_true(c:closed())
    local id = srv:wait_log("(%x+) smtp disconnect reason=\"quit\"")
    assert.equals(16, #id)
    assert.truthy(srv:log():find(id .. " smtp connect ip=127.0.0.1", 1, true))
  end)
end)

describe("ESMTP MAIL parameters #e2e", function()
  local srv

  lazy_setup(function()
    srv = H.start_server{ config = H.basic_config .. [[
limits = { max_message_size = 10000 }
]] }
  end)
  lazy_teardown(function() srv:stop() end)

  local function greeted(verb)
    local c = H.connect(srv.port)
    c:expect(220)
    c:cmd((verb or "EHLO") .. " client.test", 250)
    return c
  end

  it("accepts SIZE at the limit", function()
    local c = greeted()
    c:cmd("MAIL FROM:<a@remote.test> SIZE=10000", 250)
    c:close()
  end)

  it("refuses SIZE one over the limit with 552 5.3.4", function()
    local c = greeted()
    c:cmd("MAIL FROM:<a@remote.test> SIZE=10001", 552, "^552 5%.3%.4 ")
    c:close()
  end)

  it("refuses a SIZE too large to represent with 552 5.3.4", function()
    local c = greeted()
    c:cmd("MAIL FROM:<a@remote.test> SIZE=99999999999999999999999", 552)
    c:close()
  end)

  it("refuses a non-numeric SIZE with 501 5.5.4", function()
    local c = greeted()
    c:cmd("MAIL FROM:<a@remote.test> SIZE=big", 501, "^501 5%.5%.4 ")
    c:close()
  end)

  it("accepts BODY=8BITMIME and BODY=7BIT", function()
    local c = greeted()
    c:cmd("MAIL FROM:<a@remote.test> BODY=8BITMIME", 250)
    c:cmd("RSET", 250)
    c:cmd("MAIL FROM:<a@remote.test> BODY=7BIT", 250)
    c:close()
  end)

  it("refuses BODY=BINARYMIME (not advertised) with 555 5.5.4", function()
    local c = greeted()
    c:cmd("MAIL FROM:<a@remote.test> BODY=BINARYMIME", 555, "^555 5%.5%.4 ")
    c:close()
  end)

  it("refuses an unknown parameter with 555 5.5.4", function()
    local c = greeted()
    c:cmd("MAIL FROM:<a@remote.test> FROB=1", 555, "^555 5%.5%.4 ")
    c:close()
  end)

  it("refuses a repeated parameter with 501 5.5.4", function()
    local c = greeted()
    c:cmd("MAIL FROM:<a@remote.test> SIZE=1 SIZE=2", 501, "^501 5%.5%.4 ")
    c:close()
  end)

  it("refuses parameters after HELO (no extensions negotiated) with 555", function()
    local c = greeted("HELO")
    c:cmd("MAIL FROM:<a@remote.test> SIZE=100", 555, "^555 5%.5%.4 ")
    c:close()
  end)

  it("refuses RCPT parameters (no DSN) with 555 5.5.4", function()
    local c = greeted()
    c:cmd("MAIL FROM:<a@remote.test>", 250)
    c:cmd("RCPT TO:<b@example.test> NOTIFY=NEVER", 555, "^555 5%.5%.4 ")
    c:close()
  end)

  it("accepts a UTF-8 sender with SMTPUTF8", function()
    local c = greeted()
    c:cmd("MAIL FROM:<j\195\188rgen@remote.test> SMTPUTF8", 250)
    c:close()
  end)

  it("refuses a UTF-8 sender without SMTPUTF8 with 553 5.6.7", function()
    local c = greeted()
    c:cmd("MAIL FROM:<j\195\188rgen@remote.test>", 553, "^553 5%.6%.7 ")
    c:close()
  end)

  it("refuses a UTF-8 recipient without SMTPUTF8 with 553 5.6.7", function()
    local c = greeted()
    c:cmd("MAIL FROM:<a@remote.test>", 250)
    c:cmd("RCPT TO:<m\195\188ller@example.test>", 553, "^553 5%.6%.7 ")
    c:close()
  end)

  it("accepts a UTF-8 recipient after MAIL ... SMTPUTF8", function()
    local c = greeted()
    c:cmd("MAIL FROM:<a@remote.test> SMTPUTF8", 250)
    c:cmd("RCPT TO:<m\195\188ller@example.test>", 250)
    c:close()
  end)

  it("refuses malformed UTF-8 even with SMTPUTF8", function()
    local c = greeted()
    c:cmd("MAIL FROM:<j\192\188rgen@remote.test> SMTPUTF8", 501, "^501 5%.1%.7 ")
    c:close()
  end)
end)
