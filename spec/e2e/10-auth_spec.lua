-- AUTH (RFC 4954): PLAIN and LOGIN under TLS, failures, and the auth hook.
local H = require "spec.helpers"

local PASSWORD = "s3cret-P4ss"

local function config(dir)
  local cert, key = H.make_cert(dir, "mx.example.test")
  return H.basic_config:gsub('listen = smtp.var%("listen"%)', "") .. ([[
listen = {
  { address = smtp.var("listen"), tls = "starttls", auth = true },
  { address = "127.0.0.1:0", auth = true, auth_plaintext = true },
  { address = "127.0.0.1:0", tls = "implicit", auth = true, require_auth = true },
  { address = "127.0.0.1:0", tls = "starttls", auth = true, auth_plaintext = true,
    require_auth = true },
}
tls = { certs = { { cert = %q, key = %q } } }
auth_failure_delay = 0.2
limits = { max_auth_failures = 3 }
function hooks.auth(s, user, password, mechanism, authzid)
  s:log(("auth-hook user=%%s mech=%%s authzid=%%s"):format(user, mechanism, authzid))
  if user == "broken" then error("the user database is down") end
  if user == "later" then return smtp.tempfail() end
  if user == "slow" then smtp.sleep(0.05) return smtp.accept() end
  if user == "alice" and password == %q then return smtp.accept() end
  return smtp.reject()
end
function hooks.mail(s, sender, params)
  s:log(("mail-hook auth=%%s params.AUTH=%%s"):format(s.auth and s.auth.user or "none",
    tostring(params.AUTH)))
end
]]):format(cert, key, PASSWORD)
end

local function plain(user, pass, authzid)
  return H.b64((authzid or "") .. "\0" .. user .. "\0" .. pass)
end

