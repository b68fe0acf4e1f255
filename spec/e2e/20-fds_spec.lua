-- Out of file descriptors (issue 8, finding 13): the server answers the
-- clients it cannot take "421 4.3.2" and closes them, logs the condition at
-- most once a second, does not spin, and serves again once descriptors free
-- up.  The server runs with RLIMIT_NOFILE = FD_LIMIT (soft and hard, so
-- main.c cannot raise it).
local H = require "spec.helpers"
local socket = require "socket"

local FD_LIMIT = 40
local EXTRA = 20          -- connections past what fits
local WINDOW = 2          -- seconds of CPU measured at the limit
local LOG_WINDOW = 3      -- seconds of refusals whose log lines are counted

local function open_fds(pid)
  local out = H.sh("ls /proc/" .. pid .. "/fd | wc -l")
  return tonumber(out:match("%d+"))
end

-- The first reply line of a fresh connection, or "closed" / "timeout".
local function first_line(c, timeout)
  local l, err = c:line(timeout)
  return l or err
end

describe("out of file descriptors #e2e", function()
  local srv

  lazy_setup(function()
    srv = H.start_server{ ulimit_nofile = FD_LIMIT, config = H.basic_config ..
      "limits = { max_connections_per_ip = 500 }\n" }
  end)
  lazy_teardown(function() if srv then srv:stop() end end)

  it("answers the excess 421 4.3.2, stays quiet and idle, then recovers", function()
    local limits = H.read_file("/proc/" .. srv.pid .. "/limits") or ""
    assert.truthy(limits:match("Max open files%s+" .. FD_LIMIT .. "%s+" .. FD_LIMIT),
      "the server does not run with the low limit:\n" .. limits)
    local base = open_fds(srv.pid)
    local fit = FD_LIMIT - base
    assert(fit > 0 and fit < FD_LIMIT, "descriptors in use at start: " .. base)

    -- More connections than fit, all queued before the server reads them.
    local conns, greeted, refused, other = {}, {}, 0, {}
    for i = 1, fit + EXTRA do conns[i] = H.connect(srv.port) end
    for i, c in ipairs(conns) do
      local l = first_line(c, 3)
      if l:match("^220 ") then
        greeted[#greeted + 1] = c
      elseif l:match("^421 4%.3%.2 mx%.example%.test .*too many open files") then
        refused = refused + 1
        assert.is_true(c:closed(5), "connection " .. i .. " left open after 421")
        c:close()
      elseif l == "closed" then
        refused = refused + 1
        c:close()
      else
        other[#other + 1] = i .. ": " .. l
      end
    end
    assert.same({}, other, "no connection may hang or get another answer")
    assert.is_true(#greeted >= 1 and #greeted <= fit,
      #greeted .. " greeted, " .. fit .. " fit")
    assert.is_true(refused >= EXTRA, refused .. " refused")
    assert.equals(fit + EXTRA, #greeted + refused)

    -- At the limit, one more client every 0.2 s: each is refused at once,
    -- the log gets a line a second at most, and the server does not spin.
    local pauses_before = srv:count_log("net accept%-pause")
    local cpu_before = H.cpu_seconds(srv.pid)
    local t_end = socket.gettime() + LOG_WINDOW
    local cpu_window_end = socket.gettime() + WINDOW
    local cpu_used
    while socket.gettime() < t_end do
      local c = H.connect(srv.port)
      local l = first_line(c, 5)
      c:close()
      assert.truthy(l:match("^421 4%.3%.2 ") or l == "closed",
        "a client at the limit got: " .. tostring(l))
      if not cpu_used and socket.gettime() >= cpu_window_end then
        cpu_used = H.cpu_seconds(srv.pid) - cpu_before
      end
      socket.sleep(0.2)
    end
    assert.is_true(cpu_used ~= nil and cpu_used < 0.5,
      ("the server used %.2f s of CPU in %d s at the limit"):format(cpu_used or -1, WINDOW))
    local pauses = srv:count_log("net accept%-pause") - pauses_before
    assert.is_true(pauses >= 1 and pauses <= LOG_WINDOW + 2,
      pauses .. " accept-pause lines in " .. LOG_WINDOW .. " s")
    assert.truthy(srv:log():match("net accept%-pause listener=%S+ error=\"Too many open " ..
      "files\" refused=%d+"))

    -- Descriptors come back: a new client is greeted and a message goes through.
    for _, c in ipairs(greeted) do c:close() end
    H.wait_for(function() return open_fds(srv.pid) <= base end, 10,
      "the sessions to close")
    local c = H.session(srv.port)
    c:cmd("DATA", 354)
    c:send("Subject: after the limit\r\n\r\nhello\r\n.\r\n")
    c:expect(250)
    c:cmd("QUIT", 221)
    c:close()
    assert.is_true(srv:alive())
  end)
end)
