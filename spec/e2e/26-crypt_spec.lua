-- 26-crypt_spec.lua — password hashes are checked on the CPU pool
-- (smtp.crypt_check, luasmtpd.passwd): the auth hook yields meanwhile.
local H = require "spec.helpers"

describe("crypt(3) hashes in the auth hook #e2e #tls", function()
  local srv, dir

  lazy_setup(function()
    dir = H.tmpdir()
    local cert, key = H.make_cert(dir, "mx.example.test")
    local hash = H.sh("openssl passwd -6 -salt abcdefgh sekret"):gsub("%s+$", "")
    local yes = H.sh("openssl passwd -5 -salt ijklmnop other"):gsub("%s+$", "")
    H.write_file(dir .. "/users", "alice:" .. hash .. "\nbob:" .. yes .. "\ncarol:{PLAIN}plain\n")
    srv = H.start_server{ dir = dir, config = [[
local smtp = require "luasmtpd"
local passwd = require "luasmtpd.passwd"
local db = assert(passwd.load("]] .. dir .. [[/users"))
listen = { address = smtp.var("listen"), tls = "starttls", auth = true }
spool = smtp.var("spool")
hostname = "mx.example.test"
auth_failure_delay = 0
tls = { certs = { { cert = "]] .. cert .. [[", key = "]] .. key .. [[" } } }
function hooks.auth(s, user, password)
  if user == "direct" then
    local ok = smtp.crypt_check(password, "]] .. hash .. [[")
    s:log("direct=" .. tostring(ok))
    return ok and smtp.accept() or smtp.reject()
  end
  if passwd.check(db, user, password) then return smtp.accept() end
  return smtp.reject()
end
]] }
  end)
  lazy_teardown(function() srv:stop() end)

  local function auth(user, pass)
    local c = H.tls_session and H.tls_session(srv.port) or nil
    if not c then
      c = H.connect(srv.port)
      c:expect(220)
      c:cmd("EHLO client.test", 250)
      c:cmd("STARTTLS", 220)
      H.starttls(c)
      c:cmd("EHLO client.test", 250)
    end
    c:send("AUTH PLAIN " .. H.b64("\0" .. user .. "\0" .. pass) .. "\r\n")
    local code = c:reply()
    c:close()
    return code
  end

  it("accepts a SHA-512 crypt hash with the right password", function()
    assert.equals(235, auth("alice", "sekret"))
  end)

  it("accepts a SHA-256 crypt hash with the right password", function()
    assert.equals(235, auth("bob", "other"))
  end)

  it("refuses a wrong password", function()
    assert.equals(535, auth("alice", "wrong"))
  end)

  it("refuses an unknown user after checking a hash all the same", function()
    assert.equals(535, auth("mallory", "sekret"))
  end)

  it("still compares {PLAIN} secrets", function()
    assert.equals(235, auth("carol", "plain"))
    assert.equals(535, auth("carol", "nope"))
  end)

  it("offers smtp.crypt_check to hooks directly", function()
    assert.equals(235, auth("direct", "sekret"))
    srv:wait_log("direct=true")
    assert.equals(535, auth("direct", "x"))
    srv:wait_log("direct=false")
  end)
end)
