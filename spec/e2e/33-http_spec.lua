-- 33-http_spec.lua — require "luasmtpd.http" in hooks of the real binary,
-- against nginx on 127.0.0.1 (spec/support/http_peer.lua): answers (status,
-- headers, body), methods, redirects, the body limit, a timeout on a
-- silent socket while other clients are served, a refused connection, TLS
-- with verification on and off against a self-signed certificate and with
-- http.ca_file, calls inside smtp.all, a session that goes while a request
-- waits, misuse, and the `http` setting's checks.
--
-- The silent socket is a listening socket of this spec that never accepts:
-- the kernel completes the handshake, nobody ever answers.  As in
-- 32-kv_spec.lua the rcpt hook runs the call its recipient's local part
-- names and answers "250 ... R <results joined with ,>".

local socket = require "socket"
local H = require "spec.helpers"
local peers = require "spec.support.peers"
local http_peer = require "spec.support.http_peer"

local config = [[
local smtp = require "luasmtpd"
listen = smtp.var("listen")
spool = smtp.var("spool")
hostname = "mx.example.test"
timeouts = { hook = 20 }
local ca = smtp.var("ca", "")
http = { timeout = 5, connect_timeout = 2, user_agent = "luasmtpd-spec",
         ca_file = ca ~= "" and ca or nil }
local http = require "luasmtpd.http"
local kv = require "luasmtpd.kv"
local json = require "luasmtpd.json"

local base = "http://127.0.0.1:" .. smtp.var("port")
local tls = "https://127.0.0.1:" .. smtp.var("tls_port")
local silent = "http://127.0.0.1:" .. smtp.var("silent")
local refused = "http://127.0.0.1:" .. smtp.var("refused")

local function show(...)
  local out = {}
  for i = 1, select("#", ...) do out[i] = tostring((select(i, ...))) end
  return table.concat(out, ",")
end

-- The first two results of a failed call (detail is libcurl's own text).
local function fail2(r, err) return r, err end

local ops = {}
function ops.json()
  local r = assert(http.request{ url = base .. "/json", headers = { ["X-Req"] = "hello" } })
  return r.status, r.headers["content-type"], r.headers["x-echo"], json.decode(r.body).user,
    type(r.time)
end
function ops.missing() return http.get(base .. "/missing").status end
function ops.post()
  local r = http.post(base .. "/echo", "hello body", { headers = { ["Content-Type"] = "text/plain" } })
  return r.status, r.body, r.headers["x-method"], r.headers["x-content-type"]
end
function ops.put()
  local r = http.request{ method = "put", url = base .. "/echo", body = "put!" }
  return r.headers["x-method"], r.body
end
function ops.head()
  local r = http.request{ method = "HEAD", url = base .. "/json" }
  return r.status, #r.body
end
function ops.rep() return http.get(base .. "/repeat").headers["x-rep"] end
function ops.big() return fail2(http.get(base .. "/big")) end
function ops.bigok()
  local r = http.get(base .. "/big", { max_body = 3 * 1024 * 1024 })
  return r.status, #r.body
end
function ops.redirect() return http.get(base .. "/redirect").status end
function ops.follow()
  local r = http.get(base .. "/redirect", { follow = true })
  return r.status, r.url:match("/json$") ~= nil
end
function ops.tofile() return fail2(http.get(base .. "/to-file", { follow = true })) end
function ops.silent(t) return fail2(http.get(silent, { timeout = tonumber(t) })) end
function ops.refused() return fail2(http.get(refused)) end
function ops.tls() return fail2(http.get(tls .. "/json")) end
function ops.tlsstatus() return http.get(tls .. "/json").status end
function ops.tlsoff() return http.get(tls .. "/json", { verify = false }).status end
function ops.ua()
  return http.get(base .. "/request-headers").body:find("User-Agent: luasmtpd-spec", 1, true) ~= nil
end
function ops.all()
  return smtp.all(function() return http.get(base .. "/json").status end,
    function() return kv.incr("http-spec-par") end,
    function() return (select(2, http.get(refused))) end)
end
function ops.badurl() return http.get("ftp://127.0.0.1/") end
function ops.badname() return http.request{ url = base, headers = { ["Bad Name"] = "x" } } end
function ops.badvalue() return http.request{ url = base, headers = { X = "a\r\nInjected: 1" } } end
function ops.framing() return http.request{ url = base, headers = { ["content-length"] = "5" } } end
function ops.getbody() return http.request{ url = base, method = "GET", body = "x" } end
function ops.badverify() return http.get(base, { verify = "yes" }) end
function ops.badopt() return http.get(base, { timout = 1 }) end

function hooks.rcpt(s, rcpt)
  local lp = rcpt:match("^([^@]+)@")
  local parts = {}
  for p in lp:gmatch("[^+]+") do parts[#parts + 1] = p end
  local op = table.remove(parts, 1)
  return smtp.accept("R " .. show(ops[op](unpack(parts))))
end
]]

local function call(srv, op)
  local c = H.session(srv.port, { rcpts = {} })
  c:send("RCPT TO:<" .. op .. "@example.test>\r\n")
  local code, text = c:reply()
  c:cmd("QUIT", 221)
  c:close()
  local r = text and text:match(" R (.*)$")
  if code == 250 and r then return r end
  return nil, code, text
end

local function must(srv, op)
  local r, code, text = call(srv, op)
  assert(r, ("%s: got %s %s\n--- log:\n%s"):format(op, tostring(code), tostring(text),
    srv:log()))
  return r
end

describe("luasmtpd.http #e2e #http", function()
  local web, silent, silent_port, srv
  local function defines(extra)
    local d = { port = web.port, tls_port = web.tls_port, silent = silent_port,
      refused = peers.free_port() }
    for k, v in pairs(extra or {}) do d[k] = v end
    return d
  end

  lazy_setup(function()
    web = http_peer.nginx{}
    silent = assert(socket.bind("127.0.0.1", 0, 64))
    silent_port = select(2, silent:getsockname())
    srv = H.start_server{ config = config, defines = defines() }
  end)
  lazy_teardown(function()
    if srv then srv:stop() end
    if silent then silent:close() end
    if web then web:stop() end
  end)

  it("gets an answer: status, lower-case headers, body, time", function()
    assert.equals("200,application/json,hello,alice,number", must(srv, "json"))
  end)

  it("returns a 404 as a response, not an error", function()
    assert.equals("404", must(srv, "missing"))
  end)

  it("posts a body with its headers", function()
    assert.equals("200,hello body,POST,text/plain", must(srv, "post"))
  end)

  it("takes the method in any case (PUT) and HEAD has no body", function()
    assert.equals("PUT,put!", must(srv, "put"))
    assert.equals("200,0", must(srv, "head"))
  end)

  it("joins repeated response headers with \", \"", function()
    assert.equals("one, two", must(srv, "rep"))
  end)

  it("sends the configured User-Agent", function()
    assert.equals("true", must(srv, "ua"))
  end)

  it("refuses a body over max_body, and takes it under a larger one", function()
    assert.equals("nil,response too large", must(srv, "big"))
    assert.equals("200," .. 2 * 1024 * 1024, must(srv, "bigok"))
  end)

  it("does not follow redirects unless asked, and never to file://", function()
    assert.equals("302", must(srv, "redirect"))
    assert.equals("200,true", must(srv, "follow"))
    assert.matches("^nil,", must(srv, "tofile"))
  end)

  it("returns connection refused", function()
    assert.equals("nil,connection refused", must(srv, "refused"))
  end)

  it("times out on a silent socket while other clients are served", function()
    local slow = H.session(srv.port, { rcpts = {} })
    slow:send("RCPT TO:<silent+2@example.test>\r\n")
    for _ = 1, 3 do
      assert.equals("200,application/json,hello,alice,number", must(srv, "json"))
    end
    -- The slow hook is still waiting: its reply has not come yet.
    local line, err = slow:line(0.01)
    assert.is_nil(line)
    assert.equals("timeout", err)
    slow:expect(250, "R nil,timeout$", 10)
    slow:close()
  end)

  it("fails TLS verification of a self-signed certificate by default", function()
    assert.equals("nil,certificate verify failed", must(srv, "tls"))
  end)

  it("skips TLS verification with verify = false", function()
    assert.equals("200", must(srv, "tlsoff"))
  end)

  it("verifies the certificate with http.ca_file", function()
    local trusting = H.start_server{ config = config, defines = defines{ ca = web.ca_file } }
    local ok, r = pcall(must, trusting, "tlsstatus")
    trusting:stop()
    assert(ok, r)
    assert.equals("200", r)
  end)

  it("runs requests in parallel with kv calls inside smtp.all", function()
    assert.matches("^200,%d+,connection refused$", must(srv, "all"))
  end)

  it("drops a pending request when its client leaves, and goes on", function()
    local c = H.session(srv.port, { rcpts = {} })
    c:send("RCPT TO:<silent+10@example.test>\r\n")
    socket.sleep(0.2)
    c:close()
    srv:wait_log("client%-gone while=rcpt")
    assert.truthy(srv:alive())
    assert.equals("404", must(srv, "missing"))
  end)

  local misuse = {
    { "badurl", "url must start with http:// or https://" },
    { "badname", "header name 'Bad Name' is not a token" },
    { "badvalue", "control characters are not allowed" },
    { "framing", "content-length is set by the client" },
    { "getbody", "a body needs method POST, PUT or DELETE" },
    { "badverify", "verify must be true or false" },
    { "badopt", "unknown option 'timout'" },
  }
  for _, case in ipairs(misuse) do
    it("raises on misuse: " .. case[2], function()
      local r, code = call(srv, case[1])
      assert.is_nil(r)
      assert.equals(451, code)
      srv:wait_log((case[2]:gsub("%p", "%%%0")))
    end)
  end
end)

describe("the http setting #e2e #http", function()
  local function check(body)
    local dir = H.tmpdir()
    local path = dir .. "/conf.lua"
    H.write_file(path, 'listen = "127.0.0.1:0"\n' .. body)
    local out, rc = H.sh(H.q(H.binary) .. " -t -c " .. H.q(path))
    return out, rc, path
  end

  local bad = {
    { "http = { timeout = 0 }", "http.timeout must be from" },
    { "http = { max_connections = 0 }", "http.max_connections must be a whole number" },
    { "http = { max_connections = 2, max_host_connections = 3 }", "must not exceed max_connections" },
    { 'http = { ca_file = "/nonexistent/ca.pem" }', "http.ca_file '/nonexistent/ca.pem': No such file" },
    { 'http = { ca_path = "/etc/hostname" }', "not a directory" },
    { 'http = { user_agent = "a\\nb" }', "control characters" },
    { 'http = { proxy = "http://127.0.0.1:3128" }', "unknown setting http.proxy" },
    { "http = true", "http must be a table" },
  }
  for _, case in ipairs(bad) do
    it("-t fails with file:line on " .. case[1], function()
      local out, rc, path = check("\n" .. case[1] .. "\n")
      assert.equals(1, rc, out)
      assert.truthy(out:find(path .. ":3: ", 1, true), out)
      assert.truthy(out:find(case[2], 1, true), out)
    end)
  end

  it("-t passes every setting", function()
    local out, rc = check('http = { max_connections = 16, max_host_connections = 4, ' ..
      'max_requests = 100, timeout = 3, connect_timeout = 1, user_agent = "x/1", ' ..
      'ca_path = "/etc/ssl/certs" }\n')
    assert.equals(0, rc, out)
  end)

  it("raises when called at load time (outside a hook)", function()
    local out, rc = check('local http = require "luasmtpd.http"\nhttp.get("http://127.0.0.1:1/")\n')
    assert.equals(1, rc, out)
    assert.truthy(out:find("http.get: only inside a hook", 1, true), out)
  end)
end)
