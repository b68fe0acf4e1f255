-- What `luasmtpd -t` and a start refuse, with file:line: typos (an unread
-- -D, an unknown global), listen addresses that are names or not on this
-- host, a setting assigned twice, lmtp listeners, auth_failure_delay.
--
-- Listen addresses are only bound with port 0, never contacted: 127.0.0.1,
-- ::1 and 192.0.2.1 (TEST-NET-1, RFC 5737: on no interface of this host).
local H = require "spec.helpers"

local function write_config(config)
  local dir = H.tmpdir()
  local path = dir .. "/conf.lua"
  H.write_file(path, config)
  return path, dir
end

-- luasmtpd -t -c <config> [args...] -> output, exit code, config path
local function check(config, ...)
  local path = write_config(config)
  local args = { H.q(H.binary), "-t", "-c", H.q(path) }
  for _, a in ipairs{ ... } do args[#args + 1] = H.q(a) end
  local out, rc = H.sh(table.concat(args, " "))
  return out, rc, path
end

describe("luasmtpd -t: typos fail the check #e2e", function()
  it("fails on a -D the config never reads, without printing its value", function()
    local out, rc, path = check('local smtp = require "luasmtpd"\n' ..
      'listen = smtp.var("listen", "127.0.0.1:0")\n', "-D", "listen=127.0.0.1:0",
      "-D", "smarthost_pasword=secret-value")
    assert.equals(1, rc, out)
    assert.truthy(out:find(path .. ": -D smarthost_pasword is never read by the config",
      1, true), out)
    assert.is_nil(out:find("secret-value", 1, true), out)
  end)

  it("passes when every -D is read", function()
    local out, rc = check('local smtp = require "luasmtpd"\n' ..
      'listen = smtp.var("listen", "127.0.0.1:0")\n', "-D", "listen=127.0.0.1:0")
    assert.equals(0, rc, out)
    assert.truthy(out:find("config ok", 1, true), out)
  end)

  it("fails on an unknown top-level setting, naming its line", function()
    local out, rc, path = check('listen = "127.0.0.1:0"\n\nhostnmae = "mx.example.test"\n')
    assert.equals(1, rc, out)
    assert.truthy(out:find(path .. ":3: unknown setting 'hostnmae' (use local", 1, true), out)
  end)

  it("fails on an unknown global table too", function()
    local out, rc, path = check('listen = "127.0.0.1:0"\nlimit = { max_recipients = 500 }\n')
    assert.equals(1, rc, out)
    assert.truthy(out:find(path .. ":2: unknown setting 'limit'", 1, true), out)
  end)

  it("accepts global functions the config defines for itself", function()
    local out, rc = check('listen = "127.0.0.1:0"\nfunction helper(x) return x end\n' ..
      'function hooks.rcpt(s, rcpt) return helper(nil) end\n')
    assert.equals(0, rc, out)
  end)
end)

describe("a server start with a typo #e2e", function()
  it("refuses to start with an unknown top-level setting", function()
    local path = write_config('listen = "127.0.0.1:0"\nrecieved_header = false\n')
    -- Bounded: a server that wrongly starts is stopped after 5 s.
    local out, rc = H.sh("timeout 5 " .. H.q(H.binary) .. " -c " .. H.q(path))
    assert.equals(1, rc, out)
    assert.truthy(out:find(path .. ":2: unknown setting 'recieved_header'", 1, true), out)
    assert.is_nil(out:find("main started", 1, true), out)
  end)

  it("starts with an unread -D, and logs it", function()
    local srv = H.start_server{ config = H.basic_config, defines = { lisen = "typo" } }
    assert.truthy(srv:log():find("config unused-define name=lisen", 1, true), srv:log())
    local c = H.connect(srv.port)
    c:expect(220)
    c:close()
    srv:stop()
  end)
end)

describe("luasmtpd -t: listen addresses #e2e", function()
  it("accepts 127.0.0.1 and ::1 on any port (bound with port 0, not the port)", function()
    local out, rc = check('listen = { "127.0.0.1:25", "[::1]:25", "127.0.0.1:0" }\n')
    assert.equals(0, rc, out)
  end)

  it("refuses a host name: names are not resolved", function()
    local out, rc, path = check('listen = "no.such.host.invalid:25"\n')
    assert.equals(1, rc, out)
    assert.truthy(out:find(path .. ":1: listen 'no.such.host.invalid:25': " ..
      "'no.such.host.invalid' is not a numeric IPv4 or IPv6 address", 1, true), out)
  end)

  it("refuses a host name in a listener table", function()
    local out, rc, path = check('\nlisten = { { address = "localhost:25", tls = "none" } }\n')
    assert.equals(1, rc, out)
    assert.truthy(out:find(path .. ":2: listen 'localhost:25': 'localhost' is not a " ..
      "numeric", 1, true), out)
  end)

  it("refuses an address that is not on this host (192.0.2.1, TEST-NET-1)", function()
    local out, rc, path = check('listen = { "127.0.0.1:0", "192.0.2.1:25" }\n')
    assert.equals(1, rc, out)
    assert.truthy(out:find(path .. ":1: listen 192.0.2.1:25: cannot bind 192.0.2.1 on " ..
      "this host: Cannot assign requested address", 1, true), out)
  end)

  it("a start refuses it too, before listening anywhere", function()
    local path = write_config('listen = { "127.0.0.1:0", "192.0.2.1:0" }\n')
    local out, rc = H.sh("timeout 5 " .. H.q(H.binary) .. " -c " .. H.q(path))
    assert.equals(1, rc, out)
    assert.truthy(out:find("listen 192.0.2.1:0: cannot bind", 1, true), out)
    assert.is_nil(out:find("net listening", 1, true), out)
  end)
end)

describe("luasmtpd -t: blame and listener options #e2e", function()
  it("blames a setting assigned twice on the assignment whose value is used", function()
    local out, rc, path = check('listen = "127.0.0.1:0"\nreceived_header = true\n\n' ..
      'received_header = "yes"\n')
    assert.equals(1, rc, out)
    assert.truthy(out:find(path .. ":4: received_header must be true or false", 1, true), out)
  end)

  it("uses the last assignment when an earlier one was wrong", function()
    local out, rc = check('listen = "127.0.0.1:0"\nreceived_header = "yes"\n' ..
      'received_header = false\n')
    assert.equals(0, rc, out)
  end)

  it("blames a twice-assigned listen on its last line", function()
    local out, rc, path = check('listen = "127.0.0.1:0"\nhostname = "x"\n' ..
      'listen = "[::1]:bad"\n')
    assert.equals(1, rc, out)
    assert.truthy(out:find(path .. ":3: listen '[::1]:bad': bad port", 1, true), out)
  end)

  it("refuses lmtp = true on a listener until LMTP server mode exists", function()
    local out, rc, path = check('\n\nlisten = { { address = "127.0.0.1:0", lmtp = true } }\n')
    assert.equals(1, rc, out)
    assert.truthy(out:find(path .. ":3: listen 127.0.0.1: lmtp listeners are not " ..
      "implemented yet", 1, true), out)
  end)

  it("accepts lmtp = false", function()
    local out, rc = check('listen = { { address = "127.0.0.1:0", lmtp = false } }\n')
    assert.equals(0, rc, out)
  end)
end)

describe("luasmtpd -t: auth_failure_delay is a top-level setting #e2e", function()
  it("is read at the top level", function()
    local out, rc, path = check('listen = "127.0.0.1:0"\nauth_failure_delay = -1\n')
    assert.equals(1, rc, out)
    assert.truthy(out:find(path .. ":2: auth_failure_delay must be between 0 and 86400 " ..
      "seconds", 1, true), out)
    out, rc = check('listen = "127.0.0.1:0"\nauth_failure_delay = 0.5\n')
    assert.equals(0, rc, out)
  end)

  it("is not a timeouts setting", function()
    local out, rc, path = check('listen = "127.0.0.1:0"\ntimeouts = { auth_failure_delay = 1 }\n')
    assert.equals(1, rc, out)
    assert.truthy(out:find(path .. ":2: unknown setting timeouts.auth_failure_delay", 1, true),
      out)
  end)
end)
