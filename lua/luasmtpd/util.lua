-- luasmtpd.util — small helpers for configs.
--
--   util.split("a, b,c", ",")  -> { "a", "b", "c" }   (trimmed, no empties)
--   util.set({ "a", "b" })     -> { a = true, b = true } (keys lower-cased)
--   util.maildir_path(root, domains, "Bob@Example.test")
--                              -> root .. "/example.test/bob", or nil

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

-- The Maildir of a local recipient: root/<domain>/<local-part>, both
-- lower-cased, or nil when the domain is not in the set `domains` or the
-- local part is not a plain name.  Plain means letters, digits and ._+-
-- starting with a letter or digit, without "..": no quoting, no "/", so no
-- address can name a directory outside root.
function M.maildir_path(root, domains, address)
  local localpart, domain = tostring(address):match("^(.*)@([^@]+)$")
  if not localpart then return nil end
  localpart, domain = localpart:lower(), domain:lower()
  if not domains[domain] then return nil end
  if not localpart:match("^[%w][%w._+-]*$") or localpart:find("..", 1, true) then
    return nil
  end
  return root .. "/" .. domain .. "/" .. localpart
end

return M
