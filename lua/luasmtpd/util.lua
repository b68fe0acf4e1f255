-- luasmtpd.util — small helpers for configs.
--
--   util.split("a, b,c", ",")  -> { "a", "b", "c" }   (trimmed, no empties)
--   util.set({ "a", "b" })     -> { a = true, b = true } (keys lower-cased)
--   util.maildir_path(root, domains, "Bob@Example.test")
--                              -> root .. "/example.test/bob", or nil
--
-- maildir_path maps every mailbox of a local domain to one directory name
-- that cannot leave root, and different mailboxes to different names:
--
-- 1. A quoted local part is unquoted (RFC 5321 4.1.2: "\x" is x), so
--    "bob"@x and bob@x, which are the same mailbox, share a directory.
-- 2. ASCII letters are lower-cased (A-Z only: no locale, no Unicode case
--    folding, so JOSÉ maps to josÉ, not to josé).  Nothing else is folded
--    or normalized.
-- 3. Each byte that is unsafe in a directory name becomes %XX (upper-case
--    hex): "/", NUL and other C0 controls, DEL, "%" itself, a "." at the
--    start (no ".", "..", or hidden names), and every byte >= 0x80 that is
--    not part of valid UTF-8 (RFC 3629) or is a C1 control (U+0080-U+009F).
--    Valid UTF-8 stays as it is: josé@x -> root/x/josé.
--
-- Since "%" is always encoded, the name decodes back to the folded local
-- part: the mapping is one-to-one after steps 1 and 2.  The domain (which
-- must be in `domains`) goes through steps 2 and 3 too.  A name longer
-- than NAME_MAX (255 bytes) after encoding, or an empty local part, has no
-- Maildir: nil.  (An SMTP local part is at most 64 octets, RFC 5321
-- 4.5.3.1.1, so at most 192 bytes encoded.)

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

-- The longest directory name (NAME_MAX on Linux and the BSDs).
local NAME_MAX = 255

-- RFC 5321 4.1.2 Quoted-string -> its content ("\x" is x), or nil.
local function unquote(q)
  if #q < 2 or q:sub(-1) ~= '"' then return nil end
  local out, i, last = {}, 2, #q - 1
  while i <= last do
    local c = q:sub(i, i)
    if c == "\\" then
      if i == last then return nil end       -- it escapes the closing quote
      out[#out + 1] = q:sub(i + 1, i + 1)
      i = i + 2
    elseif c == '"' then
      return nil
    else
      out[#out + 1] = c
      i = i + 1
    end
  end
  return table.concat(out)
end

-- Length of the valid UTF-8 sequence at s[i] (RFC 3629 4: no overlong
-- form, no surrogate, nothing above U+10FFFF), or nil.
local function utf8_len(s, i)
  local c, c2 = s:byte(i, i + 1)
  local n, lo, hi = nil, 0x80, 0xbf
  if c >= 0xc2 and c <= 0xdf then n = 2
  elseif c >= 0xe0 and c <= 0xef then n = 3
  elseif c >= 0xf0 and c <= 0xf4 then n = 4
  else return nil end
  if c == 0xe0 then lo = 0xa0 elseif c == 0xed then hi = 0x9f
  elseif c == 0xf0 then lo = 0x90 elseif c == 0xf4 then hi = 0x8f end
  if not c2 or c2 < lo or c2 > hi then return nil end
  for k = i + 2, i + n - 1 do
    local ck = s:byte(k)
    if not ck or ck < 0x80 or ck > 0xbf then return nil end
  end
  return n
end

local function ascii_lower(s)
  return (s:gsub("[A-Z]", function(c) return string.char(c:byte() + 32) end))
end

-- One directory name for s (step 3 above), or nil if too long or empty.
local function dir_name(s)
  local out, i = {}, 1
  while i <= #s do
    local b = s:byte(i)
    local n = b >= 0x80 and utf8_len(s, i)
    if n and not (b == 0xc2 and s:byte(i + 1) < 0xa0) then
      out[#out + 1] = s:sub(i, i + n - 1)
      i = i + n
    else
      if b < 0x20 or b >= 0x7f or b == 0x2f or b == 0x25 or (i == 1 and b == 0x2e) then
        out[#out + 1] = ("%%%02X"):format(b)
      else
        out[#out + 1] = string.char(b)
      end
      i = i + 1
    end
  end
  local name = table.concat(out)
  if name == "" or #name > NAME_MAX then return nil end
  return name
end

-- The Maildir of a local recipient: root/<domain>/<local part>, mapped as
-- the header says, or nil when the domain is not in the set `domains`.
function M.maildir_path(root, domains, address)
  local localpart, domain = tostring(address):match("^(.*)@([^@]+)$")
  if not localpart then return nil end
  domain = ascii_lower(domain)
  if not domains[domain] then return nil end
  if localpart:sub(1, 1) == '"' then
    localpart = unquote(localpart)
    if not localpart then return nil end
  end
  localpart, domain = dir_name(ascii_lower(localpart)), dir_name(domain)
  if not localpart or not domain then return nil end
  return root .. "/" .. domain .. "/" .. localpart
end

-- The domain of a From: field's value (RFC 5322 §3.6.2), lower-cased:
-- "Name <a@b.example>" or "a@b.example".  nil, why for none or for
-- several addresses (RFC 7489 §6.6.1 leaves those to the receiver).
function M.from_domain(value)
  if type(value) ~= "string" then return nil, "no From" end
  -- Drop quoted strings and comments, which may hold "@", "," and "<".
  local v = value:gsub('\\.', "x"):gsub('"[^"]*"', '""'):gsub("%b()", "")
  if v:find(",", 1, true) then return nil, "several From addresses" end
  local addr = v:match("<([^>]*)>") or v
  local domain = addr:match("@([^@%s>]+)%s*$")
  if not domain then return nil, "no domain in From" end
  return domain:lower()
end

return M