describe("AUTH #e2e #tls", function()
  local srv, tls_port, trusted_port, smtps_port, both_port

  lazy_setup(function()
    local dir = H.tmpdir()
    srv = H.start_server{ dir = dir, config = config(dir), args = { "-v" } }
    local ports = srv:ports(4)
    tls_port, trusted_port, smtps_port, both_port = ports[1], ports[2], ports[3], ports[4]
  end)
  lazy_teardown(function() srv:stop() end)

  -- A session on the STARTTLS listener, after STARTTLS and EHLO.
  local function secure()
    local c = H.connect(tls_port)
    c:expect(220)
    c:cmd("EHLO client.test", 250)
    c:cmd("STARTTLS", 220)
    H.starttls(c)
    local _, lines = c:cmd("EHLO client.test", 250)
    return c, table.concat(lines, "\n")
  end

  it("is not offered before TLS and refused with 538 5.7.11", function()
    local c = H.connect(tls_port)
    c:expect(220)
    local _, lines = c:cmd("EHLO client.test", 250)
    assert.is_nil(table.concat(lines, "\n"):find("AUTH"))
    c:cmd("AUTH PLAIN " .. plain("alice", PASSWORD), 538, "^538 5%.7%.11 ")
    c:close()
  end)

  it("is offered after STARTTLS", function()
    local c, ehlo = secure()
    assert.truthy(ehlo:find("250%-AUTH PLAIN LOGIN"))
    c:close()
  end)

  it("accepts PLAIN with an initial response: 235 2.7.0", function()
    local c = secure()
    c:cmd("AUTH PLAIN " .. plain("alice", PASSWORD), 235, "^235 2%.7%.0 ")
    c:close()
  end)

  it("accepts PLAIN after an empty 334 challenge, with an authzid", function()
    local c = secure()
    c:cmd("AUTH PLAIN", 334)
    c:cmd(plain("alice", PASSWORD, "admin"), 235)
    srv:wait_log("auth%-hook user=alice mech=PLAIN authzid=admin")
    c:close()
  end)

  it("accepts LOGIN in two steps", function()
    local c = secure()
    c:cmd("AUTH LOGIN", 334, "^334 VXNlcm5hbWU6$")
    c:cmd(H.b64("alice"), 334, "^334 UGFzc3dvcmQ6$")
    c:cmd(H.b64(PASSWORD), 235)
    c:close()
  end)

  it("accepts LOGIN with the user name as initial response", function()
    local c = secure()
    c:cmd("AUTH LOGIN " .. H.b64("alice"), 334, "UGFzc3dvcmQ6")
    c:cmd(H.b64(PASSWORD), 235)
    c:close()
  end)

  it("makes the identity available to later hooks", function()
    local c = secure()
    c:cmd("AUTH PLAIN " .. plain("alice", PASSWORD), 235)
    c:cmd("MAIL FROM:<a@remote.test> AUTH=<>", 250)
    srv:wait_log("mail%-hook auth=alice params%.AUTH=<>")
    c:close()
  end)

  it("lets an auth hook yield", function()
    local c = secure()
    c:cmd("AUTH PLAIN " .. plain("slow", "x"), 235)
    c:close()
  end)

  it("refuses a wrong password with 535 5.7.8, after a delay", function()
    local c = secure()
    c:send("AUTH PLAIN " .. plain("alice", "wrong") .. "\r\n")
    -- auth_failure_delay is 0.2 s: nothing may arrive at once.
    local early = c:line(0.1)
    assert.is_nil(early)
    c:expect(535, "^535 5%.7%.8 ")
    c:close()
  end)

  it("refuses malformed base64 with 501 5.5.2", function()
    local c = secure()
    c:cmd("AUTH PLAIN !!notbase64!!", 501, "^501 5%.5%.2 ")
    c:cmd("AUTH LOGIN", 334)
    c:cmd("YWxp=ZQ", 501, "^501 5%.5%.2 ")
    c:cmd("NOOP", 250)
    c:close()
  end)

  it("refuses a PLAIN response without two NULs with 501 5.5.2", function()
    local c = secure()
    c:cmd("AUTH PLAIN " .. H.b64("alice" .. PASSWORD), 501, "^501 5%.5%.2 ")
    c:close()
  end)

  it("cancels with '*' (501)", function()
    local c = secure()
    c:cmd("AUTH LOGIN", 334)
    c:cmd("*", 501, "^501 5%.7%.0 ")
    c:cmd("NOOP", 250)
    c:close()
  end)

  it("refuses an unknown mechanism with 504 5.5.4", function()
    local c = secure()
    c:cmd("AUTH CRAM-MD5", 504, "^504 5%.5%.4 ")
    c:close()
  end)

  it("refuses a second AUTH with 503 5.5.1", function()
    local c = secure()
    c:cmd("AUTH PLAIN " .. plain("alice", PASSWORD), 235)
    c:cmd("AUTH PLAIN " .. plain("alice", PASSWORD), 503, "^503 5%.5%.1 ")
    c:close()
  end)

  it("allows max_auth_failures - 1 failures, then succeeds", function()
    local c = secure()
    for _ = 1, 2 do c:cmd("AUTH PLAIN " .. plain("alice", "no"), 535) end
    c:cmd("AUTH PLAIN " .. plain("alice", PASSWORD), 235)
    c:close()
  end)

  it("closes with 421 4.7.0 at max_auth_failures failures", function()
    local c = secure()
    for _ = 1, 2 do c:cmd("AUTH PLAIN " .. plain("alice", "no"), 535) end
    c:send("AUTH PLAIN " .. plain("alice", "no") .. "\r\n")
    c:expect(535)
    c:expect(421, "^421 4%.7%.0 .*authentication failures")
    assert.is_true(c:closed())
  end)

  it("answers 454 4.7.0 when the auth hook fails, and goes on serving", function()
    local c = secure()
    c:cmd("AUTH PLAIN " .. plain("broken", "x"), 454, "^454 4%.7%.0 ")
    srv:wait_log("hook error hook=auth error=\"[^\"]*the user database is down")
    c:cmd("AUTH PLAIN " .. plain("alice", PASSWORD), 235)
    c:close()
  end)

  it("answers 454 4.7.0 when the auth hook says tempfail", function()
    local c = secure()
    c:cmd("AUTH PLAIN " .. plain("later", "x"), 454)
    c:close()
  end)

  it("is offered without TLS on a listener marked auth_plaintext", function()
    local c = H.connect(trusted_port)
    c:expect(220)
    local _, lines = c:cmd("EHLO client.test", 250)
    assert.truthy(table.concat(lines, "\n"):find("AUTH PLAIN LOGIN"))
    c:cmd("AUTH PLAIN " .. plain("alice", PASSWORD), 235)
    c:close()
  end)

  it("forgets an identity from before STARTTLS (RFC 3207 §4.2): AUTH again inside TLS", function()
    local c = H.connect(both_port)
    c:expect(220)
    c:cmd("EHLO client.test", 250)
    c:cmd("AUTH PLAIN " .. plain("alice", PASSWORD), 235)
    c:cmd("STARTTLS", 220)
    H.starttls(c)
    c:cmd("EHLO client.test", 250)
    c:cmd("MAIL FROM:<a@remote.test>", 530, "^530 5%.7%.0 ")
    c:cmd("AUTH PLAIN " .. plain("alice", PASSWORD), 235)
    c:cmd("MAIL FROM:<a@remote.test>", 250)
    c:close()
  end)

  it("require_auth: MAIL before AUTH gets 530 5.7.0", function()
    local c = H.connect_tls(smtps_port)
    c:expect(220)
    c:cmd("EHLO client.test", 250)
    c:cmd("MAIL FROM:<a@remote.test>", 530, "^530 5%.7%.0 ")
    c:cmd("AUTH PLAIN " .. plain("alice", PASSWORD), 235)
    c:cmd("MAIL FROM:<a@remote.test>", 250)
    c:close()
  end)

  it("swaks authenticates with PLAIN and LOGIN over STARTTLS", function()
    for _, mech in ipairs{ "PLAIN", "LOGIN" } do
      local out, rc = H.sh(("swaks -tls -a %s -au alice -ap %s --server 127.0.0.1:%d " ..
        "--to u@example.test --from a@remote.test"):format(mech, PASSWORD, tls_port))
      assert.equals(0, rc, out)
      assert.truthy(out:find("235 2%.7%.0 Authentication successful"))
    end
  end)

  it("swaks over implicit TLS (--tlsc) with AUTH, and a wrong password exits 28", function()
    local out, rc = H.sh(("swaks --tlsc -a PLAIN -au alice -ap %s --server 127.0.0.1:%d " ..
      "--to u@example.test --from a@remote.test"):format(PASSWORD, smtps_port))
    assert.equals(0, rc, out)
    out, rc = H.sh(("swaks --tlsc -a PLAIN -au alice -ap wrong --server 127.0.0.1:%d " ..
      "--to u@example.test --from a@remote.test"):format(smtps_port))
    assert.equals(28, rc, out)
  end)

  it("never writes a password or an AUTH line into the log, even at debug level", function()
    local log = srv:log()
    assert.truthy(log:find("auth success user=\"alice\"", 1, true))
    assert.is_nil(log:find(PASSWORD, 1, true))
    assert.is_nil(log:find(plain("alice", PASSWORD), 1, true))
    assert.is_nil(log:find(H.b64(PASSWORD), 1, true))
  end)
end)

