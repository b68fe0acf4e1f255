-- 27-add_header_spec.lua — header fields added by hooks (tx:add_header,
-- msg:add_header) reach every delivery path: Maildir, SMTP (smtp-sink),
-- a pipe, the queue's envelope; msg:headers() sees them; they are folded
-- and checked.
local H = require "spec.helpers"
local peers = require "spec.support.peers"

describe("tx:add_header #e2e", function()
  local srv, sink, dir

  lazy_setup(function()
    dir = H.tmpdir()
    sink = peers.smtp_sink{ dump = true }
    srv = H.start_server{ dir = dir, defines = { maildir = dir .. "/mail",
      sink = "127.0.0.1:" .. sink.port }, config = [[
local smtp = require "luasmtpd"
local deliver = require "luasmtpd.deliver"
listen = smtp.var("listen")
spool = smtp.var("spool")
hostname = "mx.example.test"
local root, sink = smtp.var("maildir"), smtp.var("sink")
local long = ("word "):rep(60)

function hooks.rcpt(s, rcpt)
  if rcpt:match("^badname") then s.tx:add_header("Bad Name", "x") end
  if rcpt:match("^badvalue") then s.tx:add_header("X-Bad", "a\r\nRCPT TO:<x@y>") end
  s.tx:add_header("Received-SPF", "pass (mx.example.test: test) client-ip=127.0.0.1;")
  return smtp.accept()
end

function hooks.message(s, msg)
  msg:add_header("X-Long", long)
  local before = msg:header("X-Later")
  msg:add_header("X-Later", "after the cache")
  s:log("later=" .. tostring(before) .. "/" .. tostring(msg:header("X-Later")) ..
    " spf=" .. tostring(msg:header("Received-SPF") ~= nil))
  local to = msg.rcpts[1].address
  if to:match("^maildir") then
    assert(deliver.maildir(root .. "/box"))
    return smtp.accept()
  elseif to:match("^smtp") then
    local res = deliver.smtp{ host = "127.0.0.1", port = tonumber(sink:match(":(%d+)$")),
      starttls = "none" }
    return res.delivered == 1 and smtp.accept() or smtp.tempfail()
  elseif to:match("^pipe") then
    local res = deliver.pipe{ argv = { "/bin/sh", "-c", "cat > " .. root .. "/piped" } }
    return res.delivered == 1 and smtp.accept() or smtp.tempfail()
  end
  return smtp.accept()	-- queued
end
]] }
  end)
  lazy_teardown(function()
    srv:stop()
    sink:stop()
  end)

  local function transaction(rcpt)
    local c = H.session(srv.port, { rcpts = {} })
    c:send("RCPT TO:<" .. rcpt .. ">\r\n")
    local code, text = c:reply()
    if code ~= 250 then c:close() return code, text end
    c:cmd("DATA", 354)
    c:send("Subject: add\r\n\r\nbody\r\n.\r\n")
    code, text = c:reply()
    c:cmd("QUIT", 221)
    c:close()
    return code, text
  end

  -- The header section of a message as lines (unfolded), CRLF or LF.
  local function header_lines(m)
    local hdr = m:match("^(.-)\r?\n\r?\n") or m
    return hdr
  end

  it("puts the added fields above our Received: in a Maildir copy, folded, LF line ends", function()
    assert.equals(250, (transaction("maildir@example.test")))
    local files = H.files(dir .. "/mail/box/new")
    assert.equals(1, #files)
    local m = H.read_file(files[1])
    assert.falsy(m:find("\r", 1, true), "CR in a Maildir file")
    local spf = m:find("\nReceived%-SPF: pass")
    local long = m:find("\nX%-Long: word")
    local later = m:find("\nX%-Later: after the cache")
    local received = m:find("\nReceived: from")
    assert.truthy(spf and long and later and received, m)
    assert.is_true(spf < long and long < later and later < received, "order:\n" .. m)
    for line in header_lines(m):gmatch("[^\n]+") do
      assert(#line <= 78 or not line:find(" "), "a line of " .. #line .. " octets: " .. line)
    end
    local x = m:match("\nX%-Long: (.-)\n[^ \t]")
    assert.equals(("word "):rep(60):gsub(" $", ""), (x:gsub("\n ", " "):gsub(" $", "")))
    srv:wait_log("later=nil/after the cache spf=true")
  end)

  it("sends them first over SMTP (smtp-sink)", function()
    assert.equals(250, (transaction("smtp@example.test")))
    local msgs = sink:wait_messages(1)
    assert.truthy(msgs[1]:find("\nReceived%-SPF: pass"), msgs[1])
    assert.truthy(msgs[1]:find("\nX%-Long: word"), msgs[1])
  end)

  it("feeds them first to a pipe", function()
    assert.equals(250, (transaction("pipe@example.test")))
    local m = H.wait_for(function() return H.read_file(dir .. "/mail/piped") end, 5, "the pipe's output")
    assert.truthy(m:find("^Received%-SPF: pass"), m)
  end)

  it("keeps them in the queue's envelope", function()
    local code, text = transaction("queue@example.test")
    assert.equals(250, code, text)
    local env
    for _, f in ipairs(H.files(dir .. "/spool/queue")) do
      if f:match("%.env$") then env = H.read_file(f) end
    end
    assert.truthy(env, "no envelope")
    local h = env:match("\nheaders (%S+)\n")
    assert.truthy(h, env)
    local decoded = h:gsub("%+(%x%x)", function(x) return string.char(tonumber(x, 16)) end)
    assert.truthy(decoded:find("^Received%-SPF: pass"), decoded)
    assert.truthy(decoded:find("\r\nX%-Later: after the cache\r\n$"), decoded)
  end)

  it("refuses a bad field name as a hook error (451)", function()
    assert.equals(451, (transaction("badname@example.test")))
    srv:wait_log("add_header: a header name is")
  end)

  it("refuses CR LF in a value as a hook error (451): nothing is smuggled", function()
    assert.equals(451, (transaction("badvalue@example.test")))
    srv:wait_log("add_header: a header value is")
  end)
end)
