-- Addresses are not file names: deliver.maildir refuses a path that could
-- leave its tree, and examples/default.lua (util.maildir_path) gives quoted
-- and UTF-8 local parts their own safe Maildir instead of refusing them.
local H = require "spec.helpers"

-- The README's first config before the fix: the address pasted into a
-- path.  A few recipients get a hand-made bad path instead.
local PASTED = [[
local smtp = require "luasmtpd"
local deliver = require "luasmtpd.deliver"
listen = smtp.var("listen")
spool = smtp.var("spool")
local root = smtp.var("root")
local special = {
  ["nul@example.test"] = root .. "/a\0b",
  ["tab@example.test"] = root .. "/a\tb",
  ["del@example.test"] = root .. "/a\127b",
  ["dots@example.test"] = root .. "/x/../y",
  ["dotsend@example.test"] = root .. "/x/..",
}
function hooks.rcpt(s, rcpt)
  if rcpt:match("@example%.test$") then return smtp.accept() end
end
function hooks.message(s, msg)
  for _, r in ipairs(msg.rcpts) do
    local ok = deliver.maildir(special[r.address] or root .. "/" .. r.address, r)
    if not ok then return smtp.tempfail() end
  end
end
]]

describe("deliver.maildir with a path made from an address #e2e", function()
  local srv, dir, root

  lazy_setup(function()
    dir = H.tmpdir()
    -- Deep enough that "x/../../../../escape" stays inside dir on a server
    -- without the check.
    root = dir .. "/1/2/3/mail"
    srv = H.start_server{ dir = dir, config = PASTED, defines = { root = root } }
  end)
  lazy_teardown(function() srv:stop() end)

  local function send(rcpt)
    local c = H.session(srv.port, { rcpts = { rcpt } })
    c:cmd("DATA", 354)
    c:send("Subject: path\r\n\r\nhi\r\n.\r\n")
    local code, text = c:reply()
    c:close()
    return code, text
  end

  it("raises on a '..' component: the hook error is 451 4.3.0, nothing written outside", function()
    local code, text = send('"x/../../../../escape"@example.test')
    assert.equals(451, code)
    assert.truthy(text:find("^451 4%.3%.0 "), text)
    srv:wait_log("hook error hook=message error=\"[^\n]*bad argument #1 to 'maildir' " ..
      "%(path has a '%.%.' component%)")
    assert.equals("", (H.sh("find " .. H.q(dir) .. " -name '*escape*'")))
    assert.same({}, H.files(root))
  end)

  for _, case in ipairs{ { "nul", "path contains a NUL byte" },
                         { "tab", "path contains a control character" },
                         { "del", "path contains a control character" },
                         { "dots", "path has a '..' component" },
                         { "dotsend", "path has a '..' component" } } do
    it("raises on " .. case[2] .. " (" .. case[1] .. ")", function()
      local before = srv:count_log("hook error hook=message")
      local code = send(case[1] .. "@example.test")
      assert.equals(451, code)
      H.wait_for(function() return srv:count_log("hook error hook=message") > before end, 10,
        "the hook error")
      assert.truthy(srv:log():find("(" .. case[2] .. ")", 1, true), srv:log())
      assert.same({}, H.files(root))
    end)
  end

  it("still delivers to a path without those (dots inside a name are fine)", function()
    local code = send('"a..b"@example.test')
    assert.equals(250, code)
    assert.equals(1, #H.files(root .. '/"a..b"@example.test/new'))
  end)
end)

describe("examples/default.lua with quoted and UTF-8 local parts #e2e", function()
  local srv, maildir

  lazy_setup(function()
    local dir = H.tmpdir()
    maildir = dir .. "/mail"
    srv = H.start_server{ dir = dir, config_file = H.root .. "/examples/default.lua",
      defines = { maildir = maildir, domains = "example.test", hostname = "mx.example.test",
                  tls_cert = dir .. "/c.pem", tls_key = dir .. "/k.pem" } }
  end)
  lazy_teardown(function() srv:stop() end)

  local function deliver(rcpt, smtputf8)
    local c = H.connect(srv.port)
    c:expect(220)
    c:cmd("EHLO client.test", 250)
    c:cmd("MAIL FROM:<sender@remote.test>" .. (smtputf8 and " SMTPUTF8" or ""), 250)
    c:cmd("RCPT TO:<" .. rcpt .. ">", 250)
    c:cmd("DATA", 354)
    c:send("Subject: mapped\r\n\r\nhi\r\n.\r\n")
    c:expect(250, "^250 2%.0%.0 Ok: delivered as")
    c:close()
  end

  it('accepts "john smith"@example.test into example.test/john smith', function()
    deliver('"John Smith"@example.test')
    assert.equals(1, #H.files(maildir .. "/example.test/john smith/new"))
  end)

  it("accepts josé@example.test with SMTPUTF8 into example.test/josé", function()
    deliver("Jos\195\169@example.test", true)
    assert.equals(1, #H.files(maildir .. "/example.test/jos\195\169/new"))
  end)

  it("keeps '/', '..' and '%' of a quoted local part inside the mail root", function()
    deliver('"x/../../../../escape"@example.test')
    deliver('"100%"@example.test')
    deliver('".hidden"@example.test')
    assert.equals(1, #H.files(maildir .. "/example.test/x%2F..%2F..%2F..%2F..%2Fescape/new"))
    assert.equals(1, #H.files(maildir .. "/example.test/100%25/new"))
    assert.equals(1, #H.files(maildir .. "/example.test/%2Ehidden/new"))
    assert.equals("", (H.sh("find " .. H.q(srv.dir) .. " -name escape")))
  end)

  it("delivers a needlessly quoted local part to the unquoted mailbox", function()
    deliver('"bob"@example.test')
    deliver("Bob@example.test")
    assert.equals(2, #H.files(maildir .. "/example.test/bob/new"))
  end)
end)

describe("a failed delivery #e2e", function()
  it("is logged at warn", function()
    local dir = H.tmpdir()
    H.write_file(dir .. "/notadir", "x")
    local srv = H.start_server{ dir = dir, config_file = H.root .. "/examples/default.lua",
      defines = { maildir = dir .. "/notadir/mail", tls_cert = dir .. "/c.pem",
                  tls_key = dir .. "/k.pem" } }
    local c = H.session(srv.port, { rcpts = { "a@example.test" } })
    c:cmd("DATA", 354)
    c:send("x\r\n.\r\n")
    c:expect(451, "^451 4%.3%.0 ")
    c:close()
    srv:wait_log(" warn %x+ deliver maildir tx=%S+ to=<a@example%.test> .* result=tempfail " ..
      "code=451")
    srv:stop()
  end)
end)
