-- TLS: STARTTLS (RFC 3207), implicit TLS (RFC 8314), SNI, reload, and the
-- handshakes that go wrong.
local H = require "spec.helpers"

local function tls_config(dir, extra, tls_opts)
  local mx_c, mx_k = H.make_cert(dir, "mx.example.test")
  local ot_c, ot_k = H.make_cert(dir, "other.example.test", { "*.wild.example.test" })
  return H.basic_config:gsub('listen = smtp.var%("listen"%)', "") .. ([[
listen = {
  { address = smtp.var("listen"), tls = "starttls" },
  { address = "127.0.0.1:0", tls = "implicit" },
  { address = "127.0.0.1:0", tls = "starttls", require_tls = true },
  { address = "127.0.0.1:0" },
}
tls = { certs = { { cert = %q, key = %q }, { cert = %q, key = %q } }, %s }
timeouts = { tls_handshake = 0.5 }
function hooks.reset(s) return smtp.accept("reset hook ran") end
function hooks.rcpt(s, rcpt)
  local t = s.tls
  s:log(("tls-info %%s %%s %%s"):format(t and t.version or "none", t and t.cipher or "-",
    t and t.sni or "-"))
  if rcpt:match("@example%%.test$") then return smtp.accept() end
end
]]):format(mx_c, mx_k, ot_c, ot_k, tls_opts or "") .. (extra or "")
end

