-- examples/default.lua: local domains into Maildirs, nothing relayed.
local H = require "spec.helpers"

describe("examples/default.lua with Maildir delivery #e2e", function()
  local srv, maildir

  lazy_setup(function()
    local dir = H.tmpdir()
    maildir = dir .. "/mail"
    srv = H.start_server{ dir = dir, config_file = H.root .. "/examples/default.lua",
      defines = { maildir = maildir, domains = "example.test,other.test",
                  hostname = "mx.example.test" } }
  end)
  lazy_teardown(function() srv:stop() end)

  it("stores one copy per recipient in <domain>/<local-part>/new", function()
    local c = H.session(srv.port, { rcpts = { "Alice@Example.test", "bob@example.test",
                                               "carol@other.test" } })
    c:cmd("DATA", 354)
    c:send("Subject: three\r\n\r\nline one\r\n..dotted\r\n.\r\n")
    c:expect(250, "^250 2%.0%.0 Ok: delivered as")
    for _, who in ipairs{ { "example.test/alice", "Alice@Example.test" },
                          { "example.test/bob", "bob@example.test" },
                          { "other.test/carol", "carol@other.test" } } do
      local files = H.files(maildir .. "/" .. who[1] .. "/new")
      assert.equals(1, #files, who[1])
      local name = files[1]:match("[^/]+$")
      local size = tonumber(name:match("^%d+%.M%d+P%d+Q%d+%.mx%.example%.test,S=(%d+)$"))
      assert.truthy(size, name)
      local msg = H.read_file(files[1])
      assert.equals(#msg, size)
      -- Trace headers first, LF line ends, the body unstuffed.
      assert.truthy(msg:find("^Return%-Path: <sender@remote%.test>\nDelivered%-To: " ..
        who[2]:gsub("%.", "%%.") .. "\nReceived: from client%.test"))
      assert.truthy(msg:find("\nSubject: three\n\nline one\n.dotted\n$"))
      assert.is_nil(msg:find("\r", 1, true))
      assert.same({}, H.files(maildir .. "/" .. who[1] .. "/tmp"))
    end
    -- Delivered everywhere: nothing left in the spool.
    assert.same({}, H.files(srv.dir .. "/spool/queue"))
    assert.same({}, H.nonempty_files(srv.dir .. "/spool/tmp"))
    c:close()
  end)

  it("logs each delivery with the session id, recipient and outcome", function()
    local id = srv:wait_log("(%x+) deliver maildir tx=%x+%.%d+ to=<carol@other%.test> " ..
      "target=%S+/other%.test/carol result=delivered code=250")
    assert.equals(16, #id)
  end)

  it("refuses an unknown domain as relaying with 554 5.7.1", function()
    local c = H.session(srv.port, { rcpts = {} })
    c:cmd("RCPT TO:<x@elsewhere.test>", 554, "^554 5%.7%.1 ")
    c:close()
  end)

  -- Quoted, UTF-8 and odd local parts get a safe Maildir of their own
  -- (spec/e2e/22-maildir_paths_spec.lua); only an empty one has none.
  it("refuses an empty local part with 550 5.1.1", function()
    local c = H.session(srv.port, { rcpts = {} })
    c:cmd('RCPT TO:<""@example.test>', 550, "^550 5%.1%.1 ")
    c:cmd('RCPT TO:<"../x"@example.test>', 250)
    c:close()
  end)

  it("accepts <Postmaster> and delivers it to postmaster of the first domain", function()
    local c = H.session(srv.port, { rcpts = { "Postmaster" } })
    c:cmd("DATA", 354)
    c:send("Subject: pm\r\n\r\nhi\r\n.\r\n")
    c:expect(250)
    assert.equals(1, #H.files(maildir .. "/example.test/postmaster/new"))
    c:close()
  end)
end)

describe("a Maildir that cannot be written #e2e", function()
  it("answers 451 4.3.0 and acknowledges nothing", function()
    local dir = H.tmpdir()
    H.write_file(dir .. "/notadir", "x")
    local srv = H.start_server{ dir = dir, config_file = H.root .. "/examples/default.lua",
      defines = { maildir = dir .. "/notadir/mail" } }
    local c = H.session(srv.port, { rcpts = { "a@example.test" } })
    c:cmd("DATA", 354)
    c:send("x\r\n.\r\n")
    c:expect(451, "^451 4%.3%.0 ")
    srv:wait_log("deliver maildir .* result=tempfail code=451 ecode=4%.3%.0 text=\"mkdir")
    assert.same({}, H.files(dir .. "/spool/queue"))
    c:close()
    srv:stop()
  end)
end)

describe("make run #e2e", function()
  it("builds and starts the default config and takes mail", function()
    local dir = H.tmpdir()
    local log = dir .. "/make.log"
    local pid = H.spawn(("make -C %s --no-print-directory run RUN_ARGS=%s"):format(H.q(H.root),
      H.q(("-D listen=127.0.0.1:0 -D maildir=%s/mail -D spool=%s/spool"):format(dir, dir))), log)
    local port
    H.wait_for(function()
      port = (H.read_file(log) or ""):match("net listening addr=127%.0%.0%.1:(%d+)")
      return port
    end, 60, "make run to start the server\n" .. (H.read_file(log) or ""))
    local c = H.session(tonumber(port), { rcpts = { "someone@localhost" } })
    c:cmd("DATA", 354)
    c:send("Subject: make run\r\n\r\nhi\r\n.\r\n")
    c:expect(250)
    assert.equals(1, #H.files(dir .. "/mail/localhost/someone/new"))
    c:close()
    H.stop_pid(pid)
  end)
end)
