-- Line lengths around every internal bound, at every stage, in plaintext
-- and under TLS (issue 8: "Specs that sweep line lengths around every
-- internal bound").
--
-- Lengths: 512, 1000, 4096, 12288, 16384, 65536 and each +-1, counted in
-- octets INCLUDING the line end; endings CRLF, bare LF and bare CR.  The
-- contract each case checks:
--
--   * a command line (or an AUTH response line) longer than 12288 octets
--     (SMTP_READ_LINE_MAX), whether or not it ends in LF, gets
--     "500 5.5.2 ... line too long", then "421 4.7.0", and the connection
--     is closed;
--   * up to that bound the session goes on: a NOOP of at most 512 octets
--     with CRLF gets 250, a longer one 500 5.5.2, a bare LF or CR a 5xx
--     x.5.2 (bare_lf = "reject" is the default), and afterwards NOOP
--     still gets 250;
--   * a bare CR never ends a line: the "line" runs on into the next bytes
--     (we send "NOOP\r\n" after it), so it is refused as one line with a
--     bare CR inside, or as too long once past the bound;
--   * an AUTH command line may be 12288 octets (RFC 4954 §4): up to the
--     bound its initial response is decoded and refused with a 5xx;
--   * DATA and BDAT content is not bounded by the command reader: a text
--     line over 1000 octets (limits.text_line) or with a bare LF/CR is
--     refused with a 5xx after the end of the message and the session
--     goes on; up to 1000 octets with CRLF the message gets 250;
--   * after every case the server is alive and a NEW connection carries a
--     whole transaction.
--
-- Each `it` runs every length x ending of one stage over one transport and
-- reports each failing case by name.  When a case kills the server (today
-- a line of 12289..16384 octets with LF overflows a stack buffer), the
-- failure is recorded, the server is started again and the sweep goes on,
-- so one run shows every case that breaks.
local H = require "spec.helpers"
local socket = require "socket"

local READ_LINE_MAX = 12288	-- src/util/limits.h SMTP_READ_LINE_MAX
local COMMAND_LINE = 512	-- limits.command_line
local TEXT_LINE = 1000		-- limits.text_line
local REPLY_TIMEOUT = 5		-- seconds; the server's own timeouts are 3
local MAX_FAILURES = 8		-- per `it`: enough to see the pattern, bounded

local LENGTHS = {}
for _, b in ipairs{ 512, 1000, 4096, 12288, 16384, 65536 } do
  for d = -1, 1 do LENGTHS[#LENGTHS + 1] = b + d end
end
local ENDINGS = { { name = "CRLF", s = "\r\n" }, { name = "LF", s = "\n" },
  { name = "CR", s = "\r" } }

local function config(cert, key)
  return [[
local smtp = require "luasmtpd"
listen = { address = smtp.var("listen"), tls = "starttls", auth = true,
           auth_plaintext = true }
spool = smtp.var("spool")
hostname = "mx.example.test"
tls = { certs = { { cert = "]] .. cert .. [[", key = "]] .. key .. [[" } } }
timeouts = { command = 3, data = 3 }
function hooks.rcpt(s, rcpt)
  if rcpt:match("@example%.test$") then return smtp.accept() end
end
function hooks.auth(s, user, password) return smtp.reject() end
function hooks.message(s, msg) return smtp.discard() end
]]
end

-- "x" padding after prefix so that the line is exactly len octets with
-- its ending.
local function line_of(prefix, len, ending, fill)
  local n = len - #prefix - #ending
  assert(n >= 0)
  return prefix .. (fill or "x"):rep(n):sub(1, n) .. ending
end

-- Base64 text of exactly n characters ("QUFB" is "AAA").
local function b64_of(n)
  return ("QUFB"):rep(math.ceil(n / 4)):sub(1, n)
end

-- ---- what the server must answer ----

local function check_refused_long(got, why)
  -- 500 5.5.2 line too long, then 421 4.7.0 and the hang-up.
  if #got < 2 then
    return ("expected 500 then 421 and a close, got %d replies (%s)"):format(#got,
      tostring(why))
  end
  if got[1].code ~= 500 or not got[1].text:find("5.5.2", 1, true) then
    return "first reply should be 500 5.5.2, got: " .. got[1].text
  end
  if got[2].code ~= 421 or not got[2].text:match("^421 4%.7%.0 ") then
    -- (421 4.4.2 would be the command timeout: the line was not refused.)
    return "second reply should be 421 4.7.0, got: " .. got[2].text
  end
  return nil
end

-- One reply for one refused (or accepted) line, the session still open.
local function check_one(got, why, want)
  if #got < 1 then return "no reply (" .. tostring(why) .. ")" end
  local r = got[1]
  if want == 250 then
    if r.code ~= 250 then return "expected 250, got: " .. r.text end
  elseif want == "long" then
    if r.code ~= 500 or not r.text:find("5.5.2", 1, true) then
      return "expected 500 5.5.2, got: " .. r.text
    end
  elseif want == "554 5.6.0" then
    if r.code ~= 554 or not r.text:find("5.6.0", 1, true) then
      return "expected 554 5.6.0 (text line too long), got: " .. r.text
    end
  elseif want == "5xx" then
    if r.code < 500 or r.code > 599 then return "expected a 5xx, got: " .. r.text end
  end
  return nil
end

-- The session is still in step: NOOP 250, QUIT 221.
local function check_continues(c)
  if not c:try_send("NOOP\r\n") then return "could not send NOOP: the session was closed" end
  local got, why = c:replies(1, REPLY_TIMEOUT)
  if #got == 0 then return "no reply to NOOP after the case (" .. tostring(why) .. ")" end
  if got[1].code ~= 250 then
    return "NOOP after the case got: " .. got[1].text .. " (session out of step)"
  end
  c:try_send("QUIT\r\n")
  return nil
end

local function check_closed(c)
  local l, err = c:line(REPLY_TIMEOUT)
  if l ~= nil then return "expected the close, got more: " .. l end
  if err ~= "closed" then return "expected the close, got: " .. tostring(err) end
  return nil
end

-- ---- the stages ----

-- Each returns the bytes to send, how many replies to collect and a
-- checker(got, why, c) -> nil | failure text.
local stages = {}

-- A NOOP command line of len octets (before EHLO, or inside a transaction).
local function command_case(len, ending)
  local line = line_of("NOOP ", len, ending.s)
  local total = len
  if ending.name == "CR" then
    -- A bare CR does not end the line: it runs on into our next command.
    line = line .. "NOOP\r\n"
    total = len + 6
  end
  if total > READ_LINE_MAX then
    return line, 2, function(got, why, c)
      return check_refused_long(got, why) or check_closed(c)
    end
  end
  local want = ending.name ~= "CRLF" and "5xx" or (total <= COMMAND_LINE and 250 or "long")
  return line, 1, function(got, why, c)
    return check_one(got, why, want) or check_continues(c)
  end
end

stages.before_ehlo = {
  name = "before EHLO",
  prepare = function(c) end,
  case = command_case,
}

stages.transaction = {
  name = "in a transaction (after MAIL)",
  prepare = function(c)
    c:cmd("EHLO client.test", 250)
    c:cmd("MAIL FROM:<sender@remote.test>", 250)
  end,
  case = command_case,
}

-- Message content: a text line of len octets, then the end of data.
local function content_check(len, ending)
  local want = "5xx"	-- a bare LF or CR: 550 5.5.2 by default
  if ending.name == "CRLF" then want = len <= TEXT_LINE and 250 or "554 5.6.0" end
  return function(got, why, c)
    return check_one(got, why, want) or check_continues(c)
  end
end

stages.data = {
  name = "inside DATA",
  prepare = function(c)
    c:cmd("EHLO client.test", 250)
    c:cmd("MAIL FROM:<sender@remote.test>", 250)
    c:cmd("RCPT TO:<user@example.test>", 250)
    c:cmd("DATA", 354)
  end,
  case = function(len, ending)
    -- "\r\n.\r\n" ends the data whatever the line's own ending was.
    return line_of("", len, ending.s) .. "\r\n.\r\n", 1, content_check(len, ending)
  end,
}

stages.bdat = {
  name = "inside BDAT",
  prepare = function(c)
    c:cmd("EHLO client.test", 250)
    c:cmd("MAIL FROM:<sender@remote.test>", 250)
    c:cmd("RCPT TO:<user@example.test>", 250)
  end,
  case = function(len, ending)
    local chunk = line_of("", len, ending.s)
    return ("BDAT %d LAST\r\n"):format(#chunk) .. chunk, 1, content_check(len, ending)
  end,
}

stages.auth = {
  name = "as an AUTH LOGIN response",
  prepare = function(c)
    c:cmd("EHLO client.test", 250)
    c:cmd("AUTH LOGIN", 334)
  end,
  case = function(len, ending)
    local line = b64_of(len - #ending.s) .. ending.s
    local total = len
    if ending.name == "CR" then
      line = line .. "NOOP\r\n"
      total = len + 6
    end
    if total > READ_LINE_MAX then
      return line, 2, function(got, why, c)
        return check_refused_long(got, why) or check_closed(c)
      end
    end
    return line, 1, function(got, why, c)
      if #got < 1 then return "no reply (" .. tostring(why) .. ")" end
      local r = got[1]
      if ending.name ~= "CRLF" then
        -- A refused response ends the AUTH exchange (RFC 4954 §4).
        if r.code < 500 then return "expected a 5xx for a bare line end, got: " .. r.text end
        return check_continues(c)
      end
      if r.code == 334 then
        -- The user name was taken; cancel at the password prompt.
        if not c:try_send("*\r\n") then return "closed at the password prompt" end
        local g2 = c:replies(1, REPLY_TIMEOUT)
        if #g2 == 0 or g2[1].code ~= 501 then
          return "AUTH cancel did not get 501: " .. tostring(g2[1] and g2[1].text)
        end
      elseif r.code < 500 then
        return "expected 334 or a 5xx, got: " .. r.text
      end
      return check_continues(c)
    end
  end,
}

-- The AUTH command itself with an initial response (RFC 4954 §4: up to
-- 12288 octets): refused as a credential (5xx), never cut below the bound.
stages.auth_initial = {
  name = "as an AUTH PLAIN command with its initial response",
  prepare = function(c)
    c:cmd("EHLO client.test", 250)
  end,
  case = function(len, ending)
    local prefix = "AUTH PLAIN "
    local line = prefix .. b64_of(len - #prefix - #ending.s) .. ending.s
    local total = len
    if ending.name == "CR" then
      line = line .. "NOOP\r\n"
      total = len + 6
    end
    if total > READ_LINE_MAX then
      return line, 2, function(got, why, c)
        return check_refused_long(got, why) or check_closed(c)
      end
    end
    return line, 1, function(got, why, c)
      return check_one(got, why, "5xx") or check_continues(c)
    end
  end,
}

-- ---- the sweep ----

for _, transport in ipairs{ "plaintext", "TLS" } do
  describe("line-length sweep over " .. transport .. " #e2e #glue #bounds", function()
    local srv, dir, cert, key

    local function start()
      srv = H.start_server{ config = config(cert, key) }
    end

    lazy_setup(function()
      dir = H.tmpdir()
      cert, key = H.make_cert(dir, "mx.example.test")
      start()
    end)
    lazy_teardown(function() if srv then srv:stop() end end)

    local function open()
      if transport == "TLS" then
        local c = H.connect(srv.port)
        c:expect(220)
        c:cmd("EHLO client.test", 250)
        c:cmd("STARTTLS", 220)
        return H.starttls(c)
      end
      local c = H.connect(srv.port)
      c:expect(220)
      return c
    end

    -- One case; nil when it held, else the failure text.
    local function run_case(stage, len, ending)
      local c
      local ok, err = pcall(function()
        c = open()
        stage.prepare(c)
      end)
      if not ok then return "could not set the stage up: " .. tostring(err) end
      local bytes, nreplies, check = stage.case(len, ending)
      c.sock:settimeout(REPLY_TIMEOUT)
      -- The server may hang up before it read everything: that is fine.
      c:try_send(bytes)
      local got, why = c:replies(nreplies, REPLY_TIMEOUT)
      local failure = check(got, why, c)
      c:close()
      if not srv:alive() then
        return (failure and failure .. "; " or "") .. "the server DIED (pid " ..
          srv.pid .. ")"
      end
      local works, werr = H.transaction_works(srv.port)
      if not works then
        return (failure and failure .. "; " or "") ..
          "a new connection could not complete a transaction: " .. werr
      end
      return failure
    end

    local order = { "before_ehlo", "transaction", "data", "bdat", "auth", "auth_initial" }
    for _, sname in ipairs(order) do
      local stage = stages[sname]
      it(("answers every line length %s over %s, and keeps serving #glue"):format(
          stage.name, transport), function()
        local failures = {}
        for _, len in ipairs(LENGTHS) do
          for _, ending in ipairs(ENDINGS) do
            if #failures >= MAX_FAILURES then break end
            local f = run_case(stage, len, ending)
            if f then
              failures[#failures + 1] = ("%s %s, %d octets with %s: %s"):format(
                transport, stage.name, len, ending.name, f)
              if not srv:alive() then
                failures[#failures] = failures[#failures] .. "\n    --- its log ends:\n    " ..
                  srv:log():sub(-400):gsub("\n", "\n    ")
                start()		-- go on with the rest of the sweep
              end
            end
          end
        end
        assert(#failures == 0, #failures .. " case(s) failed:\n  " ..
          table.concat(failures, "\n  "))
      end)
    end
  end)
end