describe("TLS #e2e #tls", function()
  local srv, starttls_port, implicit_port, required_port, plain_port

  lazy_setup(function()
    local dir = H.tmpdir()
    srv = H.start_server{ dir = dir, config = tls_config(dir) }
    -- In the order configured: starttls, implicit, require_tls, plain.
    local p = srv:ports(4)
    starttls_port, implicit_port, required_port, plain_port = p[1], p[2], p[3], p[4]
  end)
  lazy_teardown(function() srv:stop() end)

  it("offers STARTTLS only on a STARTTLS listener and only before TLS", function()
    local c = H.connect(starttls_port)
    c:expect(220)
    local _, lines = c:cmd("EHLO client.test", 250)
    assert.truthy(table.concat(lines, "\n"):find("250%-STARTTLS"))
    local p = H.connect(plain_port)
    p:expect(220)
    local _, plines = p:cmd("EHLO client.test", 250)
    assert.is_nil(table.concat(plines, "\n"):find("STARTTLS"))
    p:cmd("STARTTLS", 502, "^502 5%.5%.1 ")
    p:close()
    c:cmd("STARTTLS", 220, "^220 2%.0%.0 ")
    H.starttls(c)
    local _, tlines = c:cmd("EHLO client.test", 250)
    assert.is_nil(table.concat(tlines, "\n"):find("STARTTLS"))
    c:cmd("STARTTLS", 503, "^503 5%.5%.1 ")
    c:close()
  end)

  it("swaks delivers over STARTTLS and the Received: header says ESMTPS", function()
    local out, rc = H.sh(("swaks -tls --server 127.0.0.1:%d --to a@example.test " ..
      "--from b@remote.test"):format(starttls_port))
    assert.equals(0, rc, out)
    assert.truthy(out:find("TLS started with cipher TLSv1%.[23]"))
    local msg
    for _, f in ipairs(H.files(srv.dir .. "/spool/queue")) do
      if not f:match("%.env$") then msg = H.read_file(f) end
    end
    assert.truthy(msg:find("with ESMTPS id", 1, true))
  end)

  it("swaks delivers over implicit TLS (--tlsc)", function()
    local out, rc = H.sh(("swaks --tlsc --server 127.0.0.1:%d --to a@example.test " ..
      "--from b@remote.test"):format(implicit_port))
    assert.equals(0, rc, out)
    assert.truthy(out:find("250 2%.0%.0 Ok: queued"))
  end)

  it("does not run plaintext pipelined after STARTTLS (CVE-2011-0411)", function()
    local c = H.connect(starttls_port)
    c:expect(220)
    c:cmd("EHLO client.test", 250)
    c:send("STARTTLS\r\nRSET\r\n")
    c:expect(220)
    H.starttls(c)
    -- If RSET had been kept, its "reset hook ran" reply would come first.
    local _, lines = c:cmd("EHLO client.test", 250)
    assert.equals("250-mx.example.test", lines[1])
    c:cmd("NOOP", 250, "^250 2%.0%.0 Ok$")
    srv:wait_log("smtp starttls%-discarded bytes=6")
    assert.is_nil(srv:log():find("reset hook ran", 1, true))
    c:close()
  end)

  it("forgets EHLO after STARTTLS (RFC 3207 4.2)", function()
    local c = H.connect(starttls_port)
    c:expect(220)
    c:cmd("EHLO client.test", 250)
    c:cmd("STARTTLS", 220)
    H.starttls(c)
    c:cmd("MAIL FROM:<a@remote.test>", 503, "^503 5%.5%.1 ")
    c:close()
  end)

  it("refuses STARTTLS with an argument (501) and during a transaction (503)", function()
    local c = H.connect(starttls_port)
    c:expect(220)
    c:cmd("EHLO client.test", 250)
    c:cmd("STARTTLS now", 501, "^501 5%.5%.4 ")
    c:cmd("MAIL FROM:<a@remote.test>", 250)
    c:cmd("STARTTLS", 503, "^503 5%.5%.1 ")
    c:close()
  end)

  it("require_tls: MAIL before STARTTLS gets 530 5.7.0", function()
    local c = H.connect(required_port)
    c:expect(220)
    c:cmd("EHLO client.test", 250)
    c:cmd("MAIL FROM:<a@remote.test>", 530, "^530 5%.7%.0 ")
    c:cmd("STARTTLS", 220)
    H.starttls(c)
    c:cmd("EHLO client.test", 250)
    c:cmd("MAIL FROM:<a@remote.test>", 250)
    c:close()
  end)

  it("shows the TLS state to Lua", function()
    local c = H.connect(starttls_port)
    c:expect(220)
    c:cmd("EHLO client.test", 250)
    c:cmd("STARTTLS", 220)
    H.starttls(c, { servername = "other.example.test" })
    c:cmd("EHLO client.test", 250)
    c:cmd("MAIL FROM:<a@remote.test>", 250)
    c:cmd("RCPT TO:<b@example.test>", 250)
    srv:wait_log("tls%-info TLSv1%.3 TLS_[%w_]+ other%.example%.test")
    c:close()
  end)

  it("picks the certificate by SNI, with the first as default", function()
    assert.equals("other.example.test", H.peer_cn(implicit_port,
      { servername = "other.example.test" }))
    assert.equals("other.example.test", H.peer_cn(implicit_port,
      { servername = "x.wild.example.test" }))
    assert.equals("mx.example.test", H.peer_cn(implicit_port,
      { servername = "mx.example.test" }))
    assert.equals("mx.example.test", H.peer_cn(implicit_port,
      { servername = "unknown.test" }))
    assert.equals("mx.example.test", H.peer_cn(implicit_port))
    assert.equals("other.example.test", H.peer_cn(starttls_port,
      { starttls = true, servername = "other.example.test" }))
  end)

  it("refuses TLS 1.1", function()
    local cn, out = H.peer_cn(implicit_port, { args = { "-tls1_1" } })
    assert.is_nil(cn, out)
  end)

  it("survives handshake garbage and logs the reason", function()
    local c = H.connect(implicit_port)
    c:send("EHLO this is not TLS\r\n")
    assert.is_true(c:closed())
    srv:wait_log("tls handshake%-failed error=")
    local ok = H.connect_tls(implicit_port)
    ok:expect(220)
    ok:close()
  end)

  it("closes a client that stalls mid-handshake, and serves others meanwhile", function()
    local stall = H.connect(implicit_port)
    stall:send("\22\3\1\0\200")	-- the start of a TLS record, then nothing
    local other = H.connect_tls(implicit_port)
    other:expect(220)
    other:cmd("EHLO client.test", 250)
    other:close()
    assert.is_true(stall:closed(5))
    srv:wait_log("tls handshake%-timeout")
  end)
end)

