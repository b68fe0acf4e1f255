-- man_spec.lua — the manual pages in src/man/ (mdoc(7) sources of
-- luasmtpd(8) and luasmtpd.conf(5)).
--
-- 1. man(1) renders each page with groff's warnings on and says nothing on
--    stderr (a misspelt macro, an unknown escape or special character is a
--    warning), and lexgrog (what mandb builds whatis from) reads its NAME.
-- 2. The config reference cannot drift from the code: every name that
--    src/lua/lua_config.c accepts (top-level settings, limits.*, timeouts.*,
--    tls.*, the fields of tls.certs, hook names) and the listener options
--    of src/lua/lua_config_listen.c have an
--    entry of its own (".It Ic name", ".It Fn hooks.name") in its section
--    of luasmtpd.conf.5, no entry names something the code refuses, and
--    each limit's documented range is the one the code enforces.
--
-- The names are read from the C source, from the constructs that define
-- them (read_setting's strcmp chain, the limit_opts/timeout_opts tables,
-- the known[] lists, opt_string calls, the hook names[] array).  Every
-- option of main.c, short (-t) and long (--stdio), has an entry in
-- luasmtpd.8.  If the
-- code changes shape so that a construct is no longer found, the spec
-- fails and says which one: update the reader below, never the minimums
-- down.

local H = require "spec.helpers"

local MAN_DIR = H.root .. "/src/man"
local PAGES = { "luasmtpd.8", "luasmtpd.conf.5" }
local CONFIG_C = H.root .. "/src/lua/lua_config.c"
local LISTEN_C = H.root .. "/src/lua/lua_config_listen.c"
local LIMITS_H = H.root .. "/src/util/limits.h"

local function read(path)
  return assert(H.read_file(path), "cannot read " .. path)
end

-- The text of a C function from its definition line to its closing brace.
local function c_function(src, name)
  local start = src:find("\n" .. name .. "%(")
  assert(start, "function " .. name .. "() not found: update man_spec.lua")
  local stop = src:find("\n}\n", start, true)
  assert(stop, "end of " .. name .. "() not found")
  return src:sub(start, stop)
end

-- The initializer text of `<decl> = { ... };` within text.
local function initializer(text, decl, where)
  local s = text:find(decl, 1, true)
  assert(s, where .. ": '" .. decl .. "' not found: update man_spec.lua")
  local open = text:find("{", s, true)
  local close = text:find("};", open, true)
  assert(open and close, where .. ": initializer of '" .. decl .. "' not found")
  return text:sub(open, close)
end

