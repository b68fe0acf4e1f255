-- scripts/bench/vrfy.lua — the hook overhead micro-benchmark's server:
-- scripts/bench/vrfy.py sends N pipelined VRFY commands in one session.
--
--   -D vrfy=none     no vrfy hook: the built-in 252 reply
--   -D vrfy=accept   a vrfy hook that returns smtp.accept(text)
--   -D vrfy=sleep    a vrfy hook that calls smtp.sleep(0) once (one
--                    yield/resume round trip through the event loop), then
--                    returns smtp.accept()
--
-- Settings (luasmtpd -D name=value): listen, spool, vrfy.

local smtp = require "luasmtpd"

listen = smtp.var("listen", "127.0.0.1:0")
spool = smtp.var("spool", "var/spool")
hostname = "bench.test"

-- VRFY is a junk command: raise every per-session count past N.
limits = {
  max_commands = 100000000,
  max_junk_commands = 100000000,
  max_errors = 100000,
}

local mode = smtp.var("vrfy", "none")
-- The built-in reply's text, so every variant writes replies of one length.
local text = "Cannot VRFY user, but will accept message and attempt delivery"

if mode == "accept" then
  function hooks.vrfy(s, arg)
    return smtp.accept(text)
  end
elseif mode == "sleep" then
  function hooks.vrfy(s, arg)
    smtp.sleep(0)
    return smtp.accept(text)
  end
elseif mode ~= "none" then
  error("vrfy must be none, accept or sleep")
end
