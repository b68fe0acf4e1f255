-- Lua hooks: verdicts at every stage, rewriting, errors, runaway hooks,
-- and hooks that yield without blocking anyone.
local H = require "spec.helpers"

local function queued(srv)
  local out = {}
  for _, f in ipairs(H.files(srv.dir .. "/spool/queue")) do
    if not f:match("%.env$") then out[#out + 1] = f end
  end
  return out
end

-- The verdict each hook returns is chosen by the client: the HELO name,
-- the sender's local part or the recipient's local part names it.
local verdict_config = H.basic_config .. [[
local function pick(word)
  if word == "reject" then return smtp.reject()
  elseif word == "reject-custom" then return smtp.reject(553, "5.7.9", "Custom refusal")
  elseif word == "tempfail" then return smtp.tempfail()
  elseif word == "tempfail-custom" then return smtp.tempfail(450, "4.2.1", "Slow down")
  elseif word == "disconnect" then return smtp.disconnect()
  elseif word == "discard" then return smtp.discard()
  elseif word == "accept" then return smtp.accept("Welcome")
  elseif word == "string-reject" then return "reject"
  elseif word == "false" then return false
  elseif word == "number" then return 42
  elseif word == "error" then error("boom in the hook")
  end
end
function hooks.helo(s, name) return pick(name:match("^(.-)%.") ) end
function hooks.mail(s, sender, params) return pick(sender:match("^(.-)@")) end
function hooks.rcpt(s, rcpt, params)
  local lp = rcpt:match("^(.-)@")
  local v = pick(lp)
  if v ~= nil then return v end
  if rcpt:match("@example%.test$") then return smtp.accept() end
end
function hooks.data(s)
  local first = s.tx.rcpts[1].original:match("^data%-(.-)@")
  return pick(first)
end
function hooks.message(s, msg)
  return pick(msg:header("Subject"))
end
function hooks.vrfy(s, arg) return pick(arg) end
]]

describe("hook verdicts #e2e", function()
  local srv

  lazy_setup(function() srv = H.start_server{ config = verdict_config } end)
  lazy_teardown(function() srv:stop() end)

  local function helo(name)
    local c = H.connect(srv.port)
    c:expect(220)
    c:send("EHLO " .. name .. "\r\n")
    return c
  end

  it("helo: reject gives 550 5.7.1 and leaves the client ungreeted", function()
    local c = helo("reject.test")
    c:expect(550, "^550 5%.7%.1 ")
    c:cmd("MAIL FROM:<a@remote.test>", 503)
    c:close()
  end)

  it("helo: a custom code and text", function()
    local c = helo("reject-custom.test")
    c:expect(553, "^553 5%.7%.9 Custom refusal$")
    c:close()
  end)

  it("helo: tempfail gives 450 4.7.1", function()
    local c = helo("tempfail.test")
    c:expect(450, "^450 4%.7%.1 ")
    c:close()
  end)

  it("helo: disconnect gives 421 4.7.0 and closes", function()
    local c = helo("disconnect.test")
    c:expect(421, "^421 4%.7%.0 ")
    assert.is_true(c:closed())
  end)

  it("mail: reject gives 550 5.7.1", function()
    local c = H.session(srv.port, { from = false })
    c:cmd("MAIL FROM:<reject@remote.test>", 550, "^550 5%.7%.1 ")
    c:cmd("RCPT TO:<b@example.test>", 503)
    c:close()
  end)

  it("mail: tempfail with a custom code", function()
    local c = H.session(srv.port, { from = false })
    c:cmd("MAIL FROM:<tempfail-custom@remote.test>", 450, "^450 4%.2%.1 Slow down$")
    c:close()
  end)

  it("mail: accept with a text", function()
    local c = H.session(srv.port, { from = false })
    c:cmd("MAIL FROM:<accept@remote.test>", 250, "^250 2%.1%.0 Welcome$")
    c:close()
  end)

  it("mail: the strings 'reject' and false are verdicts too", function()
    local c = H.session(srv.port, { from = false })
    c:cmd("MAIL FROM:<string-reject@remote.test>", 550)
    c:cmd("MAIL FROM:<false@remote.test>", 550)
    c:close()
  end)

  it("rcpt: reject, tempfail and the default (relay denied)", function()
    local c = H.session(srv.port, { rcpts = {} })
    c:cmd("RCPT TO:<reject@example.test>", 554, "^554 5%.7%.1 ")
    c:cmd("RCPT TO:<tempfail@example.test>", 451, "^451 4%.7%.1 ")
    c:cmd("RCPT TO:<someone@elsewhere.test>", 554, "relay access denied")
    c:cmd("RCPT TO:<someone@example.test>", 250)
    c:close()
  end)

  it("data: reject gives 554 5.7.1 before 354", function()
    local c = H.session(srv.port, { rcpts = { "data-reject@example.test" } })
    c:cmd("DATA", 554, "^554 5%.7%.1 ")
    c:close()
  end)

  it("data: tempfail gives 451 4.7.1", function()
    local c = H.session(srv.port, { rcpts = { "data-tempfail@example.test" } })
    c:cmd("DATA", 451, "^451 4%.7%.1 ")
    c:close()
  end)

  it("data: the verdict also applies to BDAT", function()
    local c = H.session(srv.port, { rcpts = { "data-reject@example.test" } })
    c:send("BDAT 3\r\nabcBDAT 2 LAST\r\nde")
    c:expect(554)
    c:expect(554)
    c:cmd("NOOP", 250)
    c:close()
  end)

  it("data: with BDAT a disconnect verdict replies 421 and closes, never a tempfail", function()
    local c = H.session(srv.port, { rcpts = { "data-disconnect@example.test" } })
    c:send("BDAT 3\r\nabc")
    c:expect(421, "^421 4%.7%.0 ")
    assert.truthy(c:closed())
  end)

  it("data: with BDAT a hook error gives 451 4.3.0 to every chunk", function()
    local c = H.session(srv.port, { rcpts = { "data-error@example.test" } })
    c:send("BDAT 3\r\nabcBDAT 2 LAST\r\nde")
    c:expect(451, "^451 4%.3%.0 ")
    c:expect(451, "^451 4%.3%.0 ")
    c:cmd("NOOP", 250)
    c:close()
  end)

  it("data: with BDAT a custom tempfail keeps its code and enhanced code", function()
    local c = H.session(srv.port, { rcpts = { "data-tempfail-custom@example.test" } })
    c:send("BDAT 2 LAST\r\nde")
    c:expect(450, "^450 4%.2%.1 Slow down")
    c:close()
  end)

  local function send_message(subject)
    local c = H.session(srv.port)
    c:cmd("DATA", 354)
    c:send("Subject: " .. subject .. "\r\n\r\nbody\r\n.\r\n")
    return c
  end

  it("message: reject gives 550 5.7.1 and stores nothing", function()
    local before = #queued(srv)
    local c = send_message("reject")
    c:expect(550, "^550 5%.7%.1 ")
    assert.equals(before, #queued(srv))
    c:close()
  end)

  it("message: tempfail gives 451 4.7.1 and stores nothing", function()
    local before = #queued(srv)
    local c = send_message("tempfail")
    c:expect(451, "^451 4%.7%.1 ")
    assert.equals(before, #queued(srv))
    c:close()
  end)

  it("message: discard answers 250 and stores nothing", function()
    local before = #queued(srv)
    local c = send_message("discard")
    c:expect(250)
    assert.equals(before, #queued(srv))
    srv:wait_log("smtp discarded")
    c:close()
  end)

  it("message: the default queues the message durably, then 250", function()
    local before = #queued(srv)
    local c = send_message("anything")
    c:expect(250, "queued as")
    assert.equals(before + 1, #queued(srv))
    c:close()
  end)

  it("message: disconnect gives 421 and closes", function()
    local c = send_message("disconnect")
    c:expect(421)
    assert.is_true(c:closed())
  end)

  it("vrfy: the hook may answer 250 or 550", function()
    local c = H.session(srv.port, { from = false })
    c:cmd("VRFY accept", 250, "^250 2%.1%.5 ")
    c:cmd("VRFY reject", 550, "^550 5%.1%.1 ")
    c:cmd("VRFY nobody", 252)
    c:close()
  end)

  it("a hook error gives 451 4.3.0, a logged traceback, and the server goes on", function()
    local c = H.session(srv.port, { from = false })
    c:cmd("MAIL FROM:<error@remote.test>", 451, "^451 4%.3%.0 ")
    srv:wait_log("hook error hook=mail error=\"[^\"]*boom in the hook")
    assert.truthy(srv:log():find("stack traceback:", 1, true))
    c:cmd("MAIL FROM:<fine@remote.test>", 250)
    c:close()
    local d = H.session(srv.port)
    d:close()
  end)

  it("a hook that returns something that is not a verdict gives 451 4.3.0", function()
    local c = H.session(srv.port, { from = false })
    c:cmd("MAIL FROM:<number@remote.test>", 451, "^451 4%.3%.0 ")
    srv:wait_log("a hook must return a verdict, not a number")
    c:close()
  end)
end)

describe("connect hook #e2e", function()
  local srv

  lazy_setup(function()
    srv = H.start_server{ config = H.basic_config .. [[
function hooks.connect(s)
  local mode = s.data.mode
  -- The remote port tells this test which verdict to use.
  local m = io.open(]] .. "\"" .. "/tmp/luasmtpd-connect-mode" .. "\"" .. [[)
  if m then mode = m:read("*l") m:close() end
  if mode == "reject" then return smtp.reject(554, "5.7.1", "Go away") end
  if mode == "tempfail" then return smtp.tempfail() end
  if mode == "error" then error("connect broke") end
  return smtp.accept("Hello " .. s.remote_ip)
end
]] }
  end)
  lazy_teardown(function()
    os.remove("/tmp/luasmtpd-connect-mode")
    srv:stop()
  end)

  local function mode(m) H.write_file("/tmp/luasmtpd-connect-mode", m .. "\n") end

  it("accept: the greeting may carry the hook's text", function()
    mode("accept")
    local c = H.connect(srv.port)
    c:expect(220, "^220 mx%.example%.test Hello 127%.0%.0%.1$")
    c:close()
  end)

  it("reject: 554, then 503 to everything but QUIT", function()
    mode("reject")
    local c = H.connect(srv.port)
    c:expect(554, "^554 5%.7%.1 mx%.example%.test Go away$")
    c:cmd("EHLO client.test", 503, "^503 5%.5%.1 ")
    c:cmd("QUIT", 221)
    assert.is_true(c:closed())
  end)

  it("tempfail: 421 and close", function()
    mode("tempfail")
    local c = H.connect(srv.port)
    c:expect(421, "^421 4%.7%.0 ")
    assert.is_true(c:closed())
  end)

  it("error: 421 4.3.0 and close", function()
    mode("error")
    local c = H.connect(srv.port)
    c:expect(421, "^421 4%.3%.0 ")
    assert.is_true(c:closed())
  end)
end)

describe("recipient rewriting #e2e", function()
  local srv

  lazy_setup(function()
    srv = H.start_server{ config = H.basic_config .. [[
function hooks.rcpt(s, rcpt)
  local lp = rcpt:match("^(.-)@example%.test$")
  if lp == "alias" then return smtp.rewrite("real@example.test") end
  if lp then return smtp.accept{ rewrite = lp .. "@rewritten.test" } end
  if rcpt:match("@bad%.test$") then return smtp.rewrite("not an address") end
end
function hooks.message(s, msg)
  for _, r in ipairs(msg.rcpts) do
    s:log(("rcpt %d %s <- %s"):format(r.index, r.address, r.original))
  end
end
]] }
  end)
  lazy_teardown(function() srv:stop() end)

  it("delivers to the rewritten address and keeps the original", function()
    local c = H.session(srv.port, { rcpts = { "alias@example.test", "bob@example.test" } })
    c:cmd("DATA", 354)
    c:send("x\r\n.\r\n")
    c:expect(250)
    srv:wait_log("rcpt 1 real@example%.test <%- alias@example%.test")
    srv:wait_log("rcpt 2 bob@rewritten%.test <%- bob@example%.test")
    local env
    for _, f in ipairs(H.files(srv.dir .. "/spool/queue")) do
      if f:match("%.env$") then env = H.read_file(f) end
    end
    assert.truthy(env:find("\nrcpt real@example.test alias@example.test ", 1, true), env)
    assert.truthy(env:find("\nrcpt bob@rewritten.test bob@example.test ", 1, true), env)
    c:close()
  end)

  it("refuses a rewrite to an invalid mailbox as a hook error (451 4.3.0)", function()
    local c = H.session(srv.port, { rcpts = {} })
    c:cmd("RCPT TO:<x@bad.test>", 451, "^451 4%.3%.0 ")
    srv:wait_log("is not a valid mailbox")
    c:close()
  end)
end)

describe("session and transaction objects #e2e", function()
  it("expose addresses, names, the transaction and a per-session table", function()
    local srv = H.start_server{ config = H.basic_config .. [[
function hooks.helo(s, name) s.data.helo_seen = name end
function hooks.rcpt(s, rcpt, params)
  s:log(("who id=%s ip=%s port=%d lip=%s lport=%d helo=%s esmtp=%s seen=%s"):format(
    s.id, s.remote_ip, s.remote_port, s.local_ip, s.local_port, s.helo,
    tostring(s.esmtp), s.data.helo_seen))
  s:log(("tx id=%s sender=%s size=%s body=%s utf8=%s params=%s nrcpts=%d"):format(
    s.tx.id, s.tx.sender, tostring(s.tx.size), s.tx.body, tostring(s.tx.smtputf8),
    s.tx.params.SIZE, #s.tx.rcpts))
  return smtp.accept()
end
function hooks.message(s, msg)
  s:log(("msg id=%s size=%d subject=%s nhdr=%d body=%s"):format(msg.id, msg.size,
    msg:header("subject"), #msg:headers(), (msg:body():gsub("\r\n", "|"))))
end
]] }
    local c = H.session(srv.port, { from = false })
    c:cmd("MAIL FROM:<a@remote.test> SIZE=42 BODY=8BITMIME SMTPUTF8", 250)
    c:cmd("RCPT TO:<b@example.test>", 250)
    c:cmd("RCPT TO:<c@example.test>", 250)
    c:cmd("DATA", 354)
    c:send("Subject: Folded\r\n  subject\r\nX-A: 1\r\n\r\nthe body\r\n.\r\n")
    c:expect(250)
    local id = srv:wait_log("who id=(%x+) ip=127%.0%.0%.1 port=%d+ lip=127%.0%.0%.1 " ..
      "lport=%d+ helo=client%.test esmtp=true seen=client%.test")
    assert.equals(16, #id)
    srv:wait_log("tx id=" .. id .. "%.1 sender=a@remote%.test size=42 body=8BITMIME " ..
      "utf8=true params=42 nrcpts=0")
    srv:wait_log("tx id=" .. id .. "%.1 .* nrcpts=1")
    -- 3 headers: our Received:, Subject (unfolded) and X-A.
    srv:wait_log("msg id=" .. id .. "%.1 size=48 subject=Folded  subject nhdr=3 " ..
      "body=the body|")
    c:close()
    srv:stop()
  end)

  it("raise 'session is closed' when used after the session ended", function()
    local srv = H.start_server{ config = H.basic_config .. [[
local kept
function hooks.helo(s, name)
  if kept then
    local ok, err = pcall(function() return kept.remote_ip end)
    s:log("old session: " .. tostring(ok) .. " " .. tostring(err))
  end
  kept = s
end
]] }
    local a = H.connect(srv.port)
    a:expect(220)
    a:cmd("EHLO one.test", 250)
    a:cmd("QUIT", 221)
    assert.is_true(a:closed())
    srv:wait_log("smtp disconnect")
    local b = H.connect(srv.port)
    b:expect(220)
    b:cmd("EHLO two.test", 250)
    srv:wait_log("old session: false [^\"]*session is closed")
    b:close()
    srv:stop()
  end)
end)

describe("hooks that yield #e2e", function()
  local srv

  lazy_setup(function()
    srv = H.start_server{ config = H.basic_config .. [[
timeouts = { hook = 1, hook_cpu = 0.3 }
local released = false
function hooks.rcpt(s, rcpt)
  local lp = rcpt:match("^(.-)@")
  if lp == "waiter" then
    -- Can only finish after another session's hook has run: if sleeping
    -- blocked the server, the other session could never get there.
    local t0 = smtp.now()
    while not released and smtp.now() - t0 < 0.9 do smtp.sleep(0.01) end
    if not released then return smtp.tempfail(451, "4.0.0", "never released") end
    released = false
    return smtp.accept("released")
  elseif lp == "releaser" then
    released = true
    return smtp.accept("released the waiter")
  elseif lp == "spin" then
    while true do end
  elseif lp == "spin-pcall" then
    while true do pcall(function() while true do end end) end
  elseif lp == "sleepy" then
    smtp.sleep(5)
  elseif lp == "napper" then
    smtp.sleep(0.3)
    return smtp.accept("rested")
  elseif lp == "deepsleep" then
    smtp.sleep(0.9)
    s:log("deepsleep woke up")
  elseif lp == "yielder" then
    coroutine.yield()
  elseif lp == "badverdict" then
    return smtp.reject(250)
  end
  return smtp.accept()
end
]] }
  end)
  lazy_teardown(function() srv:stop() end)

  it("a sleeping hook blocks nobody: the second session is answered first", function()
    local a = H.session(srv.port, { rcpts = {} })
    local b = H.session(srv.port, { rcpts = {} })
    a:send("RCPT TO:<waiter@example.test>\r\n")
    -- a's hook is now sleeping; b must still be served.
    b:cmd("RCPT TO:<releaser@example.test>", 250, "released the waiter")
    a:expect(250, "released$")
    a:close()
    b:close()
  end)

  it("stops a runaway `while true do end` with 451 4.3.0", function()
    local c = H.session(srv.port, { rcpts = {} })
    c:cmd("RCPT TO:<spin@example.test>", 451, "^451 4%.3%.0 ")
    srv:wait_log("hook exceeded its CPU time limit")
    c:cmd("RCPT TO:<ok@example.test>", 250)
    c:close()
  end)

  it("stops a runaway loop that hides behind pcall", function()
    local c = H.session(srv.port, { rcpts = {} })
    c:cmd("RCPT TO:<spin-pcall@example.test>", 451, "^451 4%.3%.0 ")
    c:close()
  end)

  it("stops a hook that waits longer than timeouts.hook with 451 4.3.0", function()
    local c = H.session(srv.port, { rcpts = {} })
    c:cmd("RCPT TO:<sleepy@example.test>", 451, "^451 4%.3%.0 ")
    srv:wait_log("hook timed out")
    c:close()
  end)

  it("notices a client that leaves while its hook sleeps, and cancels the hook", function()
    local c = H.session(srv.port, { rcpts = {} })
    c:send("RCPT TO:<deepsleep@example.test>\r\n")
    H.sleep(0.05)
    c:close()
    -- Long before the 0.9 s sleep would end:
    srv:wait_log("smtp client%-gone while=rcpt", 0.6)
    srv:wait_log("reason=\"client disconnected while busy\"", 0.6)
    H.sleep(1)
    assert.is_nil(srv:log():find("deepsleep woke up", 1, true))
  end)

  it("still answers commands pipelined before the client half-closes", function()
    local c = H.session(srv.port, { rcpts = {} })
    c:send("RCPT TO:<napper@example.test>\r\nNOOP\r\nQUIT\r\n")
    c.sock:shutdown("send")
    c:expect(250, "rested$")
    c:expect(250)
    c:expect(221)
    assert.is_true(c:closed())
  end)

  it("treats a hook that yields by itself as an error", function()
    local c = H.session(srv.port, { rcpts = {} })
    c:cmd("RCPT TO:<yielder@example.test>", 451, "^451 4%.3%.0 ")
    c:close()
  end)

  it("treats a malformed verdict (reject with 250) as an error", function()
    local c = H.session(srv.port, { rcpts = {} })
    c:cmd("RCPT TO:<badverdict@example.test>", 451, "^451 4%.3%.0 ")
    srv:wait_log("reply code must be 500%.%.599")
    c:close()
  end)

  it("keeps serving after all of that", function()
    local c = H.session(srv.port)
    c:cmd("DATA", 354)
    c:send("x\r\n.\r\n")
    c:expect(250)
    c:close()
  end)
end)

describe("reset and disconnect hooks #e2e", function()
  it("run at RSET and when the session ends", function()
    local srv = H.start_server{ config = H.basic_config .. [[
function hooks.reset(s) s:log("reset hook ran") end
function hooks.disconnect(s)
  smtp.sleep(0.01)
  smtp.log("disconnect hook ran for " .. s.id)
end
]] }
    local c = H.session(srv.port, { from = false })
    c:cmd("RSET", 250)
    srv:wait_log("reset hook ran")
    c:cmd("QUIT", 221)
    local id = srv:wait_log("(%x+) smtp disconnect")
    srv:wait_log("disconnect hook ran for " .. id)
    srv:stop()
  end)
end)
