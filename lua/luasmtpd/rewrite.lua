-- luasmtpd.rewrite — ordered recipient rewrite rules with PCRE2 regular
-- expressions (lrexlib's rex_pcre2; Lua patterns are never used on rules).
--
-- A rule is a regex, a replacement and optional flags.  Every match of the
-- regex in the address is replaced by the replacement (as sed's s///g),
-- unless the rule has the flag 1.  A rule set has one of two modes:
--
--   first    (default) rules are tried in order; the first rule whose regex
--            matches rewrites the address and no later rule runs.
--   chained  every rule is applied in order to the output of the previous
--            one; a rule that does not match leaves the string as it is.
--
-- Matching follows PCRE semantics: a regex matches anywhere in the address
-- unless it is anchored.  Anchor with ^...$ when you mean the whole address.
-- Patterns are compiled in UTF-8 mode (addresses may be SMTPUTF8), so `.`
-- is one character and the flag i folds non-ASCII case too.
--
-- REPLACEMENTS
--   $1 ... $9   the text of that capture group ("" if the group did not take
--               part in the match); $10 is $1 followed by "0"
--   $0          the whole match
--   $$          a literal $
--   Everything else is literal, % included.  Any other $ (a trailing $,
--   ${name}, $x) and a group the regex does not have are errors when the rule
--   is made, never when it runs.
--
-- FLAGS (a string of letters, any order)
--   i   case-insensitive
--   1   replace only the first match instead of every match
--
-- INLINE RULES
--   local rewrite = require "luasmtpd.rewrite"
--   local rules = rewrite.new{
--     { "^(.+)@old\\.example$", "$1@example.org" },
--     { "^postmaster@",         "admin@",          "i" },
--     mode = "first",                  -- or "chained"; default "first"
--   }
--   A rule is { REGEX, REPLACEMENT [, FLAGS] }; any other key is an error.
--   A mistake (bad regex, bad replacement, unknown flag or key) raises an
--   error whose position is the line of the rewrite.new call, for instance
--     config.lua:12: rewrite rule 2: invalid regex '(ab': missing closing
--     parenthesis (pattern offset: 4)
--   (the position is lost if rewrite.new is the operand of `return`: Lua
--   drops the caller's frame of a tail call).
--
-- RULES FILES
--   local rules = assert(rewrite.load("/etc/luasmtpd/rewrite.rules"))
--
--     # x+tag@Example.org -> Example-org
--     mode chained
--     \+[^@]*        ""
--     ^(.*)@(.*)$    $2
--     [^a-z0-9]+     -       i
--
--   One rule per line: REGEX REPLACEMENT [FLAGS], separated by spaces or
--   tabs; FLAGS as above.  Blank lines and comment lines are ignored; there
--   are no trailing comments (# is a valid address character).  A field
--   that holds spaces, is empty, or starts with " is written between double
--   quotes; there are no escapes inside quotes and a quoted field cannot
--   contain ".  In a regex write \x20 for a space and \x22 for a double
--   quote.  Lines may end in CRLF.
--   A line `mode first` or `mode chained` sets the mode; it must come before
--   the first rule and at most once.  Without it the mode is opts.mode, or
--   "first".  (A rule whose regex is the word mode is written "mode".)
--   Errors name the file and line, e.g.
--     /etc/luasmtpd/rewrite.rules:3: invalid regex '(ab': missing closing
--     parenthesis (pattern offset: 4)
--   (PCRE2's message, with the offset as lrexlib reports it.)
--
-- API
--   rewrite.new(list)            -> rules             (raises on a bad rule)
--   rewrite.load(path [, opts])  -> rules | nil, err  opts: { mode = ... }
--   rules:apply(address)         -> first:   new_address, rule_index | nil
--                                   chained: new_address, rules_matched | nil
--   rules:reload()               -> true | nil, err   (load()ed rules only)
--   rules.mode, rules.count, rules.path (nil for inline rules)
--   rewrite.MAX_FILE_SIZE, rewrite.MAX_RULES, rewrite.MATCH_LIMIT (read-only)
--
--   apply returns nil when no rule matched, so `rules:apply(a) or a` keeps
--   the address unchanged.  A result may be empty or not a valid address:
--   apply returns the string as is and the caller validates it.
--   reload re-reads the file; if the new file is broken the old rules stay
--   in force and it returns nil, err.  Nothing reloads by itself (there is
--   no cheap portable way to watch mtimes without lfs): call reload where it
--   fits, e.g. from a hook at most once a minute (smtp.now()).  It reads and
--   compiles the whole file synchronously.
--
-- SECURITY: everything is bounded.  A rules file may be at most
-- MAX_FILE_SIZE (1 MiB) and a rule set at most MAX_RULES (10000) rules.
-- Addresses come from clients and a badly written regex can backtrack
-- exponentially (^(a+)+$), blocking the event loop inside PCRE where the
-- hook watchdog cannot stop it: each pattern is compiled with
-- (*LIMIT_MATCH=100000) (about a millisecond of work).  A pattern may set
-- its own (*LIMIT_MATCH=n), up to PCRE2's built-in 10000000.  If a rule hits
-- the limit, or the address is not valid UTF-8, apply raises (the hook then
-- fails with 451): it never silently skips a rule and delivers to the
-- unrewritten address.  The message names the rule:
--   rewrite: rules.txt:7: match limit exceeded, ...     (from a file)
--   rewrite: config.lua:12: rule 2: match limit exceeded, ...   (inline)

local rex = require "rex_pcre2"

local M = {}

-- SECURITY: the bounds.  The M fields are copies for callers and specs.
local MAX_FILE_SIZE = 1024 * 1024
local MAX_RULES = 10000
local MATCH_LIMIT = 100000
M.MAX_FILE_SIZE, M.MAX_RULES, M.MATCH_LIMIT = MAX_FILE_SIZE, MAX_RULES,
  MATCH_LIMIT

local F = rex.flags()
local LIMIT_PREFIX = "(*LIMIT_MATCH=" .. MATCH_LIMIT .. ")"
local MODES = { first = true, chained = true }
local UTF8_CHECK = rex.new("", F.UTF)  -- exec raises on invalid UTF-8
local gsub = rex.gsub

-- Bounded, printable rendering of rule text for error messages.
local function show(s)
  if #s > 200 then
    s = s:sub(1, 200) .. "..."
  end
  return (s:gsub("[%z\1-\31\127]", function(c)
    return string.format("\\x%02x", c:byte())
  end))
end

local function valid_utf8(s)
  return (pcall(UTF8_CHECK.exec, UTF8_CHECK, s))
end

-- Translates $0-$9 and $$ into lrexlib's %0-%9 and keeps % literal (%%).
-- Returns the lrexlib replacement, or nil, err.
local function translate(repl, ncap)
  local out, i = {}, 1
  while true do
    local j = repl:find("[%$%%]", i)
    if not j then
      out[#out + 1] = repl:sub(i)
      return table.concat(out)
    end
    out[#out + 1] = repl:sub(i, j - 1)
    if repl:sub(j, j) == "%" then
      out[#out + 1] = "%%"
      i = j + 1
    else
      local c = repl:sub(j + 1, j + 1)
      if c == "$" then
        out[#out + 1] = "$"
      elseif c:find("^%d$") then
        if tonumber(c) > ncap then
          return nil, string.format("$%s, but the regex has %d capture "
            .. "group%s", c, ncap, ncap == 1 and "" or "s")
        end
        out[#out + 1] = "%" .. c
      else
        return nil, "'$' must be followed by a digit 0-9 or '$' ($$ is a "
          .. "literal $)"
      end
      i = j + 2
    end
  end
end

-- Compiles one rule.  All arguments are strings (flags may be nil);
-- origin says where the rule came from, for errors raised by apply.
-- Returns the rule or nil, err (err without any position).
local function compile(regex, repl, flags, origin)
  local caseless, limit = false, nil
  for c in (flags or ""):gmatch(".") do
    if c == "i" then
      caseless = true
    elseif c == "1" then
      limit = 1
    else
      return nil, "unknown flag '" .. show(c) .. "' in '" .. show(flags)
        .. "' (flags are i and 1)"
    end
  end
  local cflags = caseless and F.UTF + F.CASELESS or F.UTF
  local ok, re = pcall(rex.new, LIMIT_PREFIX .. regex, cflags)
  if not ok then
    -- Report PCRE's message for the pattern as written (offsets!).
    local ok2, err = pcall(rex.new, regex, cflags)
    return nil, "invalid regex '" .. show(regex) .. "': "
      .. tostring(ok2 and re or err)
  end
  if not valid_utf8(repl) then
    return nil, "invalid replacement '" .. show(repl) .. "': not valid UTF-8"
  end
  local lrepl, err = translate(repl, re:fullinfo().CAPTURECOUNT)
  if not lrepl then
    return nil, "invalid replacement '" .. show(repl) .. "': " .. err
  end
  return { re = re, repl = lrepl, limit = limit, origin = origin }
end

-- Splits a rules-file line into fields.  Returns fields, quoted (a list of
-- booleans), or nil, err.
local function split_fields(line)
  local fields, quoted, i = {}, {}, 1
  while true do
    i = line:find("[^ \t]", i)
    if not i then
      return fields, quoted
    end
    local field, was_quoted
    if line:sub(i, i) == '"' then
      local j = line:find('"', i + 1, true)
      if not j then
        return nil, "unclosed double quote"
      end
      if j < #line and not line:sub(j + 1, j + 1):find("^[ \t]$") then
        return nil, "a closing double quote must end the field"
      end
      field, was_quoted, i = line:sub(i + 1, j - 1), true, j + 1
    else
      local j = line:find("[ \t]", i) or #line + 1
      field, was_quoted, i = line:sub(i, j - 1), false, j
    end
    fields[#fields + 1] = field
    quoted[#quoted + 1] = was_quoted
  end
end

-- Reads and compiles a rules file.  Returns list, mode or nil, err.
local function parse_file(path, default_mode)
  local f, oerr = io.open(path, "rb")
  if not f then
    return nil, oerr
  end
  local data, rerr = f:read(MAX_FILE_SIZE + 1)
  f:close()
  if rerr then
    return nil, path .. ": " .. rerr
  end
  data = data or ""
  if #data > MAX_FILE_SIZE then
    return nil, string.format("%s: rules file larger than %d bytes", path,
      MAX_FILE_SIZE)
  end

  local list, mode, mode_line, lineno = {}, nil, nil, 0
  for line in (data .. "\n"):gmatch("([^\n]*)\n") do
    lineno = lineno + 1
    line = line:gsub("\r$", "")
    local where = path .. ":" .. lineno .. ": "
    local fields, quoted = {}, nil
    if not line:find("^[ \t]*#") then
      fields, quoted = split_fields(line)
      if not fields then
        return nil, where .. quoted
      end
    end
    if #fields == 0 then
      -- blank or comment line
    elseif fields[1] == "mode" and not quoted[1] then
      if #fields ~= 2 or not MODES[fields[2]] then
        return nil, where .. "expected 'mode first' or 'mode chained'"
      end
      if mode_line then
        return nil, where .. "mode given twice (first at line "
          .. mode_line .. ")"
      end
      if #list > 0 then
        return nil, where .. "mode must come before the first rule"
      end
      mode, mode_line = fields[2], lineno
    elseif #fields > 3 or #fields < 2 then
      return nil, where .. "expected REGEX REPLACEMENT [FLAGS], got "
        .. #fields .. " field" .. (#fields == 1 and "" or "s")
    elseif #list >= MAX_RULES then
      return nil, where .. "more than " .. MAX_RULES .. " rules"
    else
      local rule, err = compile(fields[1], fields[2], fields[3],
        path .. ":" .. lineno)
      if not rule then
        return nil, where .. err
      end
      list[#list + 1] = rule
    end
  end
  return list, mode or default_mode
end

local Rules = {}
Rules.__index = Rules

local function check_self(self, method)
  if getmetatable(self) ~= Rules then
    error("rewrite: use rules:" .. method .. "(...)", 3)
  end
end

local function check_mode(mode, what)
  if mode ~= nil and not MODES[mode] then
    error("rewrite: " .. what .. " must be 'first' or 'chained', got '"
      .. show(tostring(mode)) .. "'", 3)
  end
end

local function rule_error(rule, err)
  err = tostring(err)
  if err:find("MATCHLIMIT", 1, true) then
    err = "match limit exceeded, the regex backtracks too much (" .. err .. ")"
  end
  error("rewrite: " .. rule.origin .. ": " .. err, 3)
end

--- rules:apply(address) -> string, n | nil
-- first mode: the rewritten address and the index of the rule that matched;
-- chained mode: the final string and how many rules matched.  nil when no
-- rule matched.  Raises if address is not a string or not valid UTF-8, or
-- if a rule exceeds the match limit.  Does not yield.
function Rules:apply(address)
  check_self(self, "apply")
  if type(address) ~= "string" then
    error("rewrite: apply expects a string, got " .. type(address), 2)
  end
  if not valid_utf8(address) then
    error("rewrite: the address is not valid UTF-8", 2)
  end
  local list = self.list
  if self.mode == "first" then
    for i = 1, #list do
      local rule = list[i]
      local ok, out, n = pcall(gsub, address, rule.re, rule.repl, rule.limit)
      if not ok then
        rule_error(rule, out)
      end
      if n > 0 then
        return out, i
      end
    end
    return nil
  end
  local s, matched = address, 0
  for i = 1, #list do
    local rule = list[i]
    local ok, out, n = pcall(gsub, s, rule.re, rule.repl, rule.limit)
    if not ok then
      rule_error(rule, out)
    end
    if n > 0 then
      s, matched = out, matched + 1
    end
  end
  if matched == 0 then
    return nil
  end
  return s, matched
end

--- rules:reload() -> true | nil, err
-- Re-reads the file the rules came from.  On any error the rules in force
-- stay as they were.  Raises for inline rules (there is no file).
function Rules:reload()
  check_self(self, "reload")
  if not self.path then
    error("rewrite: reload needs rules made by rewrite.load", 2)
  end
  local list, mode = parse_file(self.path, self.default_mode)
  if not list then
    return nil, mode
  end
  self.list, self.mode, self.count = list, mode, #list
  return true
end

--- rewrite.new(list) -> rules
-- list is { {REGEX, REPLACEMENT [, FLAGS]}, ..., mode = "first"|"chained" }.
-- Raises on any mistake, at the caller's line (level 2).
function M.new(list)
  if type(list) ~= "table" then
    error("rewrite.new expects a table of rules, got " .. type(list), 2)
  end
  local n, max = 0, 0
  for k in pairs(list) do
    if k ~= "mode" then
      if type(k) ~= "number" or k < 1 or k % 1 ~= 0 then
        error("rewrite.new: unknown option '" .. show(tostring(k))
          .. "' (the only option is mode)", 2)
      end
      n, max = n + 1, math.max(max, k)
    end
  end
  if n ~= max then
    error("rewrite.new: the rules must be a list without holes", 2)
  end
  if n > MAX_RULES then
    error("rewrite.new: more than " .. MAX_RULES .. " rules", 2)
  end
  check_mode(list.mode, "mode")

  local caller = debug.getinfo(2, "Sl")
  local at = caller and caller.currentline > 0
    and caller.short_src .. ":" .. caller.currentline .. ": " or ""
  local rules = {}
  for i = 1, n do
    local r, prefix = list[i], "rewrite rule " .. i .. ": "
    if type(r) ~= "table" then
      error(prefix .. "expected { REGEX, REPLACEMENT [, FLAGS] }, got "
        .. type(r), 2)
    end
    for k in pairs(r) do
      if k ~= 1 and k ~= 2 and k ~= 3 then
        error(prefix .. "unexpected key '" .. show(tostring(k)) .. "' (a "
          .. "rule is { REGEX, REPLACEMENT [, FLAGS] })", 2)
      end
    end
    if type(r[1]) ~= "string" or type(r[2]) ~= "string"
        or (r[3] ~= nil and type(r[3]) ~= "string") then
      error(prefix .. "REGEX, REPLACEMENT and FLAGS must be strings", 2)
    end
    local rule, err = compile(r[1], r[2], r[3], at .. "rule " .. i)
    if not rule then
      error(prefix .. err, 2)
    end
    rules[i] = rule
  end
  return setmetatable({ list = rules, mode = list.mode or "first",
    count = n }, Rules)
end

--- rewrite.load(path [, opts]) -> rules | nil, err
-- Reads a rules file (format above).  opts.mode is the mode when the file
-- has no mode line.  A bad path or file is nil, "path:LINE: ..."; a bad
-- opts raises.
function M.load(path, opts)
  if type(path) ~= "string" then
    error("rewrite.load expects a path, got " .. type(path), 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("rewrite.load: opts must be a table, got " .. type(opts), 2)
  end
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "mode" then
      error("rewrite.load: unknown option '" .. show(tostring(k))
        .. "' (the only option is mode)", 2)
    end
  end
  check_mode(opts.mode, "opts.mode")
  local default_mode = opts.mode or "first"
  local list, mode = parse_file(path, default_mode)
  if not list then
    return nil, mode
  end
  return setmetatable({ list = list, mode = mode, count = #list,
    path = path, default_mode = default_mode }, Rules)
end

return M
