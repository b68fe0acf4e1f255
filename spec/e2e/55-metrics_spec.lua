-- 55-metrics_spec.lua — the Prometheus endpoint (src/metrics): after a
-- known set of sessions, messages, refusals, hook errors and deliveries,
-- /metrics shows exactly those counts, read by a real Prometheus-format
-- parser (Debian's python3-prometheus-client:
-- prometheus_client.parser.text_string_to_metric_families); histograms
-- are consistent; hook CPU time is split from wall time; and requests that
-- are not `GET /metrics` — malformed, oversized, silent, too many — are
-- answered or closed without harm.

local H = require "spec.helpers"
local socket = require "socket"
local cjson = require "cjson"

local PYTHON = "/usr/bin/python3"
local PARSER = [[
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
with open(sys.argv[1]) as f:
    text = f.read()
for fam in text_string_to_metric_families(text):
    for s in fam.samples:
        v = s.value
        out.append({"family": fam.name, "type": fam.type, "name": s.name,
                    "labels": s.labels, "value": v if math.isfinite(v) else str(v)})
print(json.dumps(out))
]]

local config = [[
local smtp = require "luasmtpd"
local deliver = require "luasmtpd.deliver"
listen = smtp.var("listen")
spool = smtp.var("spool")
metrics = { address = smtp.var("metrics") }
hostname = "mx.example.test"
-- The CPU burner below must not meet the watchdog on a busy machine.
timeouts = { hook_cpu = 20 }
local maildir = smtp.var("maildir")

function hooks.mail(s, sender)
  if sender == "boom@remote.test" then error("boom") end
end
function hooks.rcpt(s, rcpt)
  if rcpt == "later@example.test" then return smtp.tempfail() end
  if rcpt:match("@example%.test$") then return smtp.accept() end
end
-- VRFY computes (CPU time close to wall time); RSET waits (CPU << wall).
function hooks.vrfy(s, arg)
  local t0, n = os.clock(), 0
  while os.clock() - t0 < 0.25 do n = n + 1 end
  s:log(("vrfy burnt=%.6f"):format(os.clock() - t0))
  return smtp.accept()
end
function hooks.reset(s)
  smtp.sleep(0.3)
end
function hooks.message(s, msg)
  local subject = msg:header("Subject")
  if subject == "reject" then return smtp.reject() end
  if subject == "deliver" then
    local ok = deliver.maildir(maildir)
    if not ok then return smtp.tempfail() end
  end
end
]]

-- GET path over a raw socket; returns status, headers text, body.
local function http(port, request)
  local sock = socket.tcp()
  sock:settimeout(10)
  assert(sock:connect("127.0.0.1", port))
  assert(sock:send(request))
  local data, err, partial = sock:receive("*a")
  sock:close()
  data = data or partial
  local head, body = data:match("^(.-)\r\n\r\n(.*)$")
  return tonumber(data:match("^HTTP/1%.1 (%d%d%d) ")), head, body, err
end

