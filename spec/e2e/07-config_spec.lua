-- The command line and the config file: checks, errors with file:line, -D.
local H = require "spec.helpers"

local function check(config, ...)
  local dir = H.tmpdir()
  local path = dir .. "/conf.lua"
  H.write_file(path, config)
  local args = { H.q(H.binary), "-t", "-c", H.q(path) }
  for _, a in ipairs{ ... } do args[#args + 1] = H.q(a) end
  local out, rc = H.sh(table.concat(args, " "))
  return out, rc, path
end

describe("luasmtpd command line #e2e", function()
  it("prints its usage for --help and exits 0", function()
    local out, rc = H.sh(H.q(H.binary) .. " --help")
    assert.equals(0, rc)
    assert.truthy(out:find("usage: luasmtpd -c FILE.lua", 1, true))
    assert.truthy(out:find("-D name=value", 1, true))
  end)

  it("prints its version for --version", function()
    local out, rc = H.sh(H.q(H.binary) .. " --version")
    assert.equals(0, rc)
    assert.truthy(out:match("^luasmtpd %d+%.%d+%.%d+\n$"))
  end)

  it("refuses an unknown argument with exit 2", function()
    local _, rc = H.sh(H.q(H.binary) .. " --frobnicate")
    assert.equals(2, rc)
  end)

  it("refuses -D without name=value with exit 2", function()
    local out, rc = H.sh(H.q(H.binary) .. " -c x.lua -D novalue")
    assert.equals(2, rc)
    assert.truthy(out:find("-D needs name=value", 1, true))
  end)
end)

describe("luasmtpd -t (config check) #e2e", function()
  -- Every example, with the -D names it reads for its certificates (-t
  -- fails on a -D that is never read).
  local cert_prefix = { ["default.lua"] = "tls_", ["submission.lua"] = "",
    ["relay.lua"] = "tls_" }
  local examples = {}
  for f in H.sh("ls " .. H.q(H.root .. "/examples")):gmatch("([%w_.-]+%.lua)") do
    examples[#examples + 1] = { f, cert_prefix[f] }
  end
  assert(#examples >= 6, "examples/ not found")
  for _, example in ipairs(examples) do
    it("accepts examples/" .. example[1], function()
      -- Certificates (self-signed if missing) go to a temp dir, not var/.
      local dir = H.tmpdir()
      local certs = example[2] and ("-D %scert=%s/c.pem -D %skey=%s/k.pem"):format(
        example[2], dir, example[2], dir) or ""
      local out, rc = H.sh(("cd %s && %s -t -c %s %s"):format(H.q(H.root), H.q(H.binary),
        H.q(H.root .. "/examples/" .. example[1]), certs))
      assert.equals(0, rc, out)
      assert.truthy(out:find("config ok", 1, true))
    end)
  end

  it("reports a syntax error with file:line and exits 1", function()
    local out, rc, path = check('listen = "127.0.0.1:1"\n\nfunction hooks.rcpt(s\n')
    assert.equals(1, rc)
    assert.truthy(out:find(path .. ":4:", 1, true) or out:find(path .. ":3:", 1, true), out)
  end)

  it("reports a runtime error with file:line", function()
    local out, rc, path = check('listen = "127.0.0.1:1"\nlocal x = nil\nlocal y = x.field\n')
    assert.equals(1, rc)
    assert.truthy(out:find(path .. ":3: attempt to index", 1, true), out)
  end)

  it("reports a value below an RFC minimum with the line of the setting", function()
    local out, rc, path = check('listen = "127.0.0.1:1"\n\nlimits = {\n  max_recipients = 5,\n}\n')
    assert.equals(1, rc)
    -- The line of the statement that assigns limits (it spans lines 3-5).
    local line = out:match(":(%d+): limits%.max_recipients must be a whole number from 100")
    assert.truthy(line, out)
    assert.truthy(tonumber(line) >= 3 and tonumber(line) <= 5, out)
    assert.truthy(out:find(path .. ":" .. line .. ":", 1, true))
  end)

  it("reports an unknown setting inside limits", function()
    local out, rc, path = check('listen = "127.0.0.1:1"\nlimits = { max_rcpts = 500 }\n')
    assert.equals(1, rc)
    assert.truthy(out:find(path .. ":2: unknown setting limits.max_rcpts", 1, true), out)
  end)

  it("reports an unknown hook name at its line", function()
    local out, rc, path = check('listen = "127.0.0.1:1"\n\n\nfunction hooks.rcp(s) end\n')
    assert.equals(1, rc)
    assert.truthy(out:find(path .. ":4: unknown hook 'rcp'", 1, true), out)
  end)

  it("reports a hook that is not a function", function()
    local out, rc, path = check('listen = "127.0.0.1:1"\nhooks.rcpt = "accept"\n')
    assert.equals(1, rc)
    assert.truthy(out:find(path .. ":2: hook 'rcpt' must be a function", 1, true), out)
  end)

  it("accepts hooks given as a table", function()
    local out, rc = check('listen = "127.0.0.1:1"\nhooks = { rcpt = function() end }\n')
    assert.equals(0, rc, out)
  end)

  it("reports a bad listen address", function()
    local out, rc, path = check('listen = "localhost"\n')
    assert.equals(1, rc)
    assert.truthy(out:find(path .. ":1: listen 'localhost': expected address:port", 1, true), out)
  end)

  it("requires a listener", function()
    local out, rc = check('hostname = "x"\n')
    assert.equals(1, rc)
    assert.truthy(out:find("no listener", 1, true), out)
  end)

  it("reports a wrong type with the setting's line", function()
    local out, rc, path = check('listen = "127.0.0.1:1"\nreceived_header = "yes"\n')
    assert.equals(1, rc)
    assert.truthy(out:find(path .. ":2: received_header must be true or false", 1, true), out)
  end)

  it("reads -D settings through luasmtpd.var", function()
    local config = 'local smtp = require "luasmtpd"\nlisten = smtp.var("listen", "bad")\n'
    local _, rc = check(config)
    assert.equals(1, rc)
    local out, rc2 = check(config, "-D", "listen=127.0.0.1:25")
    assert.equals(0, rc2, out)
  end)

  it("fails on a -D setting the config never reads", function()
    local out, rc, path = check('listen = "127.0.0.1:1"\n', "-D", "lisen=typo")
    assert.equals(1, rc, out)
    assert.truthy(out:find(path .. ": -D lisen is never read by the config", 1, true), out)
    assert.is_nil(out:find("config ok", 1, true))
  end)

  it("fails on a global that is not a setting, at its line", function()
    local out, rc, path = check('listen = "127.0.0.1:1"\nrecieved_header = false\n')
    assert.equals(1, rc, out)
    assert.truthy(out:find(path .. ":2: unknown setting 'recieved_header'", 1, true), out)
  end)
end)

describe("a running server #e2e", function()
  it("listens on IPv4 and IPv6 loopback at once", function()
    local dir = H.tmpdir()
    local srv = H.start_server{ dir = dir, config = H.basic_config:gsub(
      'listen = smtp.var%("listen"%)', 'listen = { "127.0.0.1:0", "[::1]:0" }') }
    local port6 = tonumber(srv:wait_log("net listening addr=%[::1%]:(%d+)"))
    local c = H.connect(port6, "::1")
    c:expect(220)
    c:cmd("EHLO v6.test", 250)
    c:close()
    srv:wait_log("smtp connect ip=::1 ")
    srv:stop()
  end)

  it("stops on SIGTERM", function()
    local srv = H.start_server{ config = H.basic_config }
    H.sh("kill -TERM " .. srv.pid)
    H.wait_for(function() return not H.alive(srv.pid) end, 5, "the server to stop")
    assert.truthy(srv:log():find("main stop signal=15", 1, true))
  end)

  it("removes unacknowledged spool files at start", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.q(dir .. "/spool/tmp"))
    H.write_file(dir .. "/spool/tmp/leftover", "half a message")
    local srv = H.start_server{ dir = dir, config = H.basic_config }
    assert.same({}, H.files(dir .. "/spool/tmp"))
    srv:stop()
  end)

  it("refuses to start on a spool another server uses, and leaves its files alone", function()
    local dir = H.tmpdir()
    local srv = H.start_server{ dir = dir, config = H.basic_config }
    -- A message being received: its tmp/ file must survive the refusal.
    local c = H.connect(srv.port)
    c:expect(220)
    c:cmd("EHLO client.test", 250)
    c:cmd("MAIL FROM:<a@b.test>", 250)
    c:cmd("RCPT TO:<user@example.test>", 250)
    c:cmd("DATA", 354)
    c:send("Subject: in flight\r\n\r\n")
    H.wait_for(function() return #H.files(dir .. "/spool/tmp") > 0 end, 5, "a tmp/ file")
    local out, rc = H.sh(H.q(H.binary) .. " -c " .. H.q(srv.config) .. " -D listen=127.0.0.1:0" ..
      " -D spool=" .. H.q(dir .. "/spool") .. " 2>&1")
    assert.is_not.equals(0, rc)
    assert.matches("in use by another luasmtpd", out)
    c:send("body\r\n.\r\n")
    assert.equals(250, (c:reply()))
    c:cmd("QUIT", 221)
    c:close()
    srv:stop()
  end)

  it("removes queue data without its envelope at start and sets aside an envelope without data",
    function()
      local dir = H.tmpdir()
      os.execute("mkdir -p " .. H.q(dir .. "/spool/queue"))
      -- A commit that died between the renames: data, no envelope.
      H.write_file(dir .. "/spool/queue/aaaa.1", "Subject: half\r\n\r\nx\r\n")
      -- A whole entry: kept.
      H.write_file(dir .. "/spool/queue/bbbb.1", "Subject: whole\r\n\r\nx\r\n")
      H.write_file(dir .. "/spool/queue/bbbb.1.env", "luasmtpd-envelope 1\nid bbbb.1\n" ..
        "created 1\nfrom a@b.test\nsmtputf8 0\nrcpt c@d.test c@d.test + + 0 0 0\nend\n")
      -- An envelope whose data vanished: set aside, never delivered.
      H.write_file(dir .. "/spool/queue/cccc.1.env", "luasmtpd-envelope 1\n")
      local srv = H.start_server{ dir = dir, config = H.basic_config }
      srv:wait_log("spool recovered [^\n]*orphans_removed=1 envelopes_lost=1")
      local names = {}
      for _, f in ipairs(H.files(dir .. "/spool/queue")) do names[#names + 1] = f:match("[^/]+$") end
      table.sort(names)
      assert.same({ "bbbb.1", "bbbb.1.env", "cccc.1.env.lost" }, names)
      srv:stop()
    end)
end)
