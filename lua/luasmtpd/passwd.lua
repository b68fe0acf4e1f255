-- luasmtpd.passwd — a users file for the auth hook.
--
--   local passwd = require "luasmtpd.passwd"
--   local db = assert(passwd.load("users.txt"))
--   if passwd.check(db, user, password) then ... end
--
-- The file has one "user:secret" per line; "#" starts a comment.  secret
-- is a crypt(3) hash ("$6$...", "$5$...", "$y$..." — what `mkpasswd` or
-- `openssl passwd -6` print), or "{PLAIN}text" for tests.  Hashes are
-- checked with the system's crypt(3) through LuaJIT's FFI; plain secrets
-- are compared in constant time.

local ffi = require "ffi"

ffi.cdef [[ char *crypt(const char *key, const char *salt); ]]
local libcrypt = ffi.load("crypt")

local M = {}

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
  if not secret then return false end
  local plain = secret:match("^{PLAIN}(.*)$")
  if plain then return equal(plain, password) end
  if secret:sub(1, 1) ~= "$" then return false end
  local out = libcrypt.crypt(password, secret)
  return out ~= nil and equal(ffi.string(out), secret)
end

return M
