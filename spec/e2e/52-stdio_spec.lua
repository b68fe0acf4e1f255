-- luasmtpd --stdio (src/net/stdio.c): one session on standard input and
-- output, through two pipes, a socketpair and a recorded conversation in a
-- file; the process exits 0 when the session ends, after an accepted
-- message was delivered or committed, and opens no listener.
-- spec/support/stdio_client.py plays the client: it waits for each reply.
local H = require "spec.helpers"

local DRIVER = H.root .. "/spec/support/stdio_client.py"

local function config(dir, extra)
  return ([[
local smtp = require "luasmtpd"
local deliver = require "luasmtpd.deliver"
spool = smtp.var("spool")
hostname = "mx.example.test"
function hooks.rcpt(s, rcpt)
  if not rcpt:match("@example%%.test$") then return end
  return smtp.accept("seen " .. s.remote_ip .. " " .. s.listener)
end
function hooks.message(s, msg)
  if smtp.var("queue", "no") == "yes" then return end   -- commit to the queue
  local ok, err = deliver.maildir(%q, msg.rcpts)
  if not ok then return smtp.tempfail(451, "4.3.0", err) end
end
]]):format(dir .. "/mail") .. (extra or "")
end

-- Run a conversation (a list of script steps) through mode; returns the
-- replies (a list of strings), the rest, the exit status and stderr.
local function converse(mode, steps, opts)
  opts = opts or {}
  local dir = opts.dir or H.tmpdir()
  local conf = dir .. "/config.lua"
  H.write_file(conf, config(dir, opts.extra))
  local script = dir .. "/script.txt"
  H.write_file(script, table.concat(steps, "\n") .. "\n")
  local cmd = { "python3", H.q(DRIVER), mode, H.q(script), H.q(dir .. "/stderr.log"), "--",
    H.q(H.binary), "--stdio", "-c", H.q(conf), "-D", H.q("spool=" .. dir .. "/spool") }
  for _, d in ipairs(opts.defines or {}) do cmd[#cmd + 1] = "-D " .. H.q(d) end
  local out, rc = H.sh("timeout 60 " .. table.concat(cmd, " "))
  assert.equals(0, rc, out)
  local r = { replies = {}, dir = dir, out = out, log = H.read_file(dir .. "/stderr.log") or "" }
  for line in out:gmatch("[^\n]+") do
    local reply = line:match("^reply (.*)$")
    if reply then r.replies[#r.replies + 1] = reply end
    r.rest = r.rest or line:match("^rest (.*)$")
    r.exit = r.exit or tonumber(line:match("^exit (%d+)$"))
  end
  assert(r.exit, "the driver printed no exit status:\n" .. out)
  return r
end

local TRANSACTION = {
  "S:", "C: EHLO client.test", "S:", "C: MAIL FROM:<a@remote.test>", "S:",
  "C: RCPT TO:<alice@example.test>", "S:", "C: DATA", "S:",
  "C: Subject: through stdio", "C: ", "C: hello", "C: .", "S:", "C: QUIT", "S:",
}

describe("luasmtpd --stdio #e2e #stdio", function()
  it("carries a whole transaction through two pipes into a Maildir, and exits 0", function()
    local r = converse("pipes", TRANSACTION)
    assert.equals(0, r.exit, r.out .. r.log)
    assert.truthy(r.replies[1]:find("^220 mx%.example%.test ESMTP"), r.out)
    assert.truthy(r.replies[4]:find("^250 2%.1%.5 seen stdin stdio$"), r.out)
    assert.truthy(r.replies[6]:find("^250 2%.0%.0 Ok: delivered as "), r.out)
    assert.truthy(r.replies[7]:find("^221 "), r.out)
    assert.equals("b''", r.rest)
    local files = H.files(r.dir .. "/mail/new")
    assert.equals(1, #files)
    local msg = H.read_file(files[1])
    assert.truthy(msg:find("Received: from client%.test %(stdin%)\n"), msg)
    assert.truthy(msg:find("\nSubject: through stdio\n\nhello\n$"), msg)
    -- Logs on stderr, none on stdout; no listener was opened.
    assert.truthy(r.log:find("smtp connect ip=stdin port=0 listener=stdio", 1, true), r.log)
    assert.truthy(r.log:find("smtp disconnect reason=\"quit\"", 1, true), r.log)
    assert.is_nil(r.log:find("net listening", 1, true), r.log)
  end)

  it("uses one socket both ways when standard input is a socket (a socketpair)", function()
    local r = converse("socketpair", TRANSACTION)
    assert.equals(0, r.exit, r.out .. r.log)
    -- getpeername on a socketpair: a unix socket.
    assert.truthy(r.replies[4]:find("^250 2%.1%.5 seen unix stdio$"), r.out)
    assert.truthy(r.replies[6]:find("^250 2%.0%.0 Ok: delivered as "), r.out)
    assert.equals(1, #H.files(r.dir .. "/mail/new"))
  end)

  for _, mode in ipairs({ "pipes", "socketpair" }) do
    it("answers malformed input like on TCP (" .. mode .. ")", function()
      local r = converse(mode, { "S:", "C: EHLO", "S:", "C: HELO client.test", "S:",
        "RAW: b'MAIL FROM:<a@remote.test>\\n'", "S:", "C: MAIL FROM:<a@remote.test> BOGUS=1",
        "S:", "C: RCPT TO:<x@elsewhere.test>", "S:", "C: NOSUCHVERB", "S:",
        "REPEAT: 13000 X", "S:" })
      assert.equals(0, r.exit, r.out .. r.log)
      assert.truthy(r.replies[2]:find("^501 "), r.out)
      assert.truthy(r.replies[3]:find("^250 "), r.out)
      assert.truthy(r.replies[4]:find("^550 5%.5%.2 .*bare <LF>"), r.out)
      assert.truthy(r.replies[5]:find("^555 "), r.out)
      assert.truthy(r.replies[6]:find("^503 "), r.out)
      assert.truthy(r.replies[7]:find("^500 "), r.out)
      -- A line without an end past the bound: 500 and the session ends.
      assert.truthy(r.replies[8]:find("^500 5%.5%.2 "), r.out)
      assert.truthy(r.log:find("smtp disconnect", 1, true), r.log)
    end)
  end

  it("ends the session and exits 0 when standard input ends without QUIT", function()
    local r = converse("pipes", { "S:", "C: EHLO client.test", "S:", "CLOSE" })
    assert.equals(0, r.exit, r.out .. r.log)
    assert.equals("b''", r.rest)
    assert.truthy(r.log:find("smtp disconnect reason=\"client disconnected without QUIT\"",
      1, true), r.log)
  end)

  it("exits only after an accepted message is committed, even if input ends at the dot", function()
    local steps = { "S:", "C: EHLO client.test", "S:", "C: MAIL FROM:<a@remote.test>", "S:",
      "C: RCPT TO:<bob@example.test>", "S:", "C: DATA", "S:", "C: Subject: last words",
      "C: ", "C: hello", "C: .", "CLOSE" }
    local r = converse("pipes", steps, { defines = { "queue=yes" } })
    assert.equals(0, r.exit, r.out .. r.log)
    assert.truthy(r.log:find("queue committed tx=", 1, true), r.log)
    local queued = H.nonempty_files(r.dir .. "/spool/queue")
    assert.equals(2, #queued, table.concat(queued, "\n"))  -- the message and its envelope
  end)

  -- The banner goes out before the input is read, so a recording is no
  -- early talker; commands behind the end of data other than a lone QUIT
  -- are pipelining an unauthenticated client may not do.
  local function replay(extra, lines)
    local dir = H.tmpdir()
    local conf = dir .. "/config.lua"
    H.write_file(conf, config(dir, extra))
    H.write_file(dir .. "/conversation.txt", table.concat(lines, "\r\n") .. "\r\n")
    local out, rc = H.sh(("{ timeout 30 %s --stdio -c %s -D spool=%s < %s > %s 2>%s; }"):format(
      H.q(H.binary), H.q(conf), H.q(dir .. "/spool"), H.q(dir .. "/conversation.txt"),
      H.q(dir .. "/replies.txt"), H.q(dir .. "/stderr.log")))
    assert.equals(0, rc, out .. (H.read_file(dir .. "/stderr.log") or ""))
    return H.read_file(dir .. "/replies.txt"), dir
  end
  local ONE = { "EHLO client.test", "MAIL FROM:<a@remote.test>", "RCPT TO:<carol@example.test>",
    "DATA", "Subject: recorded", "", "replayed", "." }

  it("replays a recorded conversation read from a file at once", function()
    local lines = { unpack(ONE) }
    lines[#lines + 1] = "QUIT"
    local replies, dir = replay("", lines)
    assert.truthy(replies:find("\r\n250 2%.0%.0 Ok: delivered as [%x.]+\r\n221 "), replies)
    assert.equals(1, #H.files(dir .. "/mail/new"))
  end)

  it("replays two transactions only with forbid_unauth_pipelining off", function()
    local lines = { unpack(ONE) }
    for i = 2, #ONE do lines[#lines + 1] = ONE[i] end
    lines[#lines + 1] = "QUIT"
    local replies, dir = replay("", lines)
    assert.truthy(replies:find("delivered as [%x.]+\r\n554 5%.5%.0 "), replies)
    assert.equals(1, #H.files(dir .. "/mail/new"))
    replies, dir = replay("forbid_unauth_pipelining = false\n", lines)
    assert.is_nil(replies:find("554", 1, true), replies)
    assert.equals(2, #H.files(dir .. "/mail/new"))
  end)

  it("needs no listen setting, and -t accepts such a config with --stdio only", function()
    local dir = H.tmpdir()
    local conf = dir .. "/config.lua"
    H.write_file(conf, config(dir))
    local out, rc = H.sh(("%s -t --stdio -c %s -D spool=%s"):format(H.q(H.binary), H.q(conf),
      H.q(dir .. "/spool")))
    assert.equals(0, rc, out)
    out, rc = H.sh(("%s -t -c %s -D spool=%s"):format(H.q(H.binary), H.q(conf),
      H.q(dir .. "/spool")))
    assert.equals(1, rc, out)
    assert.truthy(out:find("no listener", 1, true), out)
  end)
end)
