-- AUTH passwords longer than 255 bytes (passphrases) reach the auth hook:
-- the bound is the AUTH line (12288 octets with CRLF, RFC 4954 §4), not
-- RFC 4616's 255-octet minimum.  User names stay bounded at 255.
local H = require "spec.helpers"

local CONFIG = H.basic_config:gsub('listen = smtp.var%("listen"%)', "") .. [[
listen = { { address = smtp.var("listen"), auth = true, auth_plaintext = true } }
auth_failure_delay = 0
function hooks.auth(s, user, password, mechanism)
  s:log(("auth-len mech=%s user=%d pass=%d"):format(mechanism, #user, #password))
  if user == "alice" and password == ("x"):rep(#password) then return smtp.accept() end
  return smtp.reject()
end
]]

-- The longest passwords that fit the AUTH line (12288 octets with CRLF):
-- LOGIN: the response line alone, 12284 base64 characters; PLAIN: after
-- "AUTH PLAIN ", 12272 base64 characters, less "\0alice\0".
local LOGIN_MAX = 12284 / 4 * 3
local PLAIN_MAX = 12272 / 4 * 3 - #"\0alice\0"

describe("AUTH with a long password #e2e", function()
  local srv

  lazy_setup(function()
    srv = H.start_server{ config = CONFIG }
  end)
  lazy_teardown(function() srv:stop() end)

  local function session()
    local c = H.connect(srv.port)
    c:expect(220)
    c:cmd("EHLO client.test", 250)
    return c
  end

  local function plain(user, pass)
    return "AUTH PLAIN " .. H.b64("\0" .. user .. "\0" .. pass)
  end

  it("PLAIN: a 300-byte password reaches the hook", function()
    local c = session()
    c:cmd(plain("alice", ("x"):rep(300)), 235, "^235 2%.7%.0 ")
    c:close()
    srv:wait_log("auth%-len mech=PLAIN user=5 pass=300\"")
  end)

  it("LOGIN: a 300-byte password reaches the hook", function()
    local c = session()
    c:cmd("AUTH LOGIN", 334)
    c:cmd(H.b64("alice"), 334)
    c:cmd(H.b64(("x"):rep(300)), 235, "^235 2%.7%.0 ")
    c:close()
    srv:wait_log("auth%-len mech=LOGIN user=5 pass=300\"")
  end)

  it("PLAIN: the longest password that fits the AUTH line reaches the hook", function()
    local c = session()
    local line = plain("alice", ("x"):rep(PLAIN_MAX))
    -- 4 more base64 characters would pass 12288 octets with CRLF.
    assert.equals(12283, #line)
    c:cmd(line, 235, "^235 2%.7%.0 ")
    c:close()
    srv:wait_log("auth%-len mech=PLAIN user=5 pass=" .. PLAIN_MAX .. "\"")
  end)

  it("LOGIN: the longest password that fits the line (n) reaches the hook", function()
    local c = session()
    c:cmd("AUTH LOGIN", 334)
    c:cmd(H.b64("alice"), 334)
    local line = H.b64(("x"):rep(LOGIN_MAX))
    assert.equals(12284, #line)
    c:cmd(line, 235, "^235 2%.7%.0 ")
    c:close()
    srv:wait_log("auth%-len mech=LOGIN user=5 pass=" .. LOGIN_MAX .. "\"")
  end)

  it("LOGIN: one byte more (n+1) is a line too long, and the server still serves", function()
    local c = session()
    c:cmd("AUTH LOGIN", 334)
    c:cmd(H.b64("alice"), 334)
    c:cmd(H.b64(("x"):rep(LOGIN_MAX + 1)), 500, "^500 5%.5%.2 ")
    c:close()
    session():close()
  end)

  it("still bounds the user name at 255 bytes (n and n+1)", function()
    local c = session()
    c:cmd(plain(("u"):rep(255), "x"), 535)
    c:cmd(plain(("u"):rep(256), "x"), 501, "^501 5%.5%.2 ")
    c:close()
  end)
end)
