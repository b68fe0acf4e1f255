-- Unix-domain socket listeners (src/net/listener.c): mode and owner, a
-- session over the socket, no per-address limit, a stale socket replaced,
-- a live one or a file left alone, the socket removed at exit, and the
-- config's checks (lua_config_listen.c).
local H = require "spec.helpers"

-- As root the owner really changes; otherwise chown to ourselves.
local function owner_group()
  local uid = tonumber((H.sh("id -u")))
  if uid == 0 then return "nobody", "nogroup" end
  return (H.sh("id -un")):gsub("%s+$", ""), (H.sh("id -gn")):gsub("%s+$", "")
end

local function config(dir, sock, extra)
  local owner, group = owner_group()
  return ([[
local smtp = require "luasmtpd"
local deliver = require "luasmtpd.deliver"
listen = {
  smtp.var("listen"),
  { address = "unix:%s", mode = "0660", owner = %q, group = %q },
  { address = "unix:%s.proxy", proxy = true },
}
spool = smtp.var("spool")
hostname = "mx.example.test"
limits = { max_connections_per_ip = 1 }
function hooks.rcpt(s, rcpt)
  return smtp.accept("seen " .. s.remote_ip .. " " .. s.remote_port .. " " .. s.listener)
end
function hooks.message(s, msg)
  local ok, err = deliver.maildir(%q, msg.rcpts)
  if not ok then return smtp.tempfail(451, "4.3.0", err) end
end
]]):format(sock, owner, group, sock, dir .. "/mail") .. (extra or "")
end

local function stat(path)
  local out, rc = H.sh("stat -c '%F %a %U %G' " .. H.q(path))
  if rc ~= 0 then return nil end
  return (out:gsub("%s+$", ""))
end

-- A socket file nobody accepts on, as a crash leaves it.
local function stale_socket(path)
  local s = require("socket.unix")()
  assert(s:bind(path))
  s:close()
  assert(stat(path):find("^socket "), stat(path))
end

-- Run the binary to its end (a start that must fail): output, status.
local function run(conf, dir, args)
  return H.sh(("timeout 20 %s %s -c %s -D listen=127.0.0.1:0 -D spool=%s"):format(
    H.q(H.binary), args or "", H.q(conf), H.q(dir .. "/spool")))
end

