-- luasmtpd.policy.lists — allow and deny lists from files: networks
-- (CIDR, IPv4 and IPv6), domains (optionally with their subdomains) and
-- addresses, re-read when a file changes.
--
--   local lists = require "luasmtpd.policy.lists"
--   local denied = lists.deny{ files = { "/etc/luasmtpd/deny" } }
--   local allowed = lists.allow{ files = { "/etc/luasmtpd/allow" }, subdomains = true }
--   function hooks.rcpt(s, rcpt) return denied(s, rcpt) or smtp.accept() end
--   local grey = greylist.new{ exempt = allowed }    -- an allow list exempts
--
-- A file has one entry a line; "#" starts a comment, and anything after
-- the entry (past white space) is a comment too:
--   192.0.2.0/24        a network; an address alone is a /32 or /128
--   2001:db8::/32
--   example.com         a domain (of the sender or recipient); with
--                       subdomains = true also mail.example.com
--   .example.net        only the subdomains of example.net
--   user@example.org    an address (compared lower-cased, as domains)
--
-- Hook: connect (check = { "ip" }), mail (the sender), rcpt (the recipient
-- too: check(s, rcpt)).
--
-- lists.deny(opts) -> check(s [, address]) -> reject verdict | nil
-- lists.allow(opts) -> check(s [, address]) -> "network 192.0.2.0/24" | nil
--   An allow list answers with the entry that matched, a string that is
--   not a verdict: `hooks.rcpt = allowed` is a hook error, never an open
--   relay.  Use it as a policy's `exempt`, or in your own `if`.
--   files      list of paths (or file = one path); read when the config
--              loads: a missing or broken file there is a config error
--   subdomains true: a domain entry also matches its subdomains
--   check      what is looked up, default { "ip", "sender", "rcpt" }: the
--              client's address, the transaction's sender (not <>), and
--              the address given (the rcpt hook's recipient)
--   interval   seconds between checks of the files (default 5)
--   code, ecode, text   deny's reply (default 554 5.7.1 "Access denied")
--   ip, exempt, exempt_auth    see luasmtpd.policy
-- lists.load(opts) -> list: list:match(ip, address, ...) -> entry, kind
--   ("network", "domain", "address") | nil; list:refresh() checks now.
--
-- Reloading: at most every `interval` seconds a call stats each file
-- (lfs); a file whose mtime, size, inode or ctime changed is read again
-- (also once more when it changed in the second it was read: mtimes have
-- whole seconds).  A file that cannot be read or has a bad line keeps its
-- old entries, and the error is logged once per version of the file.
-- The stat and the read run in the hook, on the server's loop thread:
-- bounded by FILE_MAX bytes a file (a 1 MiB list parses in well under the
-- hook's CPU limit); nobody else waits longer than that, once per change.
-- Replace a list by writing a new file and renaming it over the old one.

local smtp = require "luasmtpd"
local lfs = require "lfs"
local P = require "luasmtpd.policy"

local M = {}

M.FILE_MAX = 1024 * 1024
local WHAT = "luasmtpd.policy.lists"
local ENTRY_SHOWN_MAX = 80   -- of a bad entry, in an error message

-- ---- parsing ----------------------------------------------------------------

-- The entries of one file's text: { nets = {...}, domains = {}, sub = {},
-- addresses = {} }, or nil, "path:line: why".
function M.parse(text, path)
  local e = { nets = {}, domains = {}, sub = {}, addresses = {} }
  local n = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    local entry = line:gsub("#.*$", ""):match("^%s*(%S*)")
    if entry ~= "" then
      local bad
      if entry:find("@", 1, true) then
        local lp, dom = entry:match("^([^@]+)@([%w%-_.]+)$")
        if lp then e.addresses[P.lower(lp .. "@" .. dom:gsub("%.$", ""))] = true
        else bad = "not an address" end
      elseif entry:find(":", 1, true) or entry:match("^[%d./]+$") then
        local ok, err = P.parse_cidr(entry)
        if ok then e.nets[#e.nets + 1] = entry else bad = err end
      elseif entry:match("^%.?[%w_%-]+[%w_%-.]*$") and not entry:find("..", 1, true) then
        local d = P.lower(entry):gsub("%.$", "")
        if d:sub(1, 1) == "." then e.sub[d:sub(2)] = true else e.domains[d] = true end
      else
        bad = "not a network, domain or address"
      end
      if bad then
        return nil, ("%s:%d: %s: '%s'"):format(path, n, bad,
          P.printable(entry, ENTRY_SHOWN_MAX))
      end
    end
  end
  return e
end

local function read(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local data, rerr = f:read(M.FILE_MAX + 1)
  f:close()
  if not data and rerr then return nil, path .. ": " .. rerr end
  data = data or ""
  if #data > M.FILE_MAX then
    return nil, ("%s: larger than %d bytes"):format(path, M.FILE_MAX)
  end
  return M.parse(data, path)
end

-- ---- a list ---------------------------------------------------------------------

local List = {}
List.__index = List

local function signature(path)
  local a = lfs.attributes(path)
  if not a then return "missing" end
  return ("%s:%s:%s:%s"):format(a.modification, a.size, a.ino, a.change), a.modification
end

-- Merge every file's entries into the lookup tables.
function List:rebuild()
  local nets = P.cidr_set()
  local domains, sub, addresses = {}, {}, {}
  for _, f in ipairs(self.files) do
    for _, n in ipairs(f.entries.nets) do nets:add(n) end
    for k in pairs(f.entries.domains) do domains[k] = true end
    for k in pairs(f.entries.sub) do sub[k] = true end
    for k in pairs(f.entries.addresses) do addresses[k] = true end
  end
  self.nets, self.domains, self.sub, self.addresses = nets, domains, sub, addresses
end

-- Reads the files that changed; returns true, or nil and the errors (each
-- file that failed keeps its old entries).
function List:refresh()
  self.checked = P.now()
  local changed, errors = false, {}
  for _, f in ipairs(self.files) do
    local sig, mtime = signature(f.path)
    if sig ~= f.sig or f.unstable then
      local entries, err
      if sig == "missing" then
        err = f.path .. ": no such file"
      else
        entries, err = read(f.path)
      end
      f.sig, f.err = sig, err
      if entries then
        f.entries = entries
        -- Changed in the second it was read: a later write in that same
        -- second would keep the mtime; read it once more next time.
        f.unstable = mtime ~= nil and mtime >= os.time() - 1
        changed = true
      else
        f.unstable = false
        if f.entries then
          smtp.log("warn", ("%s: %s; keeping the entries read before"):format(WHAT, err))
        end
      end
    end
    errors[#errors + 1] = f.err
  end
  if changed then self:rebuild() end
  if #errors > 0 then return nil, table.concat(errors, "; ") end
  return true
end

local function match_domain(self, domain)
  domain = P.lower(domain):gsub("%.$", "")
  if self.domains[domain] then return domain end
  local parent = domain
  while true do
    parent = parent:match("^[^.]+%.(.+)$")
    if not parent then return nil end
    if self.sub[parent] then return "." .. parent end
    if self.subdomains and self.domains[parent] then return parent end
  end
end

-- The entry for an address ("address a@b" or "domain example.com"), or nil.
function List:match_address(address)
  if type(address) ~= "string" or address == "" then return nil end
  local a = P.lower(address)
  if self.addresses[a] then return a, "address" end
  local domain = a:match("@([^@]+)$")
  if domain and not domain:find("^%[") then
    local d = match_domain(self, domain)
    if d then return d, "domain" end
  end
  return nil
end

function List:match(ip, ...)
  if P.now() - self.checked >= self.interval then self:refresh() end
  if ip then
    local net = self.nets:match(ip)
    if net then return net, "network" end
  end
  for i = 1, select("#", ...) do
    local entry, kind = self:match_address((select(i, ...)))
    if entry then return entry, kind end
  end
  return nil
end

local SPEC = {
  files = "table", file = "string", subdomains = "boolean", check = "table",
  interval = P.positive(), code = P.code(5), ecode = P.ecode(5), text = "string",
}

-- level: of the config line, counted from make's caller.
local function make(opts, level)
  level = level + 1
  local paths = opts.files or { opts.file }
  if #paths == 0 then error(WHAT .. ": give files = { path, ... } or file = path", level) end
  local self = setmetatable({ files = {}, interval = opts.interval or 5,
    subdomains = opts.subdomains or false, checked = 0 }, List)
  for i, p in ipairs(paths) do
    if type(p) ~= "string" then error(("%s: files[%d] must be a path"):format(WHAT, i), level) end
    self.files[i] = { path = p }
  end
  local ok, err = self:refresh()
  if not ok then error(WHAT .. ": " .. err, level) end
  return self
end

function M.load(opts)
  local list = make(P.options(opts, SPEC, WHAT), 2)   -- not a tail call: error levels
  return list
end

-- The function deny and allow return: the entry for s (and address).
local function matcher(opts, level)
  level = level + 1
  local list = make(opts, level)
  local check = {}
  for _, c in ipairs(opts.check or { "ip", "sender", "rcpt" }) do
    if c ~= "ip" and c ~= "sender" and c ~= "rcpt" then
      error(WHAT .. ': check lists "ip", "sender" and "rcpt"', level)
    end
    check[c] = true
  end
  return function(s, address)
    if P.exempt(s, opts, address) then return nil end
    local tx = check.sender and s.tx
    return list:match(check.ip and P.client_ip(s, opts) or nil,
      tx and tx.sender or nil, check.rcpt and address or nil)
  end
end

function M.deny(opts)
  opts = P.options(opts, SPEC, WHAT)
  local match = matcher(opts, 2)
  local refusal = smtp.reject(opts.code or 554, opts.ecode or "5.7.1",
    P.printable(opts.text or "Access denied", P.REPLY_TEXT_MAX))
  return function(s, address)
    if match(s, address) then return refusal end
    return nil
  end
end

function M.allow(opts)
  opts = P.options(opts, SPEC, WHAT)
  local match = matcher(opts, 2)
  return function(s, address)
    local entry, kind = match(s, address)
    if entry then return kind .. " " .. entry end
    return nil
  end
end

return M
