-- luasmtpd.json — JSON for hooks (a policy service's answers, cached
-- tables), through Debian's lua-cjson.
--
--   local json = require "luasmtpd.json"
--   json.encode({ user = "alice", ok = true })  -> '{"user":"alice","ok":true}'
--   json.decode('{"ok":true}')                  -> { ok = true }
--   json.decode("{bad")                         -> nil, "Expected ..."
--   json.null                                   JSON null inside decoded data
--
-- decode never raises on bad input (it is network data): it returns nil and
-- cjson's message.  encode raises on what JSON cannot hold (a function, a
-- userdata other than json.null, a cycle or nesting past DEPTH_MAX): that is
-- a mistake in the hook.
--
-- This module owns a private cjson instance (cjson.new()), so a config that
-- changes the settings of its own `require "cjson"` does not change ours:
--   - numbers are written with 14 significant digits (cjson's most): an
--     integer above 2^46 or so, or a fraction, may come back rounded;
--   - a table whose keys are 1..n is an array; any other table is an object
--     and its keys are written as strings (a number key 5 comes back as "5");
--     an array with holes ({ 1, nil, 3 }) is written as an object, so it
--     comes back with string keys too, never with nulls;
--   - an empty table is written as {} (an object);
--   - NaN and infinities are refused (JSON has none);
--   - nesting deeper than DEPTH_MAX raises (encode) or fails (decode).
--
-- SECURITY: decoding is bounded by the input (its length and DEPTH_MAX);
-- cjson is C and cannot be interrupted by the hook watchdog, so decode only
-- what a bound already limits (an HTTP body is at most max_body bytes).

local cjson = require "cjson"

local M = {}

-- Nesting levels in either direction (cjson's default is 1000).
local DEPTH_MAX = 64

local codec = cjson.new()
codec.encode_sparse_array(true, 1, 0)   -- any hole: an object, never null
codec.encode_max_depth(DEPTH_MAX)
codec.decode_max_depth(DEPTH_MAX)
codec.encode_invalid_numbers(false)
codec.decode_invalid_numbers(false)
codec.encode_keep_buffer(false)

M.null = codec.null
M.DEPTH_MAX = DEPTH_MAX

function M.encode(v)
  local ok, s = pcall(codec.encode, v)
  if not ok then error("json.encode: " .. tostring(s), 2) end
  return s
end

function M.decode(s)
  if type(s) ~= "string" then
    error("json.decode: expected a string, got " .. type(s), 2)
  end
  local ok, v = pcall(codec.decode, s)
  if not ok then return nil, tostring(v) end
  return v
end

return M