local function scrape(port)
  local status, head, body = http(port, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
  assert.equals(200, status, tostring(head))
  assert.truthy(head:find("\r\nContent-Type: text/plain; version=0.0.4", 1, true), head)
  assert.equals(#body, tonumber(head:match("Content%-Length: (%d+)")))
  return body
end

-- The samples, as the Python parser reads them: lookup by name and labels.
local function parse(dir, text)
  local file, script = dir .. "/scrape.txt", dir .. "/parse.py"
  H.write_file(file, text)
  H.write_file(script, PARSER)
  local out, rc = H.sh(PYTHON .. " " .. H.q(script) .. " " .. H.q(file))
  assert.equals(0, rc, out)
  local samples = cjson.decode(out)
  local by, families = {}, {}
  local function key(name, labels)
    local ks = {}
    for k, v in pairs(labels) do ks[#ks + 1] = k .. "=" .. v end
    table.sort(ks)
    return name .. "{" .. table.concat(ks, ",") .. "}"
  end
  for _, s in ipairs(samples) do
    by[key(s.name, s.labels)] = tonumber(s.value) or s.value
    families[s.family] = s.type
  end
  return function(name, labels)
    local v = by[key(name, labels or {})]
    assert(v ~= nil, "no sample " .. key(name, labels or {}))
    return v
  end, samples, families
end

describe("the metrics endpoint #e2e #metrics", function()
  local srv, mport, dir
  local classes = { ["2xx"] = 0, ["3xx"] = 0, ["4xx"] = 0, ["5xx"] = 0 }
  local sizes = { accepted = 0, rejected = 0 }

  -- Expect a reply of this code and count its class.
  local function expect(c, code)
    local text = c:expect(code)
    local class = tostring(code):sub(1, 1) .. "xx"
    classes[class] = classes[class] + 1
    return text
  end
  local function cmd(c, line, code)
    c:send(line .. "\r\n")
    return expect(c, code)
  end
  local function message(c, content, code, outcome)
    cmd(c, "DATA", 354)
    c:send(content .. ".\r\n")
    expect(c, code)
    sizes[outcome] = sizes[outcome] + #content
  end

  lazy_setup(function()
    dir = H.tmpdir()
    srv = H.start_server{ dir = dir, config = config,
      defines = { metrics = "127.0.0.1:0", maildir = dir .. "/Maildir" } }
    mport = tonumber(srv:wait_log("metrics listening addr=127%.0%.0%.1:(%d+)"))
  end)
  lazy_teardown(function() srv:stop() end)

  it("serves the exposition, which the Python parser reads", function()
    local text = scrape(mport)
    assert.truthy(text:find("# TYPE luasmtpd_sessions_total counter\n", 1, true))
    assert.truthy(text:find("# TYPE luasmtpd_hook_wall_seconds histogram\n", 1, true))
    local get, samples, families = parse(dir, text)
    assert(#samples > 100, "only " .. #samples .. " samples")
    assert.equals("counter", families.luasmtpd_sessions)
    assert.equals("gauge", families.luasmtpd_connections_open)
    assert.equals("histogram", families.luasmtpd_hook_cpu_seconds)
    assert.equals(0, get("luasmtpd_connections_accepted_total"))
    assert.equals(0, get("luasmtpd_sessions_total", { outcome = "quit" }))
  end)

  it("counts exactly what a known set of sessions did", function()
    -- 1: a CPU-bound VRFY hook, one message queued.
    local c = H.connect(srv.port)
    expect(c, 220)
    cmd(c, "EHLO one.test", 250)
    cmd(c, "VRFY someone", 250)
    cmd(c, "MAIL FROM:<a@remote.test>", 250)
    cmd(c, "RCPT TO:<u@example.test>", 250)
    message(c, "Subject: queued\r\n\r\nhello\r\n", 250, "accepted")
    cmd(c, "QUIT", 221)
    c:close()
    -- 2: a waiting RSET hook, a hook error, refusals, a rejected message.
    c = H.connect(srv.port)
    expect(c, 220)
    cmd(c, "EHLO two.test", 250)
    cmd(c, "RSET", 250)
    cmd(c, "MAIL FROM:<boom@remote.test>", 451)
    cmd(c, "MAIL FROM:<a@remote.test>", 250)
    cmd(c, "RCPT TO:<x@other.test>", 554)
    cmd(c, "RCPT TO:<later@example.test>", 451)
    cmd(c, "RCPT TO:<u@example.test>", 250)
    message(c, "Subject: reject\r\n\r\nno thanks\r\n", 550, "rejected")
    cmd(c, "QUIT", 221)
    c:close()
    -- 3: one Maildir delivery for two recipients.
    c = H.connect(srv.port)
    expect(c, 220)
    cmd(c, "EHLO three.test", 250)
    cmd(c, "MAIL FROM:<a@remote.test>", 250)
    cmd(c, "RCPT TO:<u1@example.test>", 250)
    cmd(c, "RCPT TO:<u2@example.test>", 250)
    message(c, "Subject: deliver\r\n\r\ntwice\r\n", 250, "accepted")
    cmd(c, "QUIT", 221)
    c:close()
    -- 4: a client that goes away without QUIT.
    c = H.connect(srv.port)
    expect(c, 220)
    cmd(c, "EHLO four.test", 250)
    c:close()
    H.wait_for(function() return srv:count_log("smtp disconnect reason=") == 4 end, 10,
      "four sessions to end\n" .. srv:log())

    local get = parse(dir, scrape(mport))
    assert.equals(4, get("luasmtpd_connections_accepted_total"))
    assert.equals(0, get("luasmtpd_connections_open"))
    local sessions = { quit = 3, dropped = 1, timeout = 0, rejected = 0, error = 0 }
    for outcome, n in pairs(sessions) do
      assert.equals(n, get("luasmtpd_sessions_total", { outcome = outcome }), outcome)
    end
    for class, n in pairs(classes) do
      assert.equals(n, get("luasmtpd_replies_total", { class = class }), class)
    end
    assert.equals(2, get("luasmtpd_messages_total", { outcome = "accepted" }))
    assert.equals(1, get("luasmtpd_messages_total", { outcome = "rejected" }))
    assert.equals(0, get("luasmtpd_messages_total", { outcome = "tempfailed" }))
    assert.equals(0, get("luasmtpd_messages_total", { outcome = "discarded" }))
    assert.equals(sizes.accepted, get("luasmtpd_message_bytes_total", { outcome = "accepted" }))
    assert.equals(sizes.rejected, get("luasmtpd_message_bytes_total", { outcome = "rejected" }))
    assert.equals(1, get("luasmtpd_hook_errors_total", { hook = "mail" }))
    assert.equals(0, get("luasmtpd_hook_errors_total", { hook = "rcpt" }))
    assert.equals(2, get("luasmtpd_deliveries_total", { target = "maildir", outcome = "delivered" }))
    assert.equals(0, get("luasmtpd_deliveries_total", { target = "maildir", outcome = "tempfail" }))
    assert.equals(1, get("luasmtpd_queue_messages", { state = "queued" }))
    assert.equals(0, get("luasmtpd_queue_messages", { state = "lost" }))
    -- Hooks run: mail 4 times, rcpt 6, message 3, vrfy and reset once.
    for hook, n in pairs{ mail = 4, rcpt = 6, message = 3, vrfy = 1, reset = 1, helo = 0 } do
      assert.equals(n, get("luasmtpd_hook_wall_seconds_count", { hook = hook }), hook)
      assert.equals(n, get("luasmtpd_hook_cpu_seconds_count", { hook = hook }), hook)
    end
    assert.equals(1, get("luasmtpd_operation_seconds_count", { op = "sleep" }))
    assert(get("luasmtpd_operation_seconds_sum", { op = "sleep" }) >= 0.29)
    assert.equals(1, get("luasmtpd_operation_seconds_count", { op = "deliver" }))
  end)

  it("splits CPU time from wall time: a computing hook and a waiting one", function()
    local get = parse(dir, scrape(mport))
    local cpu = get("luasmtpd_hook_cpu_seconds_sum", { hook = "vrfy" })
    local wall = get("luasmtpd_hook_wall_seconds_sum", { hook = "vrfy" })
    -- The hook burnt >= 0.25 s of CPU time (os.clock: the process's, and
    -- the pool threads idle): the metric shows that much, within 20%.
    local burnt = tonumber(srv:wait_log("vrfy burnt=([%d.]+)"))
    assert(burnt >= 0.25, "burnt " .. burnt)
    assert(math.abs(cpu - burnt) <= 0.2 * burnt, ("vrfy cpu %g, burnt %g"):format(cpu, burnt))
    assert(cpu <= wall + 0.001, ("vrfy cpu %g > wall %g"):format(cpu, wall))
    -- Close to wall time: what is missing is time this process waited for
    -- a core (the machine is shared), not time the hook waited.
    assert(cpu >= 0.3 * wall, ("vrfy cpu %g is far below wall %g"):format(cpu, wall))
    cpu = get("luasmtpd_hook_cpu_seconds_sum", { hook = "reset" })
    wall = get("luasmtpd_hook_wall_seconds_sum", { hook = "reset" })
    assert(wall >= 0.29, "reset wall " .. wall)
    assert(cpu < 0.05 and cpu < wall / 10, ("reset cpu %g, wall %g"):format(cpu, wall))
  end)

  it("keeps every histogram consistent: cumulative buckets, +Inf = _count, _sum", function()
    local _, samples, families = parse(dir, scrape(mport))
    local series = {}
    for _, s in ipairs(samples) do
      if families[s.family] == "histogram" then
        local labels = {}
        for k, v in pairs(s.labels) do if k ~= "le" then labels[#labels + 1] = k .. "=" .. v end end
        table.sort(labels)
        local id = s.family .. "{" .. table.concat(labels, ",") .. "}"
        series[id] = series[id] or { buckets = {} }
        local suffix = s.name:sub(#s.family + 2)
        if suffix == "bucket" then
          local le = s.labels.le == "+Inf" and math.huge or tonumber(s.labels.le)
          table.insert(series[id].buckets, { le = le, n = s.value })
        else
          series[id][suffix] = s.value
        end
      end
    end
    local n = 0
    for id, h in pairs(series) do
      n = n + 1
      assert(#h.buckets >= 2, id)
      for i = 2, #h.buckets do
        assert(h.buckets[i].le > h.buckets[i - 1].le, id .. ": le not ascending")
        assert(h.buckets[i].n >= h.buckets[i - 1].n, id .. ": buckets not cumulative")
      end
      assert.equals(math.huge, h.buckets[#h.buckets].le, id)
      assert.equals(h.count, h.buckets[#h.buckets].n, id .. ": +Inf bucket ~= _count")
      assert(h.sum >= 0, id)
      if h.count == 0 then assert.equals(0, h.sum, id) end
      -- Every observation lies at or below its bucket's bound.
      local prev, bound = 0, 0
      for _, b in ipairs(h.buckets) do
        if b.le ~= math.huge then bound = bound + (b.n - prev) * b.le end
        prev = b.n
      end
      if h.buckets[#h.buckets].n == (h.buckets[#h.buckets - 1] or {}).n then
        assert(h.sum <= bound + 1e-6, id .. ": _sum above what the buckets allow")
      end
    end
    assert(n >= 2 * 10 + 8, "only " .. n .. " histogram series")
  end)
end)

describe("the metrics endpoint with bad requests #e2e #metrics #hostile", function()
  local srv, mport, silent, silent_at, busy

  lazy_setup(function()
    local dir = H.tmpdir()
    srv = H.start_server{ dir = dir, config = config,
      defines = { metrics = "127.0.0.1:0", maildir = dir .. "/Maildir" } }
    mport = tonumber(srv:wait_log("metrics listening addr=127%.0%.0%.1:(%d+)"))
    -- Opened first, never completes its request: the deadline closes it.
    silent = socket.tcp()
    silent:settimeout(20)
    assert(silent:connect("127.0.0.1", mport))
    assert(silent:send("GET /metrics HTTP/1.1\r\nHost: x\r\n"))
    silent_at = socket.gettime()
  end)
  lazy_teardown(function()
    if silent then silent:close() end
    srv:stop()
  end)

  local bad = {
    { "garbage", "HELLO\r\n\r\n", 400 },
    { "no HTTP version (HTTP/0.9)", "GET /metrics\r\n\r\n", 400 },
    { "HTTP/2.0", "GET /metrics HTTP/2.0\r\n\r\n", 400 },
    { "a NUL byte", "GET /metrics HTTP/1.1\r\nX: a\0b\r\n\r\n", 400 },
    { "two spaces", "GET  /metrics HTTP/1.1\r\n\r\n", 400 },
    { "another path", "GET /metricsx HTTP/1.1\r\n\r\n", 404 },
    { "the root", "GET / HTTP/1.0\r\n\r\n", 404 },
    { "POST", "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405 },
    { "HEAD", "HEAD /metrics HTTP/1.1\r\n\r\n", 405 },
    { "a head of 5000 octets", "GET /metrics HTTP/1.1\r\nX: " .. ("a"):rep(5000) .. "\r\n\r\n", 431 },
    { "5000 octets without a line end", ("a"):rep(5000), 431 },
  }
  for _, case in ipairs(bad) do
    it("answers " .. case[1] .. " with " .. case[3] .. " and closes", function()
      local status, head = http(mport, case[2])
      assert.equals(case[3], status, tostring(head))
      assert.truthy(head:find("\r\nConnection: close", 1, true))
    end)
  end

  it("answers a query string and bare LF line ends", function()
    assert.equals(200, (http(mport, "GET /metrics?x=1 HTTP/1.1\nHost: y\n\n")))
  end)

  it("closes a client that sends nothing at once, without an answer", function()
    local s = socket.tcp()
    s:settimeout(5)
    assert(s:connect("127.0.0.1", mport))
    s:close()
  end)

  it("closes clients beyond 16 at once and serves again when they leave", function()
    local conns = {}
    for i = 1, 20 do
      conns[i] = socket.tcp()
      conns[i]:settimeout(5)
      assert(conns[i]:connect("127.0.0.1", mport))
    end
    -- The refused ones are closed at once: readable, at EOF.  The others
    -- (and the silent client of lazy_setup) wait for their request.
    H.sleep(0.3)
    local readable = socket.select(conns, nil, 1)
    local refused = 0
    for _, s in ipairs(readable) do
      s:settimeout(1)
      local data, err = s:receive("*a")
      if data == "" or err == "closed" then refused = refused + 1 end
    end
    assert(refused >= 5, refused .. " refused")
    assert(20 - refused <= 15, (20 - refused) .. " held beside the silent client")
    for _, s in ipairs(conns) do s:close() end
    -- The server may not have seen every close yet: a scrape that comes
    -- too early is refused as busy too, and counted.
    local early = 0
    H.wait_for(function()
      local ok, status = pcall(http, mport, "GET /metrics HTTP/1.1\r\n\r\n")
      if ok and status == 200 then return true end
      early = early + 1
      return false
    end, 10, "a scrape after the crowd left")
    busy = refused + early
  end)

  it("closes a client that never finishes its request at the deadline", function()
    local _, err = silent:receive("*a")
    assert.equals("closed", err)
    local waited = socket.gettime() - silent_at
    assert(waited < 15, "closed after " .. waited .. " s")
    silent:close()
    silent = nil
  end)

  it("counts what it answered, and the server still serves SMTP", function()
    local text = select(3, http(mport, "GET /metrics HTTP/1.1\r\n\r\n"))
    local get = parse(srv.dir, text)
    -- 400 and 431 count as bad requests; 404 and 405 as not found.
    assert.equals(7, get("luasmtpd_metrics_requests_total", { status = "bad_request" }))
    assert.equals(4, get("luasmtpd_metrics_requests_total", { status = "not_found" }))
    assert.equals(busy, get("luasmtpd_metrics_requests_total", { status = "busy" }))
    assert.equals(1, get("luasmtpd_metrics_requests_total", { status = "timeout" }))
    assert(get("luasmtpd_metrics_requests_total", { status = "ok" }) >= 2)
    assert.truthy(H.transaction_works(srv.port))
    assert.truthy(srv:alive())
  end)
end)
