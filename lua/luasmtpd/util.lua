-- luasmtpd.util — small helpers for configs.
--
--   util.split("a, b,c", ",")  -> { "a", "b", "c" }   (trimmed, no empties)
--   util.set({ "a", "b" })     -> { a = true, b = true } (keys lower-cased)

local M = {}

function M.split(s, sep)
  local out = {}
  if s == nil or s == "" then return out end
  local start = 1
  while true do
    local i = s:find(sep, start, true)
    local piece = s:sub(start, i and i - 1 or #s):match("^%s*(.-)%s*$")
    if piece ~= "" then out[#out + 1] = piece end
    if not i then break end
    start = i + #sep
  end
  return out
end

function M.set(list)
  local out = {}
  for _, v in ipairs(list) do out[v:lower()] = true end
  return out
end

return M