describe("unix-socket listeners #e2e #unix", function()
  local srv, dir, sock

  lazy_setup(function()
    dir = H.tmpdir()
    sock = dir .. "/smtp.sock"
    stale_socket(sock)
    srv = H.start_server{ dir = dir, config = config(dir, sock) }
    srv:wait_log("net listening addr=unix:" .. sock:gsub("%p", "%%%0") .. " tls=none\n")
  end)
  lazy_teardown(function() if srv then srv:stop() end end)

  it("replaced the stale socket at its path", function()
    srv:wait_log("net stale%-socket%-removed path=" .. sock:gsub("%p", "%%%0"))
  end)

  it("set the socket's mode, owner and group", function()
    local owner, group = owner_group()
    assert.equals(("socket 660 %s %s"):format(owner, group), stat(sock))
  end)

  it("carries a session: Lua, the logs and Received: say unix", function()
    local c = H.connect_unix(sock)
    c:expect(220, "^220 mx%.example%.test ESMTP")
    c:cmd("EHLO client.test", 250)
    c:cmd("MAIL FROM:<a@remote.test>", 250)
    c:cmd("RCPT TO:<u@example.test>", 250, "seen unix 0 unix:" .. sock:gsub("%p", "%%%0") .. "$")
    c:cmd("DATA", 354)
    c:send("Subject: over a unix socket\r\n\r\nhi\r\n.\r\n")
    c:expect(250)
    c:cmd("QUIT", 221)
    c:close()
    srv:wait_log("smtp connect ip=unix port=0 listener=unix:" .. sock:gsub("%p", "%%%0"))
    local files = H.files(dir .. "/mail/new")
    assert.equals(1, #files)
    assert.truthy(H.read_file(files[1]):find("Received: from client%.test %(unix%)\n"))
  end)

  it("does not limit unix clients per address", function()
    local a, b = H.connect_unix(sock), H.connect_unix(sock)
    a:expect(220)
    b:expect(220)
    -- The TCP listener still counts: one from 127.0.0.1 at a time.
    local t1, t2 = H.connect(srv.port), H.connect(srv.port)
    t1:expect(220)
    t2:expect(421, "^421 4%.7%.0 ")
    for _, c in ipairs({ a, b, t1, t2 }) do c:close() end
  end)

  it("takes a PROXY header on a unix socket without proxy_from", function()
    local c = H.connect_unix(sock .. ".proxy")
    c:send("PROXY TCP4 192.0.2.7 127.0.0.1 40001 25\r\n")
    c:expect(220)
    c:cmd("EHLO client.test", 250)
    c:cmd("MAIL FROM:<a@remote.test>", 250)
    c:cmd("RCPT TO:<u@example.test>", 250, "seen 192%.0%.2%.7 40001 ")
    c:close()
    local d = H.connect_unix(sock .. ".proxy")
    d:send("EHLO client.test\r\n")
    assert.is_true(d:closed())
  end)

  it("removes its sockets at exit", function()
    srv:stop()
    srv = nil
    assert.is_nil(stat(sock))
    assert.is_nil(stat(sock .. ".proxy"))
  end)
end)

describe("unix-socket paths that are not ours #e2e #unix", function()
  it("will not take over a socket another process accepts on", function()
    local dir = H.tmpdir()
    local sock = dir .. "/live.sock"
    local live = require("socket.unix")()
    assert(live:bind(sock))
    assert(live:listen(4))
    local conf = dir .. "/config.lua"
    H.write_file(conf, config(dir, sock))
    local out, rc = run(conf, dir)
    live:close()
    assert.equals(1, rc, out)
    assert.truthy(out:find("another process accepts on this socket", 1, true), out)
    assert.truthy(stat(sock):find("^socket "))
  end)

  it("refuses a file at the path, and leaves it", function()
    local dir = H.tmpdir()
    local path = dir .. "/file.sock"
    H.write_file(path, "not a socket\n")
    local conf = dir .. "/config.lua"
    H.write_file(conf, config(dir, path))
    local out, rc = run(conf, dir, "-t")
    assert.equals(1, rc, out)
    assert.truthy(out:find("exists and is not a socket", 1, true), out)
    assert.equals("not a socket\n", H.read_file(path))
  end)
end)

describe("unix-socket listener settings #e2e #unix", function()
  local function check(listener, pattern)
    local dir = H.tmpdir()
    local conf = dir .. "/config.lua"
    H.write_file(conf, ([[
local smtp = require "luasmtpd"
listen = { smtp.var("listen"), %s }
spool = smtp.var("spool")
]]):format(listener:gsub("DIR", dir)))
    local out, rc = run(conf, dir, "-t")
    assert.equals(1, rc, out)
    assert.truthy(out:find(pattern, 1, true), out)
    assert.truthy(out:find("config.lua:2: ", 1, true), out)
  end

  it("refuses a mode that is not octal digits", function()
    check('{ address = "unix:DIR/s.sock", mode = "999" }', "listen.mode must be a string of octal")
    check('{ address = "unix:DIR/s.sock", mode = 0660 }', "listen.mode must be a string of octal")
    check('{ address = "unix:DIR/s.sock", mode = "01777" }', "listen.mode must be")
  end)

  it("refuses an unknown owner or group", function()
    check('{ address = "unix:DIR/s.sock", owner = "no-such-user-here" }',
      "listen.owner: no user named 'no-such-user-here'")
    check('{ address = "unix:DIR/s.sock", group = "no-such-group-here" }',
      "listen.group: no group named 'no-such-group-here'")
  end)

  it("refuses mode, owner and group on a TCP listener", function()
    check('{ address = "127.0.0.1:0", mode = "0600" }', "are for a unix: address")
  end)

  it("refuses proxy_from on a unix socket", function()
    check('{ address = "unix:DIR/s.sock", proxy = true, proxy_from = { "127.0.0.1" } }',
      "a unix socket takes no proxy_from")
  end)

  it("refuses a path that is too long, has a space, or whose directory is missing", function()
    check('"unix:DIR/' .. ("x"):rep(120) .. '"', "longer than 107 bytes")
    check('"unix:DIR/a b.sock"', "has a space or control character")
    check('"unix:DIR/missing/s.sock"', "No such file or directory")
    check('"unix:"', "no path after unix:")
  end)
end)
