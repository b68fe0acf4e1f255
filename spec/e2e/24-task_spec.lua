-- 24-task_spec.lua — the task layer: hooks as coroutines, operations that
-- yield, smtp.all (parallel, wait for all), timeouts and cancellation.

local H = require "spec.helpers"

local config = [[
local smtp = require "luasmtpd"
listen = smtp.var("listen")
spool = smtp.var("spool")
hostname = "mx.example.test"
timeouts = { hook = 2 }

local function slow(v, secs)
  return function() smtp.sleep(secs) return v end
end

function hooks.rcpt(s, rcpt)
  local what = rcpt:match("^([^@]+)@")
  if what == "all" then
    local a, b, c = smtp.all(slow("a", 0.05), slow("b", 0.01), slow("c", 0.03))
    s:log("all=" .. a .. b .. c)
    return smtp.accept()
  elseif what == "nested" then
    local x, y = smtp.all(function()
      local p, q = smtp.all(slow("p", 0.01), slow("q", 0.01))
      return p .. q
    end, slow("y", 0.02))
    s:log("nested=" .. x .. y)
    return smtp.accept()
  elseif what == "fails" then
    smtp.all(slow("a", 0.01), function() smtp.sleep(0.01) error("boom") end, slow("c", 1))
    return smtp.accept()
  elseif what == "empty" then
    local n = select("#", smtp.all())
    s:log("empty=" .. n)
    return smtp.accept()
  elseif what == "yield" then
    coroutine.yield()
    return smtp.accept()
  elseif what == "owncoroutine" then
    local co = coroutine.create(function() smtp.sleep(0.01) end)
    local ok, err = coroutine.resume(co)
    s:log("own=" .. tostring(ok) .. " " .. tostring(err))
    return smtp.accept()
  elseif what == "timeout" then
    smtp.all(slow("a", 30), slow("b", 30))
    return smtp.accept()
  elseif what == "sleeper" then
    smtp.sleep(30)
    return smtp.accept()
  elseif what == "pcall" then
    local ok, v = pcall(function() smtp.sleep(0.01) return "slept" end)
    s:log("pcall=" .. tostring(ok) .. " " .. tostring(v))
    return smtp.accept()
  end
  return smtp.accept()
end
]]

describe("the task layer #e2e #task", function()
  local srv
  lazy_setup(function() srv = H.start_server{ config = config } end)
  lazy_teardown(function() srv:stop() end)

  it("runs smtp.all's functions in parallel and returns their results in order", function()
    local c = H.session(srv.port, { rcpts = {} })
    c:cmd("RCPT TO:<all@example.test>", 250)
    c:close()
    srv:wait_log("all=abc")
  end)

  it("nests smtp.all", function()
    local c = H.session(srv.port, { rcpts = {} })
    c:cmd("RCPT TO:<nested@example.test>", 250)
    c:close()
    srv:wait_log("nested=pqy")
  end)

  it("returns nothing for smtp.all()", function()
    local c = H.session(srv.port, { rcpts = {} })
    c:cmd("RCPT TO:<empty@example.test>", 250)
    c:close()
    srv:wait_log("empty=0")
  end)

  it("fails the hook with the first error of smtp.all and cancels the others", function()
    local c = H.session(srv.port, { rcpts = {} })
    c:cmd("RCPT TO:<fails@example.test>", 451, "4%.3%.0")
    c:cmd("NOOP", 250)
    c:close()
    srv:wait_log("smtp%.all: function #2 failed:[^\n]*boom")
  end)

  it("refuses coroutine.yield in a hook with 451 and says why", function()
    local c = H.session(srv.port, { rcpts = {} })
    c:cmd("RCPT TO:<yield@example.test>", 451)
    c:close()
    srv:wait_log("yielded outside a luasmtpd call")
  end)

  it("refuses a yielding call from a coroutine of the config's own", function()
    local c = H.session(srv.port, { rcpts = {} })
    c:cmd("RCPT TO:<owncoroutine@example.test>", 250)
    c:close()
    srv:wait_log("own=false [^\n]*not from a coroutine of your own")
  end)

  it("lets a yielding call run inside pcall", function()
    local c = H.session(srv.port, { rcpts = {} })
    c:cmd("RCPT TO:<pcall@example.test>", 250)
    c:close()
    srv:wait_log("pcall=true slept")
  end)

  it("times out a hook whose parallel calls wait too long (timeouts.hook), and goes on", function()
    local c = H.session(srv.port, { rcpts = {} })
    c:cmd("RCPT TO:<timeout@example.test>", 451, "4%.3%.0")
    c:cmd("RCPT TO:<all@example.test>", 250)
    c:close()
    srv:wait_log("hook timed out after 2%.0 s %(timeouts%.hook%)")
  end)

  it("serves other sessions while a hook sleeps, and drops the sleep when its client leaves", function()
    local sleeper = H.session(srv.port, { rcpts = {} })
    sleeper:send("RCPT TO:<sleeper@example.test>\r\n")
    for _ = 1, 3 do
      local c = H.session(srv.port, { rcpts = {} })
      c:cmd("RCPT TO:<all@example.test>", 250)
      c:cmd("QUIT", 221)
      c:close()
    end
    sleeper:close()
    srv:wait_log("client%-gone while=rcpt")
    assert.truthy(srv:alive())
  end)

  it("refuses smtp.sleep outside a hook (at load time)", function()
    local dir = H.tmpdir()
    H.write_file(dir .. "/c.lua", [[
local smtp = require "luasmtpd"
listen = "127.0.0.1:0"
smtp.sleep(1)
]])
    local out, rc = H.sh(H.q(H.binary) .. " -t -c " .. H.q(dir .. "/c.lua"))
    assert.are_not.equal(0, rc)
    assert.matches("sleep: only inside a hook", out)
  end)
end)
