-- deliver.pipe: delivery by running a command (no shell), against the
-- real binary.  The targets are the scripts in spec/fixtures/pipe/; the
-- message hook picks one by the first recipient's local part.
local H = require "spec.helpers"

local FX = H.root .. "/spec/fixtures/pipe"

-- The hook logs a summary of each results table; the specs read it back.
local CONFIG = [[
local smtp = require "luasmtpd"
local deliver = require "luasmtpd.deliver"
local delivery = require "luasmtpd.delivery"
listen = smtp.var("listen")
spool = smtp.var("spool")
hostname = "mx.example.test"
timeouts = { hook = tonumber(smtp.var("hook_timeout", "60")) }
local fx, out = smtp.var("fixtures"), smtp.var("out")

function hooks.rcpt(s, rcpt)
  if rcpt:match("@example%.test$") then return smtp.accept() end
end

local cases = {
  record = { argv = { fx .. "/record.py" }, env = { OUT = out .. "/record" } },
  env = { argv = { fx .. "/record.py" }, env = { OUT = out .. "/env", GREETING = "hello world" } },
  crlf = { argv = { fx .. "/record.py" }, env = { OUT = out .. "/crlf" }, crlf = true },
  big = { argv = { fx .. "/record.py" }, env = { OUT = out .. "/big" } },
  two = { argv = { fx .. "/record.py" }, env = { OUT = out .. "/two" } },
  path = { argv = { fx .. "/record.py" }, env = { OUT = out .. "/path", PATH = "/opt/x" } },
  meta = { argv = { fx .. "/record.py", "$(touch " .. out .. "/pwned1); rm -rf /",
                    "`touch " .. out .. "/pwned2`", "; touch " .. out .. "/pwned3 &&",
                    "*", "a  b", "'\"\\", "" },
           env = { OUT = out .. "/meta" } },
  tempfail = { argv = { fx .. "/exit.sh", "75", "mailbox is locked" } },
  dataerr = { argv = { fx .. "/exit.sh", "65", "bad\tdata\r\nsecond line \1\127\200" } },
  nouser = { argv = { fx .. "/exit.sh", "67", "no such user" } },
  nohost = { argv = { fx .. "/exit.sh", "68" } },
  oserr = { argv = { fx .. "/exit.sh", "71" } },
  other = { argv = { fx .. "/exit.sh", "3" } },
  hang = { argv = { fx .. "/hang.sh", out .. "/hang.pid" }, timeout = 1 },
  stubborn = { argv = { fx .. "/hang.sh", out .. "/stubborn.pid", "ignore-term" }, timeout = 1 },
  linger = { argv = { fx .. "/hang.sh", out .. "/linger.pid" }, timeout = 30 },
  gone = { argv = { fx .. "/hang.sh", out .. "/gone.pid" }, timeout = 2 },
  flood = { argv = { fx .. "/flood.sh", "6291456", "65" } },
  early = { argv = { fx .. "/close_early.sh" } },
  killed = { argv = { fx .. "/kill_self.sh" } },
  missing = { argv = { out .. "/no-such-program" } },
  relative = { argv = { "spec/fixtures/pipe/record.py" } },
  nonstring = { argv = { fx .. "/record.py", 42 } },
  badenv = { argv = { fx .. "/record.py" }, env = { ["BAD-NAME"] = "x" } },
  badopt = { argv = { fx .. "/record.py" }, tiemout = 5 },
  badtimeout = { argv = { fx .. "/record.py" }, timeout = 0 },
}

function hooks.message(s, msg)
  local what = msg.rcpts[1].address:match("^[^@]+")
  local opts = cases[what]
  if not opts then return smtp.tempfail(451, "4.3.0", "no case " .. what) end
  local res = deliver.pipe(opts)
  local o = res[1]
  smtp.log("info", ("pipe-result case=%s size=%d n=%d delivered=%d tempfail=%d reject=%d " ..
    "code=%d ecode=%s exit=%s signal=%s output_len=%d dropped=%d textlen=%d error=%s text=%s")
    :format(what, msg.size, #res, res.delivered, res.tempfail, res.reject, o.code, o.ecode,
      tostring(res.exit), tostring(res.signal), #res.output, res.output_dropped, #o.text,
      tostring(res.error), o.text))
  return delivery.verdict(res)
end
]]