describe("examples/submission.lua #e2e #tls", function()
  local srv, mx, sub, smtps, maildir

  lazy_setup(function()
    local dir = H.tmpdir()
    maildir = dir .. "/mail"
    srv = H.start_server{ dir = dir, config_file = H.root .. "/examples/submission.lua",
      defines = { mx = "127.0.0.1:0", submission = "127.0.0.1:0", smtps = "127.0.0.1:0",
                  cert = dir .. "/c.pem", key = dir .. "/k.pem", maildir = maildir,
                  users = H.root .. "/examples/users.txt", listen = "unused" } }
    local ports = srv:ports(3)
    mx, sub, smtps = ports[1], ports[2], ports[3]
  end)
  lazy_teardown(function() srv:stop() end)

  it("MX port: local recipients without AUTH, relaying refused", function()
    local c = H.session(mx, { rcpts = { "alice@example.test" } })
    c:cmd("RCPT TO:<x@elsewhere.test>", 554, "relay access denied")
    c:close()
  end)

  it("submission port: STARTTLS required, then AUTH required, then relaying allowed", function()
    local c = H.connect(sub)
    c:expect(220)
    c:cmd("EHLO client.test", 250)
    c:cmd("MAIL FROM:<alice@example.test>", 530, "STARTTLS")
    c:cmd("STARTTLS", 220)
    H.starttls(c)
    c:cmd("EHLO client.test", 250)
    c:cmd("MAIL FROM:<alice@example.test>", 530, "Authentication required")
    c:cmd("AUTH PLAIN " .. plain("alice", "wonderland"), 235)
    c:cmd("MAIL FROM:<alice@example.test>", 250)
    c:cmd("RCPT TO:<friend@elsewhere.test>", 250)
    c:cmd("RCPT TO:<bob@example.test>", 250)
    c:cmd("DATA", 354)
    c:send("Subject: relay\r\n\r\nhi\r\n.\r\n")
    c:expect(250, "queued as")
    -- bob got his copy; friend@elsewhere waits in the queue.
    assert.equals(1, #H.files(maildir .. "/example.test/bob/new"))
    local env
    for _, f in ipairs(H.files(srv.dir .. "/spool/queue")) do
      if f:match("%.env$") then env = H.read_file(f) end
    end
    assert.matches("\nfrom alice@example%.test\n", env)
    assert.matches("\nrcpt friend@elsewhere%.test friend@elsewhere%.test ", env)
    c:close()
  end)

  it("smtps port: implicit TLS and AUTH with a {PLAIN} user", function()
    local out, rc = H.sh(("swaks --tlsc -a LOGIN -au bob -ap builder --server 127.0.0.1:%d " ..
      "--to alice@example.test --from bob@example.test"):format(smtps))
    assert.equals(0, rc, out)
  end)

  it("smtps port: a wrong password is refused", function()
    local c = H.connect_tls(smtps)
    c:expect(220)
    c:cmd("EHLO client.test", 250)
    c:cmd("AUTH PLAIN " .. plain("alice", "not-wonderland"), 535)
    c:close()
  end)
end)
