-- prelude.lua — run once by the server when its Lua state is created.
--
-- Argument: the lua/ directory of luasmtpd.  Returns make_env(G), which
-- builds the environment the config file runs in.
--
-- 1. User code runs with the JIT off for its functions, so the watchdog's
--    debug hook can stop a runaway loop: LuaJIT does not run debug hooks
--    inside compiled traces (see src/lua/lua_watchdog.c).  loadstring,
--    load, loadfile, dofile and require (for modules outside lua/) mark
--    what they load with jit.off(f, true); our own modules keep the JIT.
-- 2. The library functions that call back into Lua from C (string.gsub
--    with a function or table, tostring and string.format on an object
--    with __tostring, table.sort, coroutine.resume/wrap, load with a reader)
--    count how deeply they are nested and raise past C_DEPTH_MAX.  Each
--    nesting level costs C stack, and the LuaJIT of Debian 12 has no limit
--    of its own: `s:gsub(".", f)` where f calls itself that way would
--    overflow the C stack and kill the server instead of failing the hook.
--    (Lua 5.1 caps C calls at 200 the same way: LUAI_MAXCCALLS.)  The
--    guarded calls cannot yield (LuaJIT refuses to yield across these C
--    functions), so the count is always back to 0 between hooks.
-- 3. make_env: reads fall through to _G; every global assignment records
--    its line so that config errors can say file:line (the line of the
--    last assignment, whose value is used); `hooks` accepts only known hook
--    names, each a function.

local lua_dir = ...
local jit_off = jit and jit.off

local function mark(f, ...)
  if f and jit_off then jit_off(f, true) end
  return f, ...
end

local raw_loadstring, raw_loadfile, raw_load = loadstring, loadfile, load
loadstring = function(...) return mark(raw_loadstring(...)) end
load = function(...) return mark(raw_load(...)) end
loadfile = function(...) return mark(raw_loadfile(...)) end
dofile = function(path)
  local f = assert(loadfile(path))
  return f()
end

-- ---- 2. C call depth ----
local C_DEPTH_MAX = 200
local c_depth = 0

local function leave(ok, ...)
  c_depth = c_depth - 1
  if not ok then error((...), 0) end
  return ...
end

-- raw(...) with the depth counted, if needs(...) says it may call Lua.
local function guard(name, raw, needs)
  return function(...)
    if needs ~= nil and not needs(...) then return raw(...) end
    if c_depth >= C_DEPTH_MAX then
      error(name .. ": C call depth limit (" .. C_DEPTH_MAX .. ") reached: " ..
        "a recursion through a C function", 2)
    end
    c_depth = c_depth + 1
    return leave(pcall(raw, ...))
  end
end

local function callable(v)
  local t = type(v)
  return t == "function" or t == "table" or t == "userdata"
end
local function any_object(...)
  for i = 1, select("#", ...) do
    local t = type((select(i, ...)))
    if t == "table" or t == "userdata" then return true end
  end
  return false
end

string.gsub = guard("string.gsub", string.gsub, function(_, _, r) return callable(r) end)
tostring = guard("tostring", tostring, any_object)
string.format = guard("string.format", string.format, any_object)
table.sort = guard("table.sort", table.sort)
table.foreach = table.foreach and guard("table.foreach", table.foreach)
table.foreachi = table.foreachi and guard("table.foreachi", table.foreachi)
coroutine.resume = guard("coroutine.resume", coroutine.resume)
do
  -- The C wrap would resume without the guard: rebuild it on the guarded
  -- resume (same behaviour: errors propagate with their message).
  local create, resume = coroutine.create, coroutine.resume
  local function unwrap(ok, ...)
    if not ok then error((...), 0) end
    return ...
  end
  coroutine.wrap = function(f)
    local co = create(f)
    return function(...) return unwrap(resume(co, ...)) end
  end
end
load = guard("load", load, function(f) return type(f) == "function" end)

-- Searches before the standard Lua searcher; leaves lua/ modules to it.
table.insert(package.loaders, 2, function(name)
  local path = package.searchpath(name, package.path)
  if not path or path:sub(1, #lua_dir + 1) == lua_dir .. "/" then
    return nil
  end
  local f, err = raw_loadfile(path)
  if not f then error(err, 0) end
  return mark(f)
end)

local known = {
  connect = true, helo = true, mail = true, rcpt = true, data = true,
  message = true, reset = true, disconnect = true, vrfy = true, auth = true,
}

local function check_hook(name, fn, level)
  if not known[name] then
    error("unknown hook '" .. tostring(name) .. "' (hooks are connect, helo, "
      .. "mail, rcpt, data, message, reset, disconnect, vrfy, auth)", level + 1)
  end
  if type(fn) ~= "function" then
    error("hook '" .. name .. "' must be a function", level + 1)
  end
end

return function(G)
  local lines, hooks = {}, {}
  local proxy = setmetatable({}, {
    __index = hooks,
    __newindex = function(_, k, v)
      check_hook(k, v, 2)
      rawset(hooks, k, v)
    end,
  })
  -- The values live behind env, never in it, so that every assignment
  -- reaches __newindex: a setting assigned twice is blamed on the line of
  -- the value that is used (the last).  lua_config.c reads them through
  -- env's metatable (__index).
  local values = setmetatable({ hooks = proxy }, { __index = G })
  local env = setmetatable({}, {
    __index = values,
    __newindex = function(_, k, v)
      if k == "hooks" and type(v) == "table" then
        for name, fn in pairs(v) do check_hook(name, fn, 2) end
      end
      rawset(values, k, v)
      lines[k] = debug.getinfo(2, "l").currentline
    end,
  })
  local function get_hooks()
    local h = rawget(values, "hooks")
    if h == proxy then return hooks end
    return h
  end
  return env, lines, get_hooks
end
