-- luasmtpd.passwd — a users file for the auth hook.
--
--   local passwd = require "luasmtpd.passwd"
--   local db = assert(passwd.load("users.txt"))
--   if passwd.check(db, user, password) then ... end
--
-- The file has one "user:secret" per line; "#" starts a comment.  secret
-- is a crypt(3) hash ("$6$...", "$5$...", "$y$..." — what `mkpasswd` or
-- `openssl passwd -6` print), or "{PLAIN}text" for tests.  Hashes are
-- checked with luasmtpd.crypt_check: crypt(3) on the CPU worker pool, so
-- the hook yields and no session waits for it; plain secrets are compared
-- in constant time.
--
-- check() must be called from a hook (it yields).  An unknown user costs
-- the same as a known one: a hash of the file's own kind is checked all
-- the same, so the answer's timing does not tell which users exist.

local smtp = require "luasmtpd"

local M = {}

-- Per loaded file, the hash checked for users it does not have (weak
-- keys: a dropped db takes its entry with it).
local dummy_of = setmetatable({}, { __mode = "k" })

local MAX_FILE = 1024 * 1024

function M.load(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local data = f:read(MAX_FILE + 1)
  f:close()
  if data and #data > MAX_FILE then return nil, path .. ": larger than 1 MiB" end
  local db, n = {}, 0
  for line in (data or ""):gmatch("[^\n]+") do
    n = n + 1
    line = line:gsub("\r$", "")
    if not line:match("^%s*#") and not line:match("^%s*$") then
      local user, secret = line:match("^([^:]+):(.+)$")
      if not user then return nil, ("%s:%d: expected user:secret"):format(path, n) end
      db[user] = secret
      -- The first hash stands in for unknown users (same kind, same cost).
      if not dummy_of[db] and secret:sub(1, 1) == "$" then dummy_of[db] = secret end
    end
  end
  return db
end

local function equal(a, b)
  if #a ~= #b then return false end
  local diff = 0
  for i = 1, #a do diff = bit.bor(diff, bit.bxor(a:byte(i), b:byte(i))) end
  return diff == 0
end

function M.check(db, user, password)
  local secret = db[user]
  if not secret then
    -- Spend what a known user would cost, then say no.
    local dummy = dummy_of[db]
    if dummy then smtp.crypt_check(password, dummy) else equal(password, password) end
    return false
  end
  local plain = secret:match("^{PLAIN}(.*)$")
  if plain then return equal(plain, password) end
  if secret:sub(1, 1) ~= "$" then return false end
  return smtp.crypt_check(password, secret) == true
end

return M