local function strings_in(text, pattern)
  local list, seen = {}, {}
  for name in text:gmatch(pattern) do
    if not seen[name] then
      seen[name] = true
      list[#list + 1] = name
    end
  end
  return list
end

-- A number from lua_config.c: a literal or a #define of limits.h.
local function resolve(token, defines)
  local n = tonumber(token)
  if n then return n end
  n = defines[token]
  assert(n, "limits.h: no numeric #define " .. tostring(token))
  return n
end

-- Everything lua_config.c accepts.
local function accepted()
  local src = read(CONFIG_C)
  local defines = {}
  for name, value in read(LIMITS_H):gmatch("#define%s+([%w_]+)%s+(%d+)%f[^%d]") do
    defines[name] = tonumber(value)
  end
  local names = {
    top = strings_in(c_function(src, "read_setting"), 'strcmp%(k, "([%w_]+)"%) == 0'),
    listener = strings_in(initializer(c_function(read(LISTEN_C), "read_listener_opts"),
      "known[] =", "read_listener_opts"), '"([%w_]+)"'),
    tls = strings_in(initializer(c_function(src, "read_tls"), "known[] =", "read_tls"),
      '"([%w_]+)"'),
    cert = strings_in(c_function(src, "read_tls"), 'opt_string%(c, e, "([%w_]+)"'),
    hooks = strings_in(initializer(c_function(src, "lua_config_read"), "names[HOOK_COUNT] =",
      "lua_config_read"), '"([%w_]+)"'),
    limits = {}, timeouts = {}, ranges = {},
  }
  local limits = initializer(src, "limit_opts[] =", "lua_config.c")
  for name, lo, hi in limits:gmatch('[UZ]%("([%w_]+)",%s*([%w_.]+),%s*([%w_.]+)') do
    names.limits[#names.limits + 1] = name
    names.ranges[name] = { resolve(lo, defines), resolve(hi, defines) }
  end
  names.timeouts = strings_in(initializer(src, "timeout_opts[] =", "lua_config.c"),
    'S%("([%w_]+)"')
  return names
end

-- Entries of the page: { section = "LIMITS", macro = "Ic", name = "...", text = ... }
-- where text is the source up to the next entry or section.
local function entries(page)
  local list, section, current = {}, nil, nil
  for line in (page .. "\n"):gmatch("(.-)\n") do
    local sh = line:match("^%.Sh%s+(.+)$")
    local macro, name = line:match("^%.It%s+(%a%a)%s+([^%s]+)")
    if sh then
      section, current = sh, nil
    elseif macro == "Ic" or macro == "Fn" then
      current = { section = section, macro = macro, name = name, text = line }
      list[#list + 1] = current
    elseif current then
      current.text = current.text .. "\n" .. line
    end
  end
  return list
end

local function find_entry(list, section, macro, name)
  for _, e in ipairs(list) do
    if e.section == section and e.macro == macro and e.name == name then return e end
  end
end

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

-- Numbers as the page writes them (integers without ".0").
local function num(n)
  if n == math.floor(n) then return string.format("%d", n) end
  return tostring(n)
end

describe("the manual pages #man", function()
  for _, name in ipairs(PAGES) do
    local path = MAN_DIR .. "/" .. name

    it(name .. " renders with man(1) without a warning", function()
      assert(H.read_file(path), path .. " is missing")
      -- stdout (the page) is dropped inside the braces, stderr is kept.
      local out, rc = H.sh("{ LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l " ..
        H.q(path) .. " >/dev/null; }")
      assert.equals(0, rc, out)
      assert.equals("", out, name .. ": man --warnings said:\n" .. out)
    end)

    it(name .. " renders its NAME and the sections a manual page has", function()
      local out, rc = H.sh("LC_ALL=C.UTF-8 MANWIDTH=80 man -E UTF-8 -l " .. H.q(path) ..
        " 2>/dev/null | col -b")
      assert.equals(0, rc, out)
      for _, sh in ipairs({ "NAME", "SYNOPSIS", "DESCRIPTION", "FILES", "SEE ALSO" }) do
        assert.truthy(out:find("\n" .. sh .. "\n", 1, true), name .. " lacks " .. sh)
      end
      local stem = name:match("^(.-)%.%d$")
      assert.truthy(out:find(stem .. " \226\128\148 ", 1, true) or out:find(stem .. " - ", 1, true),
        name .. ": no 'name - description' line:\n" .. out:sub(1, 400))
    end)

    it(name .. " has a NAME line that lexgrog (whatis) reads", function()
      local out, rc = H.sh("lexgrog " .. H.q(path))
      assert.equals(0, rc, out)
      assert.matches("luasmtpd", out)
    end)
  end

  it("luasmtpd.8 documents every option of main.c", function()
    local main = read(H.root .. "/src/main.c")
    local page = read(MAN_DIR .. "/luasmtpd.8")
    local opts = strings_in(main, 'strcmp%(a, "%-(%a)"%) == 0')
    assert(#opts >= 6, "main.c: fewer than 6 options found: update man_spec.lua")
    for _, o in ipairs(opts) do
      assert.truthy(page:find("\n%.It Fl " .. o .. "[%s\n]") or
        page:find("\n%.It Fl [%a]+ ?,? ?Fl " .. o .. "[%s\n]") or
        page:find("\n%.It Fl " .. o .. " ,"),
        "luasmtpd.8 has no entry for -" .. o)
    end
    -- Long options: "--stdio" is written "Fl \-stdio" in mdoc.
    local long = strings_in(main, 'strcmp%(a, "%-%-([%a][%w-]*)"%) == 0')
    assert(#long >= 3, "main.c: fewer than 3 long options found: update man_spec.lua")
    for _, o in ipairs(long) do
      local mdoc = "Fl \\%-" .. o:gsub("%-", "\\%%-")
      assert.truthy(page:find("\n%.It Fl " .. mdoc:sub(4) .. "[%s\n]") or
        page:find("\n%.It Fl %a ,? ?" .. mdoc .. "[%s\n]") or
        page:find("\n%.It " .. mdoc .. "\n"),
        "luasmtpd.8 has no entry for --" .. o)
    end
    for _, sig in ipairs({ "SIGHUP", "SIGTERM", "SIGINT" }) do
      assert.truthy(page:find("Dv " .. sig, 1, true), "luasmtpd.8 does not name " .. sig)
    end
    assert.truthy(page:find("Ev LUASMTPD_LUA_DIR", 1, true))
    assert.truthy(page:find(".Sh EXIT STATUS", 1, true))
  end)

  describe("luasmtpd.conf.5 against src/lua/lua_config.c", function()
    local names = accepted()
    local list = entries(read(MAN_DIR .. "/luasmtpd.conf.5"))

    it("reads the names from the C source (the reader still fits the code)", function()
      local minimum = { top = 15, listener = 7, tls = 6, cert = 3, hooks = 10,
        limits = 13, timeouts = 5 }
      for kind, n in pairs(minimum) do
        assert(#names[kind] >= n, ("only %d %s names found in lua_config.c (at least %d " ..
          "expected): update the reader in man_spec.lua"):format(#names[kind], kind, n))
      end
      local anchors = { top = "listen", listener = "require_tls", tls = "certs",
        cert = "self_signed", hooks = "rcpt", limits = "max_message_size", timeouts = "hook_cpu" }
      for kind, anchor in pairs(anchors) do
        assert(set_of(names[kind])[anchor], kind .. " names lack " .. anchor .. ": " ..
          table.concat(names[kind], " "))
      end
    end)

    it("has an entry for every top-level setting", function()
      for _, n in ipairs(names.top) do
        assert(find_entry(list, "SETTINGS", "Ic", n), "SETTINGS has no '.It Ic " .. n .. "'")
      end
    end)

    it("has an entry for every listener option", function()
      for _, n in ipairs(names.listener) do
        assert(find_entry(list, "LISTENERS", "Ic", n), "LISTENERS has no '.It Ic " .. n .. "'")
      end
    end)

    it("has an entry for every limits.* setting, with the range the code enforces", function()
      for _, n in ipairs(names.limits) do
        local e = find_entry(list, "LIMITS", "Ic", "limits." .. n)
        assert(e, "LIMITS has no '.It Ic limits." .. n .. "'")
        local lo, hi = num(names.ranges[n][1]), num(names.ranges[n][2])
        local flat = e.text:gsub("%b()", ""):gsub("%s+", " ")
        assert(flat:find(" " .. lo .. " to " .. hi .. ";", 1, true),
          "limits." .. n .. ": the code takes " .. lo .. " to " .. hi .. "; the page says:\n" ..
          e.text)
      end
    end)

    it("has an entry for every timeouts.* setting", function()
      for _, n in ipairs(names.timeouts) do
        assert(find_entry(list, "TIMEOUTS", "Ic", "timeouts." .. n),
          "TIMEOUTS has no '.It Ic timeouts." .. n .. "'")
      end
    end)

    it("has an entry for every tls.* setting and every field of tls.certs", function()
      for _, n in ipairs(names.tls) do
        assert(find_entry(list, "TLS", "Ic", "tls." .. n), "TLS has no '.It Ic tls." .. n .. "'")
      end
      for _, n in ipairs(names.cert) do
        assert(find_entry(list, "TLS", "Ic", n), "TLS has no '.It Ic " .. n .. "'")
      end
    end)

    it("has an entry for every hook", function()
      for _, n in ipairs(names.hooks) do
        assert(find_entry(list, "HOOKS", "Fn", "hooks." .. n), "HOOKS has no '.It Fn hooks." ..
          n .. "'")
      end
    end)

    it("documents no setting that the code refuses", function()
      local top, listener = set_of(names.top), set_of(names.listener)
      local by_prefix = { limits = set_of(names.limits), timeouts = set_of(names.timeouts),
        tls = set_of(names.tls), hooks = set_of(names.hooks) }
      local tls_fields = set_of(names.cert)
      for _, e in ipairs(list) do
        local prefix, rest = e.name:match("^(%a+)%.([%w_]+)$")
        if prefix and by_prefix[prefix] then
          assert(by_prefix[prefix][rest], e.section .. ": '" .. e.name ..
            "' is not accepted by lua_config.c")
        elseif e.section == "SETTINGS" then
          assert(top[e.name], "SETTINGS: '" .. e.name .. "' is not a setting of lua_config.c")
        elseif e.section == "LISTENERS" then
          assert(listener[e.name], "LISTENERS: '" .. e.name .. "' is not a listener option")
        elseif e.section == "TLS" then
          assert(tls_fields[e.name], "TLS: '" .. e.name .. "' is not a field of tls.certs")
        end
      end
    end)
  end)
end)
