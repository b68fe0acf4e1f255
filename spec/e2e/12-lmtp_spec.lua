-- LMTP delivery to a real Dovecot (RFC 2033): examples/dovecot.lua end to
-- end (regex rewriting, the RCPT-time check, per-recipient results after
-- DATA), over the unix socket and over TCP, and deliver.lmtp's misuse.
local H = require "spec.helpers"
local peers = require "spec.support.peers"

-- Send one message; returns the code and text of the reply after DATA.
local function send(port, rcpts, body, from)
  local c = H.connect(port)
  c:expect(220)
  c:cmd("EHLO client.test", 250)
  c:cmd("MAIL FROM:<" .. (from or "sender@remote.test") .. ">", 250)
  for _, r in ipairs(rcpts) do c:cmd("RCPT TO:<" .. r .. ">", 250) end
  c:cmd("DATA", 354)
  c:send(body or "Subject: lmtp spec\r\n\r\nhello dovecot\r\n.\r\n")
  local code, text = c:reply(30)
  c:cmd("QUIT", 221)
  c:close()
  return code, text
end

-- Dovecot log lines that are not normal LMTP traffic: errors and warnings
-- (except the unwritable user's, which its test causes), and sessions
-- that ended without QUIT (the peers harness's probes close in GREETING).
local function unusual_dovecot_lines(log)
  local bad = {}
  for line in log:gmatch("[^\n]+") do
    local state = line:match("Disconnect from %S+: Connection closed %(state=([^)]*)%)")
    local problem = line:find(" Error: ", 1, true) or line:find(" Warning: ", 1, true)
      or line:find(" Fatal: ", 1, true) or line:find(" Panic: ", 1, true)
    if problem and line:find("lmtp(stuck@", 1, true) then problem = nil end
    if problem or (state and state ~= "GREETING") then bad[#bad + 1] = line end
  end
  return bad
end

describe("examples/dovecot.lua with Dovecot over its unix socket #e2e #lmtp", function()
  local lmtp, srv, rules

  lazy_setup(function()
    lmtp = peers.dovecot_lmtp{ users = { "alice", "bob", "carol" },
                               quota_full = { "full" }, unwritable = { "stuck" } }
    local dir = H.tmpdir()
    rules = dir .. "/rules"
    -- Three regex rules; anything else at example.test maps to itself.
    H.write_file(rules, table.concat({
      "# spec rules",
      "^sales@example\\.test$            alice",
      "^(?:ceo|boss)@example\\.test$     bob@example.test",
      "^c\\.([a-z]+)@example\\.test$     $1",
      "^([^@+]+)(?:\\+[^@]*)?@example\\.test$   $1",
      "" }, "\n"))
    srv = H.start_server{ dir = dir, config_file = H.root .. "/examples/dovecot.lua",
      defines = { lmtp = "unix:" .. lmtp.socket, rules = rules,
                  domains = "example.test", hostname = "mx.example.test" } }
  end)
  -- Stops whatever started, even after a failed setup.
  lazy_teardown(function()
    if srv then srv:stop() end
    if lmtp then lmtp:stop() end
  end)

  it("rewrites three addresses by regex and delivers into three Maildirs", function()
    local code, text = send(srv.port, { "sales@example.test", "Boss@Example.test",
      "c.carol@example.test" }, "Subject: three users\r\n\r\none message\r\n..dot\r\n.\r\n")
    assert.equals(250, code, text)
    assert.truthy(text:find("^250 2%.0%.0 Ok: delivered as"), text)
    for _, user in ipairs{ "alice", "bob", "carol" } do
      local msgs = lmtp:wait_messages(user, 1)
      assert.equals(1, #msgs, user)
      assert.truthy(msgs[1]:find("Subject: three users", 1, true), user)
      -- Dot-stuffing round trip: the client's "..dot" is ".dot" in the mailbox.
      assert.truthy(msgs[1]:find("\n%.dot\r?\n"), msgs[1])
      assert.truthy(msgs[1]:find("Received: from client.test", 1, true), user)
    end
    -- Every delivery is logged with the session id, the rewritten
    -- recipient, the target and the outcome (Dovecot's own text).
    for _, to in ipairs{ "alice@example%.test", "bob@example%.test", "carol@example%.test" } do
      local id = srv:wait_log("(%x+) deliver lmtp tx=%S+ to=<" .. to .. "> target=unix:%S+ " ..
        "result=delivered code=250 ecode=2%.0%.0 text=\"<" .. to .. "> %S+ Saved\"")
      assert.equals(16, #id)
    end
    assert.same({}, H.files(srv.dir .. "/spool/queue"))
  end)

  it("refuses an unknown user at RCPT with Dovecot's own 550 5.1.1", function()
    local c = H.connect(srv.port)
    c:expect(220)
    c:cmd("EHLO client.test", 250)
    c:cmd("MAIL FROM:<sender@remote.test>", 250)
    local text = c:cmd("RCPT TO:<nobody@example.test>", 550)
    assert.truthy(text:find("^550 5%.1%.1 <nobody@example%.test> User doesn't exist: nobody"),
      text)
    -- The session goes on: a known user is still accepted.
    c:cmd("RCPT TO:<alice@example.test>", 250)
    c:cmd("QUIT", 221)
    c:close()
    srv:wait_log("deliver lmtp_check target=unix:%S+ code=550 ecode=5%.1%.1")
  end)

  it("refuses other domains as a relay, without asking Dovecot", function()
    local c = H.connect(srv.port)
    c:expect(220)
    c:cmd("EHLO client.test", 250)
    c:cmd("MAIL FROM:<sender@remote.test>", 250)
    c:cmd("RCPT TO:<alice@elsewhere.test>", 554, "^554 5%.7%.1 ")
    c:cmd("QUIT", 221)
    c:close()
  end)

  it("answers 5xx after DATA when the only recipient is over quota", function()
    local code, text = send(srv.port, { "full@example.test" })
    -- All refused for good -> 550, with Dovecot's enhanced code and text.
    assert.equals(550, code, text)
    assert.truthy(text:find("^550 5%.2%.2 .*Quota exceeded"), text)
    assert.same({}, lmtp:messages("full"))
    srv:wait_log("deliver lmtp tx=%S+ to=<full@example%.test> target=%S+ result=reject " ..
      "code=552 ecode=5%.2%.2")
  end)

  it("answers 451 to good + over quota, and the good user still got it", function()
    local before = #lmtp:messages("alice")
    local code, text = send(srv.port, { "alice@example.test", "full@example.test" },
      "Subject: mixed\r\n\r\nmixed outcome\r\n.\r\n")
    assert.equals(451, code, text)
    assert.truthy(text:find("^451 4%.3%.0 Error: delivered to 1 of 2 recipients"), text)
    local msgs = lmtp:wait_messages("alice", before + 1)
    assert.truthy(msgs[#msgs]:find("Subject: mixed", 1, true))
    assert.same({}, lmtp:messages("full"))
    -- 451: nothing was acknowledged, so nothing is kept (the client retries).
    assert.same({}, H.files(srv.dir .. "/spool/queue"))
    srv:wait_log("deliver lmtp tx=%S+ to=<alice@example%.test> target=%S+ result=delivered")
  end)

  it("answers 451 when Dovecot cannot write the user's mailbox", function()
    local code, text = send(srv.port, { "stuck@example.test" })
    assert.equals(451, code, text)
    assert.truthy(text:find("^451 4%.2%.0 "), text)
    srv:wait_log("deliver lmtp tx=%S+ to=<stuck@example%.test> target=%S+ result=tempfail " ..
      "code=451 ecode=4%.2%.0")
  end)

  it("left nothing unusual in Dovecot's log: every session ended with QUIT", function()
    -- 4 deliveries and 9 RCPT-time checks in the tests above; the client
    -- reports before its QUIT is answered, so the last may still be going.
    H.wait_for(function()
      local _, quits = lmtp:log():gsub("Disconnect from local: Logged out", "")
      return quits >= 13
    end, 10, "13 LMTP sessions ended with QUIT\n" .. lmtp:log())
    local log = lmtp:log()
    assert.same({}, unusual_dovecot_lines(log))
    assert.truthy(log:find("saved mail to INBOX", 1, true))
  end)
end)

describe("examples/dovecot.lua with Dovecot over TCP #e2e #lmtp", function()
  local lmtp, srv

  lazy_setup(function()
    lmtp = peers.dovecot_lmtp{ users = { "dave" } }
    srv = H.start_server{ config_file = H.root .. "/examples/dovecot.lua",
      defines = { lmtp = "127.0.0.1:" .. lmtp.port, domains = "example.test,other.test" } }
  end)
  lazy_teardown(function()
    if srv then srv:stop() end
    if lmtp then lmtp:stop() end
  end)

  it("delivers with the built-in rule (a +tag stripped) over 127.0.0.1", function()
    local code, text = send(srv.port, { "Dave+news@other.test" })
    assert.equals(250, code, text)
    local msgs = lmtp:wait_messages("dave", 1)
    assert.truthy(msgs[1]:find("Delivered%-To: dave@other%.test"), msgs[1])
    srv:wait_log("deliver lmtp tx=%S+ to=<dave@other%.test> target=127%.0%.0%.1:%d+ " ..
      "result=delivered code=250")
  end)

  it("refuses an unknown user over TCP too", function()
    local c = H.connect(srv.port)
    c:expect(220)
    c:cmd("EHLO client.test", 250)
    c:cmd("MAIL FROM:<>", 250)
    c:cmd("RCPT TO:<erin@other.test>", 550, "^550 5%.1%.1 <erin@other%.test> User doesn't exist")
    c:close()
    assert.same({}, unusual_dovecot_lines(lmtp:log()))
  end)
end)

describe("deliver.lmtp failures and misuse #e2e #lmtp", function()
  local srv, sink, dir

  lazy_setup(function()
    dir = H.tmpdir()
    -- smtp-sink as an LMTP server that refuses the second recipient's RCPT
    -- is not possible per recipient, so faults come from separate sinks.
    sink = peers.smtp_sink{ lmtp = true, unix = true, dump = true }
    srv = H.start_server{ dir = dir, config = H.basic_config .. ([[
local deliver = require "luasmtpd.deliver"
local delivery = require "luasmtpd.delivery"
local sink = %q
function hooks.rcpt(s, rcpt)
  local lp = rcpt:match("^(.-)@")
  if lp == "check-down" then
    local r = deliver.lmtp_check{ to = "unix:/nonexistent/lmtp.sock", rcpt = rcpt }
    return smtp.tempfail(r.code, r.ecode, r.text)
  end
  if lp == "check-arg" then
    local ok, err = pcall(deliver.lmtp_check, { to = sink, rcpt = "not an address" })
    s:log("check-arg: " .. tostring(err))
  end
  return smtp.accept()
end
function hooks.message(s, msg)
  local first = msg.rcpts[1].address
  if first:match("^down@") then
    local res = deliver.lmtp{ to = "unix:" .. %q }
    s:log(("down: %%s %%s %%s"):format(res[1].code, res[1].ecode, tostring(res.error)))
    return delivery.verdict(res)
  end
  if first:match("^misuse@") then
    for _, bad in ipairs{ { }, { to = "nowhere" }, { to = sink, rcpts = { 7 } },
                          { to = sink, bogus = 1 }, { to = sink, timeout = -1 } } do
      local ok, err = pcall(deliver.lmtp, bad)
      s:log("misuse: " .. tostring(ok) .. " " .. tostring(err))
    end
  end
  if first:match("^some@") then
    local res = deliver.lmtp{ to = sink, rcpts = { msg.rcpts[2] } }
    s:log(("some: n=%%d %%s delivered=%%d"):format(#res, res[1].address, res.delivered))
    return delivery.verdict(res)
  end
  return delivery.verdict(deliver.lmtp{ to = sink })
end
]]):format("unix:" .. sink.socket, dir .. "/no.sock") }
  end)
  lazy_teardown(function()
    if srv then srv:stop() end
    if sink then sink:stop() end
  end)

  it("gives every recipient a 451 when the LMTP socket is missing, and logs it", function()
    local code, text = send(srv.port, { "down@example.test", "two@example.test" })
    assert.equals(451, code, text)
    assert.truthy(text:find("^451 4%.4%.1 Error: .*no%.sock: No such file or directory"), text)
    srv:wait_log("down: 451 4%.4%.1 connect to %S+no%.sock: No such file")
    assert.equals(2, srv:count_log("deliver lmtp tx=%S+ to=<%S+> target=unix:%S+no%.sock " ..
      "result=tempfail code=451 ecode=4%.4%.1"))
  end)

  it("answers the RCPT check with 451 when the LMTP server is down", function()
    local c = H.connect(srv.port)
    c:expect(220)
    c:cmd("EHLO client.test", 250)
    c:cmd("MAIL FROM:<a@remote.test>", 250)
    c:cmd("RCPT TO:<check-down@example.test>", 451, "^451 4%.4%.1 ")
    c:close()
  end)

  it("delivers only the chosen recipients (rcpts = { msg.rcpts[2] })", function()
    local before = #sink:messages()
    local code, text = send(srv.port, { "some@example.test", "chosen@example.test" })
    -- Only one of two recipients got a delivery: the rest is queued, 250.
    assert.equals(250, code, text)
    assert.truthy(text:find("queued as", 1, true), text)
    srv:wait_log("some: n=1 chosen@example%.test delivered=1")
    local msgs = sink:wait_messages(before + 1)
    assert.truthy(msgs[#msgs]:find("X-Rcpt-Args: <chosen@example.test>", 1, true))
    assert.is_nil(msgs[#msgs]:find("some@example.test>", 1, true))
  end)

  it("raises on misuse: no target, a bad target, a bad recipient, an unknown option", function()
    send(srv.port, { "misuse@example.test" })
    srv:wait_log("misuse: false deliver%.lmtp: timeout must be a number")
    local log = srv:log()
    assert.truthy(log:find("misuse: false deliver.lmtp: to = \\x22unix:/path\\x22 or " ..
      "\\x22host:port\\x22 is required", 1, true))
    assert.truthy(log:find("misuse: false deliver.lmtp: target nowhere has no port", 1, true))
    assert.truthy(log:find("misuse: false deliver: no recipient 7", 1, true))
    assert.truthy(log:find("misuse: false deliver.lmtp: unknown option 'bogus'", 1, true))
    assert.is_nil(log:find("misuse: true", 1, true))
  end)

  it("raises when lmtp_check gets something that is not an address", function()
    local c = H.connect(srv.port)
    c:expect(220)
    c:cmd("EHLO client.test", 250)
    c:cmd("MAIL FROM:<a@remote.test>", 250)
    c:cmd("RCPT TO:<check-arg@example.test>", 250)
    c:close()
    srv:wait_log("check%-arg: [^\n]*rcpt is not a valid address")
  end)

  it("refuses deliver.lmtp outside the message hook", function()
    local s2 = H.start_server{ config = H.basic_config .. [[
local deliver = require "luasmtpd.deliver"
function hooks.rcpt(s, rcpt)
  local ok, err = pcall(deliver.lmtp, { to = "unix:/x" })
  s:log("outside: " .. tostring(err))
  return smtp.accept()
end
]] }
    local c = H.session(s2.port)
    c:close()
    s2:wait_log("outside: [^\n]*deliver.lmtp: only in the message hook")
    s2:stop()
  end)
end)
