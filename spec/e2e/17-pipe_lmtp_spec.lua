-- LMTP over stdio: deliver.pipe{ lmtp = true } runs an LMTP server as a
-- child (here Dovecot's own lmtp, standalone) and speaks LMTP (RFC 2033)
-- to its stdin/stdout; each recipient's outcome is the child's answer.
local H = require "spec.helpers"
local peers = require "spec.support.peers"

local LMTP = "/usr/lib/dovecot/lmtp"

describe("deliver.pipe{ lmtp = true } with Dovecot's lmtp on stdio #e2e #lmtp", function()
  local dovecot, srv

  lazy_setup(function()
    dovecot = peers.dovecot_lmtp{ users = { "alice", "bob" }, quota_full = { "full" } }
    srv = H.start_server{ config = H.basic_config .. ([[
local delivery = require "luasmtpd.delivery"
local deliver = require "luasmtpd.deliver"
timeouts = { hook = 10 }
function hooks.message(s, msg)
  local argv = { %q, "-c", %q }
  local lp = msg.rcpts[1].address:match("^(.-)@")
  if lp == "garbage" then argv = { %q } end
  if lp == "dies" then argv = { "/bin/true" } end
  if lp == "hangs" then argv = { "/bin/sleep", "30" } end
  local res = deliver.pipe{ argv = argv, lmtp = true, timeout = 2 }
  s:log(("pipe-lmtp-result exit=%%s n=%%d first=%%d/%%s"):format(tostring(res.exit),
    #res, res[1].code, res[1].ecode))
  return delivery.verdict(res)
end
]]):format(LMTP, dovecot.config, H.root .. "/spec/fixtures/pipe/garbage_lmtp.sh") }
  end)
  lazy_teardown(function()
    if srv then srv:stop() end
    if dovecot then dovecot:stop() end
  end)

  local function send(rcpts)
    local c = H.session(srv.port, { rcpts = rcpts })
    c:cmd("DATA", 354)
    c:send("Subject: over stdio\r\n\r\nhello through a pipe\r\n.\r\n")
    local code, text = c:reply(20)
    c:close()
    return code, text
  end

  it("delivers through the child and reads its LMTP answer", function()
    local code, text = send({ "alice@example.test" })
    assert.equals(250, code, text)
    local msgs = dovecot:wait_messages("alice", 1)
    assert.truthy(msgs[1]:find("hello through a pipe", 1, true))
    srv:wait_log("deliver pipe%-lmtp tx=%S+ to=<alice@example%.test> target=" ..
      LMTP:gsub("%p", "%%%0") .. " result=delivered code=250 ecode=2%.0%.0")
    srv:wait_log("pipe%-lmtp%-result exit=0 n=1 first=250/2%.0%.0")
  end)

  it("gives each recipient its own answer: delivered + over quota -> 451", function()
    local code, text = send({ "bob@example.test", "full@example.test" })
    assert.equals(451, code, text)
    assert.equals(1, #dovecot:wait_messages("bob", 1))
    srv:wait_log("to=<full@example%.test> target=%S+ result=reject code=552 ecode=5%.2%.2")
  end)

  it("refuses an unknown user with Dovecot's 550 5.1.1", function()
    local code, text = send({ "nobody-here@example.test" })
    assert.equals(550, code, text)
    assert.truthy(text:find("^550 5%.1%.1 "), text)
  end)

  it("answers 451 when the child does not speak LMTP", function()
    local code, text = send({ "garbage@example.test" })
    assert.equals(451, code, text)
    srv:wait_log("to=<garbage@example%.test> target=%S+ result=tempfail code=451 " ..
      "ecode=4%.5%.0 text=\"[^\"]*protocol error")
  end)

  it("answers 451 when the child exits at once", function()
    local code, text = send({ "dies@example.test" })
    assert.equals(451, code, text)
    srv:wait_log("to=<dies@example%.test> target=/bin/true result=tempfail code=451")
  end)

  it("answers 451 when the child never answers, and leaves no process", function()
    local code, text = send({ "hangs@example.test" })
    assert.equals(451, code, text)
    srv:wait_log("to=<hangs@example%.test> target=/bin/sleep result=tempfail code=451")
    local pid = tonumber(srv:wait_log("pipe start tx=%S+ cmd=\"/bin/sleep\" pid=(%d+)"))
    H.wait_for(function() return not H.alive(pid) end, 5, "the child to be gone")
  end)
end)
