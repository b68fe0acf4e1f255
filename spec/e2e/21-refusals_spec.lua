-- Refusals on an implicit-TLS listener (issue 8, finding 13) and the
-- process umask after a self-signed certificate (finding 12).
--
-- RFC 8314 clients speak TLS from the first byte; a plaintext "421" there
-- is garbage to their TLS stack, so a refused connection is closed without
-- a byte.
local H = require "spec.helpers"
local socket = require "socket"

local function implicit_config(limits)
  return H.basic_config:gsub('listen = smtp.var%("listen"%)', "") .. ([[
listen = { address = smtp.var("listen"), tls = "implicit" }
tls = { certs = { { cert = smtp.var("cert"), key = smtp.var("key") } } }
limits = { %s }
]]):format(limits)
end

local function start_implicit(limits, extra)
  local dir = H.tmpdir()
  local cert, key = H.make_cert(dir, "mx.example.test")
  local opts = { dir = dir, config = implicit_config(limits),
    defines = { cert = cert, key = key } }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return H.start_server(opts)
end

-- Everything a raw TCP client receives until the server closes (10 s cap),
-- and how the read ended ("closed" or "timeout").
local function bytes_until_close(port)
  local c = H.connect(port)
  local _, err, partial = c.sock:receive("*a")
  c:close()
  return partial, err
end

describe("refusals on an implicit-TLS listener #e2e #tls", function()
  it("max_connections_per_ip: the second connection gets no plaintext, just a close", function()
    local srv = start_implicit("max_connections_per_ip = 1")
    finally(function() srv:stop() end)
    local first = H.connect_tls(srv.port)
    first:expect(220)
    local got, err = bytes_until_close(srv.port)
    assert.equals("", got)
    assert.equals("closed", err)
    srv:wait_log("net refuse ip=127%.0%.0%.1 reason=max_connections_per_ip")
    -- The session in place is not disturbed.
    first:cmd("EHLO client.test", 250)
    first:cmd("QUIT", 221)
    first:close()
  end)

  it("max_connections: the excess connection gets no plaintext, just a close", function()
    local srv = start_implicit("max_connections = 1")
    finally(function() srv:stop() end)
    local first = H.connect_tls(srv.port)
    first:expect(220)
    local got, err = bytes_until_close(srv.port)
    assert.equals("", got)
    assert.equals("closed", err)
    srv:wait_log("net refuse ip=127%.0%.0%.1 reason=max_connections ")
    first:close()
  end)

  it("out of descriptors: the excess connections get no plaintext, just a close", function()
    local srv = start_implicit("max_connections_per_ip = 500", { ulimit_nofile = 40 })
    finally(function() srv:stop() end)
    local conns = {}
    for i = 1, 60 do conns[i] = H.connect(srv.port) end
    -- Refused ones are closed within moments; accepted ones wait for our
    -- ClientHello and send nothing.  Watch all of them for a while.
    local closed, pending = 0, {}
    for _, c in ipairs(conns) do pending[#pending + 1] = c.sock end
    local deadline = socket.gettime() + 3
    while socket.gettime() < deadline and #pending > 0 do
      local ready = socket.select(pending, nil, 0.5)
      local still = {}
      for _, s in ipairs(pending) do
        if ready[s] then
          s:settimeout(1)
          local data, err, partial = s:receive(1)
          assert.equals("closed", err, "got bytes before any handshake: " ..
            tostring(data or partial))
          assert.equals("", partial)
          closed = closed + 1
        else
          still[#still + 1] = s
        end
      end
      pending = still
    end
    for _, c in ipairs(conns) do c:close() end
    assert.is_true(closed >= 20, closed .. " of 60 refused")
    srv:wait_log("net accept%-pause ")
  end)
end)

describe("self-signed certificate #e2e #tls", function()
  it("leaves the process umask as it found it (022) and the key 0600", function()
    local dir = H.tmpdir()
    local srv = H.start_server{ dir = dir, umask = "022",
      config_file = H.root .. "/examples/default.lua",
      defines = { maildir = dir .. "/mail", tls_cert = dir .. "/tls/c.pem",
                  tls_key = dir .. "/tls/k.pem", hostname = "selfsigned.test" } }
    finally(function() srv:stop() end)
    srv:wait_log("tls self%-signed%-created name=selfsigned%.test")
    local status = H.read_file("/proc/" .. srv.pid .. "/status") or ""
    assert.equals("0022", status:match("Umask:%s*(%d+)"))
    assert.equals("600", (H.sh("stat -c %a " .. H.q(dir .. "/tls/k.pem")):gsub("%s+$", "")))
    assert.equals("644", (H.sh("stat -c %a " .. H.q(dir .. "/tls/c.pem")):gsub("%s+$", "")))
  end)
end)