local function start(extra)
  local dir = H.tmpdir()
  local out = dir .. "/out"
  H.sh("mkdir -p " .. H.q(out))
  local defines = { fixtures = FX, out = out }
  for k, v in pairs(extra or {}) do defines[k] = v end
  local srv = H.start_server{ dir = dir, config = CONFIG, defines = defines }
  srv.out = out
  return srv
end

-- Send one message to <case>@example.test (and more recipients).
local function send(srv, case, body, rcpts)
  local list = { case .. "@example.test" }
  for _, r in ipairs(rcpts or {}) do list[#list + 1] = r end
  local c = H.session(srv.port, { rcpts = list })
  c:cmd("DATA", 354)
  c:send(body or "Subject: pipe\r\n\r\nhello\r\n.\r\n")
  return c
end

-- The hook's summary line for a case (from " size=" to the end, no quote).
local function result_line(srv, case)
  return (srv:wait_log("pipe%-result case=" .. case .. "( [^\n]*)"):gsub('"$', ""))
end

-- A reply of class n (luasmtpd.delivery picks the code; the enhanced code
-- and the text come from the outcome).
local function expect_class(c, n, pattern, timeout)
  local code, text, lines = c:reply(timeout)
  assert(code and math.floor(code / 100) == n, table.concat(lines or { tostring(text) }, " | "))
  assert(text:find(pattern), ("reply %q does not match %q"):format(text, pattern))
  return text
end

local function field(line, name)
  return line:match(" " .. name .. "=(%S+)")
end

local function split0(s)
  local t = {}
  for part in (s .. "\0"):gmatch("([^%z]*)%z") do t[#t + 1] = part end
  return t
end

local function env_of(path)
  local env = {}
  for _, kv in ipairs(split0(H.read_file(path))) do
    local k, v = kv:match("^([^=]+)=(.*)$")
    if k then env[k] = v end
  end
  return env
end

local function pids(path)
  local s = H.wait_for(function() return H.read_file(path) end, 10, path)
  local a, b = s:match("(%d+) (%d+)")
  return tonumber(a), tonumber(b)
end

-- Gone for good: no process, not even a zombie waiting to be reaped.
local function gone(pid)
  return H.read_file("/proc/" .. pid .. "/stat") == nil
end

-- A zombie child of pid (unreaped), if any.
local function zombie_children(pid)
  local out = H.sh("ps -o pid=,stat= --ppid " .. pid)
  local z = {}
  for p, st in out:gmatch("(%d+)%s+(%S+)") do
    if st:sub(1, 1) == "Z" then z[#z + 1] = p end
  end
  return z
end

describe("deliver.pipe #e2e", function()
  local srv, real_bin

  lazy_setup(function()
    -- The server's own environment carries a marker the child must not see.
    local dir = H.tmpdir()
    local wrapper = dir .. "/luasmtpd-with-marker"
    H.write_file(wrapper, "#!/bin/sh\nLUASMTPD_SPEC_MARKER=leaked; export LUASMTPD_SPEC_MARKER\n" ..
      "exec " .. H.q(H.binary) .. ' "$@"\n')
    H.sh("chmod +x " .. H.q(wrapper))
    real_bin = H.binary
    H.binary = wrapper
    local ok, s = pcall(start)
    H.binary = real_bin
    assert(ok, s)
    srv = s
  end)
  lazy_teardown(function() srv:stop() end)

  it("feeds the message with LF line ends, Received: first, dot-unstuffed, and delivers", function()
    local c = send(srv, "record", "Subject: pipe test\r\nX-Test: 1\r\n\r\nline one\r\n" ..
      "..dotted\r\n..\r\nlast\r\n.\r\n")
    local text = c:expect(250, "^250 2%.0%.0 Ok: delivered as ")
    c:close()
    local msg = H.read_file(srv.out .. "/record.msg")
    assert.truthy(msg:find("^Received: from client%.test "), msg)
    assert.truthy(msg:find("\nSubject: pipe test\nX%-Test: 1\n\nline one\n%.dotted\n%.\nlast\n$"), msg)
    assert.is_nil(msg:find("\r", 1, true))
    local line = result_line(srv, "record")
    assert.equals("250", field(line, "code"))
    assert.equals("0", field(line, "exit"))
    assert.truthy(line:find("text=delivered to command " .. FX:gsub("%p", "%%%0") .. "/record%.py$"))
    -- Nothing left to queue: the command took it.
    assert.same({}, H.files(srv.dir .. "/spool/queue"))
    assert.truthy(text)
  end)

  it("keeps CRLF with crlf = true", function()
    local c = send(srv, "crlf", "Subject: crlf\r\n\r\na\r\n..b\r\n.\r\n")
    c:expect(250)
    c:close()
    local msg = H.read_file(srv.out .. "/crlf.msg")
    assert.truthy(msg:find("^Received: from client%.test "), msg)
    assert.truthy(msg:find("\r\nSubject: crlf\r\n\r\na\r\n%.b\r\n$"), msg)
    local _, lfs = msg:gsub("\n", "")
    local _, crlfs = msg:gsub("\r\n", "")
    assert.equals(lfs, crlfs)
  end)

  it("converts CRLF exactly across chunk boundaries of a 1 MiB message", function()
    -- Lines of 0..5 bytes repeat every 27 bytes; 16384 is 22 mod 27 and
    -- 22 is prime to 27, so over 27 chunk boundaries (1 MiB covers 66)
    -- every offset in the cycle is hit, whatever the Received: length: a
    -- CR ends some chunk with its LF at the start of the next.
    local lines, expect = {}, {}
    for i = 1, 240000 do
      local l = ("abcde"):sub(1, i % 6)
      lines[#lines + 1] = l .. "\r\n"
      expect[#expect + 1] = l .. "\n"
    end
    local body = "Subject: big\r\n\r\n" .. table.concat(lines)
    local c = send(srv, "big", body .. ".\r\n")
    c:expect(250)
    c:close()
    local msg = H.read_file(srv.out .. "/big.msg")
    local at = msg:find("\nSubject: big\n", 1, true)
    assert.truthy(at)
    assert.equals("\nSubject: big\n\n" .. table.concat(expect), msg:sub(at))
  end)

  it("passes argv with shell metacharacters literally and runs nothing else", function()
    local c = send(srv, "meta")
    c:expect(250)
    c:close()
    local out = srv.out
    assert.same({ "$(touch " .. out .. "/pwned1); rm -rf /", "`touch " .. out .. "/pwned2`",
                  "; touch " .. out .. "/pwned3 &&", "*", "a  b", "'\"\\", "" },
      split0(H.read_file(out .. "/meta.args")))
    for i = 1, 3 do assert.is_nil(H.read_file(out .. "/pwned" .. i)) end
  end)

  it("gives the child exactly the documented environment, nothing inherited", function()
    -- The server itself has the marker (and HOME, etc.) in its environment.
    local senv = H.read_file("/proc/" .. srv.pid .. "/environ")
    assert.truthy(senv:find("LUASMTPD_SPEC_MARKER=leaked", 1, true))
    local c = send(srv, "env")
    local _, lines = c:expect(250)
    c:close()
    local env = env_of(srv.out .. "/env.env")
    local qid = lines[#lines]:match("delivered as (%S+)")
    assert.same({
      PATH = "/usr/bin:/bin", SENDER = "sender@remote.test", RECIPIENT = "env@example.test",
      RECIPIENTS = "env@example.test", SIZE = env.SIZE, QUEUE_ID = qid,
      CLIENT_ADDRESS = "127.0.0.1", CLIENT_HELO = "client.test",
      OUT = srv.out .. "/env", GREETING = "hello world",
    }, env)
    local line = result_line(srv, "env")
    assert.truthy(tonumber(env.SIZE) > 0)
    assert.equals(field(line, "size"), env.SIZE)
    assert.truthy(qid and qid:match("^%x+%.%d+$"), lines[#lines])
  end)

  it("lists several recipients in RECIPIENTS and sets no RECIPIENT", function()
    local c = send(srv, "two", nil, { "second@example.test" })
    c:expect(250)
    c:close()
    local env = env_of(srv.out .. "/two.env")
    assert.equals("two@example.test\nsecond@example.test", env.RECIPIENTS)
    assert.is_nil(env.RECIPIENT)
    local line = result_line(srv, "two")
    assert.equals("2", field(line, "n"))
    assert.equals("2", field(line, "delivered"))
  end)

  it("lets env replace a built-in such as PATH", function()
    local c = send(srv, "path")
    c:expect(250)
    c:close()
    local env = env_of(srv.out .. "/path.env")
    assert.equals("/opt/x", env.PATH)
    local n = 0
    for _ in pairs(env) do n = n + 1 end
    assert.equals(9, n)	-- 8 built-ins (no duplicate PATH) + OUT
  end)

  it("answers 451 4.3.0 for exit 75 (EX_TEMPFAIL), with the command's output", function()
    local c = send(srv, "tempfail")
    c:expect(451, "^451 4%.3%.0 Error: command failed: exit 75 %(EX_TEMPFAIL%): mailbox is locked$")
    c:close()
    local line = result_line(srv, "tempfail")
    assert.equals("75", field(line, "exit"))
    assert.equals("1", field(line, "tempfail"))
    -- Not delivered: the spool keeps nothing either (the client retries).
    assert.same({}, H.files(srv.dir .. "/spool/queue"))
  end)

  it("rejects exit 65 (EX_DATAERR) with 554 5.6.0, control characters cleaned", function()
    local c = send(srv, "dataerr")
    expect_class(c, 5, "^5%d%d 5%.6%.0 Error: command failed: exit 65 %(EX_DATAERR%): " ..
      "bad data second line %?$")
    c:close()
    local line = result_line(srv, "dataerr")
    assert.equals("1", field(line, "reject"))
    assert.equals("554", field(line, "code"))
  end)

  it("answers 550 5.1.1 for exit 67 (EX_NOUSER)", function()
    local c = send(srv, "nouser")
    c:expect(550, "^550 5%.1%.1 Error: command failed: exit 67 %(EX_NOUSER%): no such user$")
    c:close()
  end)

  it("answers 550 5.1.2 for exit 68 and 554 5.3.0 for an exit outside sysexits", function()
    local c = send(srv, "nohost")
    c:expect(550, "^550 5%.1%.2 Error: command failed: exit 68 %(EX_NOHOST%)$")
    c:close()
    c = send(srv, "other")
    expect_class(c, 5, "^5%d%d 5%.3%.0 Error: command failed: exit 3$")
    c:close()
    assert.equals("554", field(result_line(srv, "other"), "code"))
  end)

  it("treats exit 71 (EX_OSERR) as temporary, as Postfix does", function()
    local c = send(srv, "oserr")
    c:expect(451, "^451 4%.3%.0 .*EX_OSERR")
    c:close()
  end)

  it("answers 451 4.3.0 naming the signal when the command is killed", function()
    local c = send(srv, "killed")
    c:expect(451, "^451 4%.3%.0 Error: command killed by signal 9 %(SIGKILL%)$")
    c:close()
    assert.equals("9", field(result_line(srv, "killed"), "signal"))
  end)

  it("delivers when the command closes stdin early and exits 0", function()
    local body = "Subject: early\r\n\r\n" .. ("x"):rep(998) .. "\r\n"
    local c = send(srv, "early", body:rep(300) .. ".\r\n")
    c:expect(250)
    c:close()
    local written = tonumber(srv:wait_log("pipe end tx=%S+ pid=%d+ status=\"exit 0\" " ..
      "duration=%S+ written=(%d+) stdin=closed%-early"))
    assert.truthy(written < 300000)
  end)

  it("answers 451 4.3.0 when the program cannot be executed", function()
    local c = send(srv, "missing")
    c:expect(451, "^451 4%.3%.0 Error: cannot execute .*/no%-such%-program: No such file or directory$")
    c:close()
    srv:wait_log("pipe start%-failed tx=%S+ error=\"cannot execute")
  end)

  it("times out a hanging command with 451 4.4.2, serving others meanwhile, and leaves no process", function()
    local c = send(srv, "hang")
    local child, grandchild = pids(srv.out .. "/hang.pid")
    -- Another session is served while the command hangs.
    local other = H.connect(srv.port)
    other:expect(220)
    other:cmd("EHLO other.test", 250)
    other:cmd("QUIT", 221)
    other:close()
    c:expect(451, "^451 4%.4%.2 Error: command timed out after 1 s$")
    c:close()
    H.wait_for(function() return gone(child) end, 5, "the child to be reaped")
    H.wait_for(function() return not H.alive(grandchild) end, 5, "the grandchild to die")
    srv:wait_log("pipe timeout tx=%S+ pid=" .. child .. " after=%S+ signal=SIGTERM")
  end)

  it("sends SIGKILL after the grace period to a command that ignores SIGTERM", function()
    local c = send(srv, "stubborn")
    local child, grandchild = pids(srv.out .. "/stubborn.pid")
    c:expect(451, "^451 4%.4%.2 ", 15)
    c:close()
    srv:wait_log("pipe timeout tx=%S+ pid=" .. child .. " signal=SIGKILL")
    H.wait_for(function() return gone(child) end, 5, "the child to be reaped")
    H.wait_for(function() return not H.alive(grandchild) end, 5, "the grandchild to die")
  end)

  -- The core stops reading from a client while its hook runs, so a
  -- disconnect is seen once the hook ends: here when the command times out.
  it("kills the command, and leaves no process and no zombie, when the client disconnects meanwhile", function()
    local c = send(srv, "gone")
    local child, grandchild = pids(srv.out .. "/gone.pid")
    assert.truthy(H.alive(child))
    c:close()
    -- The server notices the client is gone and cancels the delivery at
    -- once, long before the command's own timeout.
    srv:wait_log("pipe cancel tx=%S+ pid=" .. child .. " signal=SIGKILL", 3)
    srv:wait_log("pipe reaped tx=%S+ pid=" .. child, 3)
    H.wait_for(function() return gone(child) end, 5, "the child to be reaped")
    H.wait_for(function() return not H.alive(grandchild) end, 5, "the grandchild to die")
    local sid = srv:wait_log("(%x+) pipe start tx=%S+ cmd=%S+ pid=" .. child)
    srv:wait_log(sid .. " smtp disconnect ")
    assert.same({}, zombie_children(srv.pid))
    assert.truthy(srv:alive())
  end)

  for _, t in ipairs{
    { "relative", "argv%[1%] must be an absolute path" },
    { "nonstring", "argv%[2%] is a number, not a string" },
    { "badenv", "env names are" },
    { "badopt", "unknown option 'tiemout'" },
    { "badtimeout", "timeout must be in" },
  } do
    it("raises for misuse (" .. t[1] .. "): the client gets 451 4.3.0", function()
      local c = send(srv, t[1])
      c:expect(451, "^451 4%.3%.0 ")
      c:close()
      srv:wait_log("hook error hook=message error=\"[^\n]*deliver%.pipe: " .. t[2])
    end)
  end
end)

describe("deliver.pipe with a command that floods its output #e2e", function()
  local srv
  lazy_setup(function() srv = start() end)
  lazy_teardown(function() srv:stop() end)

  local function hwm_kib()
    return tonumber(H.read_file("/proc/" .. srv.pid .. "/status"):match("VmHWM:%s*(%d+) kB"))
  end

  it("keeps output_max bytes, drops and counts the rest, and stays small", function()
    -- Warm up (first session, Lua state) so the peak measures the flood.
    local c = send(srv, "nouser")
    c:expect(550)
    c:close()
    local before = hwm_kib()
    c = send(srv, "flood")
    local text = expect_class(c, 5, "^5%d%d 5%.6%.0 Error: command failed: exit 65 %(EX_DATAERR%): xxx", 30)
    c:close()
    assert.truthy(#text <= 4 + 6 + 400, #text)
    local line = result_line(srv, "flood")
    assert.equals("4096", field(line, "output_len"))
    assert.equals(tostring(6291456 - 4096), field(line, "dropped"))
    assert.truthy(tonumber(field(line, "textlen")) <= 400)
    -- The end line says what was dropped, and stays short itself.
    local endline = srv:wait_log("(pipe end [^\n]*output=4096 dropped=6287360 [^\n]*)")
    assert.truthy(#endline < 2000, #endline)
    -- Several MiB went through; the peak RSS grew by far less.
    assert.truthy(hwm_kib() - before < 2048, ("VmHWM grew %d KiB"):format(hwm_kib() - before))
  end)
end)

describe("deliver.pipe when the hook times out #e2e", function()
  it("kills and reaps the command, and the client gets 451 4.3.0", function()
    local srv = start{ hook_timeout = "1" }
    local c = send(srv, "linger")
    local child, grandchild = pids(srv.out .. "/linger.pid")
    c:expect(451, "^451 4%.3%.0 ")
    c:close()
    srv:wait_log("pipe cancel tx=%S+ pid=" .. child)
    H.wait_for(function() return gone(child) end, 5, "the child to be reaped")
    H.wait_for(function() return not H.alive(grandchild) end, 5, "the grandchild to die")
    srv:stop()
  end)
end)

describe("the pipe runner in C (socketpair mode, cancel, timeout) #e2e", function()
  it("passes its checks under AddressSanitizer", function()
    local dir = H.tmpdir()
    local bin = dir .. "/pipe_runner_test"
    local r = H.root
    local src = function(p) return H.q(r .. "/" .. p) end
    local out, rc = H.sh(("cc -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Werror " ..
      "-fsanitize=address,undefined -fno-sanitize-recover=all -I%s -o %s %s %s %s %s -lev")
      :format(src("src"), H.q(bin), src("spec/fixtures/pipe/runner_test.c"),
        src("src/deliver/pipe.c"), src("src/util/log.c"), src("src/util/xmalloc.c")))
    assert.equals(0, rc, out)
    out, rc = H.sh(H.q(bin) .. " " .. H.q(dir))
    assert.equals(0, rc, out)
    assert.truthy(out:find("all ok", 1, true), out)
  end)
end)

describe("examples/pipe.lua #e2e", function()
  local srv
  -- exit.sh CODE TEXT: the local part picks the exit code, the recipient
  -- comes back in the reply text, so the argument expansion shows.
  lazy_setup(function()
    srv = H.start_server{ config_file = H.root .. "/examples/pipe.lua",
      defines = { command = FX .. "/exit.sh", args = "{user} <{recipient}>",
                  domains = "example.test" } }
  end)
  lazy_teardown(function() srv:stop() end)

  it("runs the command once per recipient and answers 250 when each exits 0", function()
    local c = H.session(srv.port, { rcpts = { "0@example.test", "00@example.test" } })
    c:cmd("DATA", 354)
    c:send("Subject: x\r\n\r\nhi\r\n.\r\n")
    c:expect(250, "^250 2%.0%.0 Ok: delivered as ")
    c:close()
    assert.equals(2, srv:count_log("pipe start tx=%S+ cmd=\"[^\"]*/exit%.sh\""))
  end)

  it("passes each expanded argument as one argument (exit 67 -> 550 5.1.1)", function()
    local c = H.session(srv.port, { from = "", rcpts = { "67@example.test" } })
    c:cmd("DATA", 354)
    c:send("Subject: x\r\n\r\nhi\r\n.\r\n")
    c:expect(550, "^550 5%.1%.1 Error: command failed: exit 67 %(EX_NOUSER%): <67@example%.test>$")
    c:close()
  end)

  it("answers 451 when one recipient is delivered and another fails", function()
    local c = H.session(srv.port, { rcpts = { "0@example.test", "75@example.test" } })
    c:cmd("DATA", 354)
    c:send("Subject: x\r\n\r\nhi\r\n.\r\n")
    c:expect(451, "delivered to 1 of 2 recipients")
    c:close()
  end)
end)