describe("TLS client certificates #e2e #tls", function()
  it("requests one and shows its verified subject to Lua", function()
    local dir = H.tmpdir()
    local ca, ccert, ckey = H.make_client_ca(dir, "client.example.test")
    local config = tls_config(dir, nil,
      ("request_client_cert = true, client_ca = %q"):format(ca)) .. [[
function hooks.helo(s, name)
  local t = s.tls or {}
  s:log(("client-cert %s %s"):format(tostring(t.client_subject), tostring(t.client_verified)))
end
]]
    local srv = H.start_server{ dir = dir, config = config }
    local implicit = srv:ports(4)[2]
    local c = H.connect_tls(implicit, { certificate = ccert, key = ckey })
    c:expect(220)
    c:cmd("EHLO client.test", 250)
    srv:wait_log("client%-cert /CN=client%.example%.test true")
    c:close()
    local anon = H.connect_tls(implicit)
    anon:expect(220)
    anon:cmd("EHLO client.test", 250)
    srv:wait_log("client%-cert nil nil")
    anon:close()
    srv:stop()
  end)
end)

describe("certificate reload #e2e #tls", function()
  it("re-reads the files on SIGHUP for new connections", function()
    local dir = H.tmpdir()
    local cert, key = H.make_cert(dir, "old.example.test")
    local config = H.basic_config:gsub('listen = smtp.var%("listen"%)',
      ('listen = { address = smtp.var("listen"), tls = "implicit" }\n' ..
       'tls = { certs = { { cert = %q, key = %q } } }\n'):format(cert, key))
    local srv = H.start_server{ dir = dir, config = config }
    assert.equals("old.example.test", H.peer_cn(srv.port))
    local ncert, nkey = H.make_cert(dir, "new.example.test")
    H.sh(("cp %s %s && cp %s %s"):format(H.q(ncert), H.q(cert), H.q(nkey), H.q(key)))
    H.sh("kill -HUP " .. srv.pid)
    srv:wait_log("tls reloaded")
    assert.equals("new.example.test", H.peer_cn(srv.port))
    -- A broken file: the reload fails and the old certificate stays.
    H.write_file(cert, "not a certificate\n")
    H.sh("kill -HUP " .. srv.pid)
    srv:wait_log("tls reload%-failed")
    assert.equals("new.example.test", H.peer_cn(srv.port))
    srv:stop()
  end)
end)

describe("TLS configuration #e2e #tls", function()
  it("creates a self-signed certificate when asked and the files are missing", function()
    local dir = H.tmpdir()
    local srv = H.start_server{ dir = dir, config_file = H.root .. "/examples/default.lua",
      defines = { maildir = dir .. "/mail", tls_cert = dir .. "/tls/c.pem",
                  tls_key = dir .. "/tls/k.pem", hostname = "selfsigned.test" } }
    srv:wait_log("tls self%-signed%-created name=selfsigned%.test")
    assert.equals("selfsigned.test", H.peer_cn(srv.port, { starttls = true }))
    srv:stop()
  end)

  it("refuses a TLS listener without certificates, with file:line", function()
    local dir = H.tmpdir()
    H.write_file(dir .. "/c.lua", 'listen = { address = "127.0.0.1:1", tls = "implicit" }\n')
    local out, rc = H.sh(H.q(H.binary) .. " -t -c " .. H.q(dir .. "/c.lua"))
    assert.equals(1, rc)
    assert.truthy(out:find("c.lua:1: listen 127.0.0.1:1: TLS needs certificates", 1, true), out)
  end)

  it("refuses a certificate file that does not exist, with file:line", function()
    local dir = H.tmpdir()
    H.write_file(dir .. "/c.lua", 'listen = "127.0.0.1:1"\n\ntls = { certs = { { cert = "/nonexistent.pem", key = "/nonexistent.key" } } }\n')
    local out, rc = H.sh(H.q(H.binary) .. " -t -c " .. H.q(dir .. "/c.lua"))
    assert.equals(1, rc)
    assert.truthy(out:find("c.lua:3: /nonexistent.pem", 1, true), out)
  end)
end)
