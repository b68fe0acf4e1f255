-- memoize_spec.lua — luasmtpd.memoize (kv.memoize's Lua half) and
-- luasmtpd.json, without a server: the store is a table that records calls
-- (the real store is spec/e2e/32-kv_spec.lua's).

local memoize = require "luasmtpd.memoize"
local json = require "luasmtpd.json"

-- A store with get/set like luasmtpd.kv's, and switches to make it fail.
local function fake_store()
  local st = { data = {}, gets = 0, sets = 0, ttls = {} }
  function st.get(key)
    st.gets = st.gets + 1
    if st.down then return nil, "unavailable" end
    return st.data[key]
  end
  function st.set(key, value, opts)
    st.sets = st.sets + 1
    if st.down then return nil, "unavailable" end
    assert(type(value) == "string", "the store only takes strings")
    st.data[key] = value
    st.ttls[key] = opts and opts.ttl
    return true
  end
  return st
end

describe("luasmtpd.memoize", function()
  describe("encode and decode", function()
    local values = {
      { "", "an empty string" },
      { "a\0b\255", "bytes" },
      { 0, "zero" },
      { -17, "a negative integer" },
      { 2 ^ 53, "2^53" },
      { 0.1, "a fraction" },
      { 1 / 3, "a repeating fraction" },
      { 1e300, "a large number" },
      { math.huge, "infinity" },
      { -math.huge, "minus infinity" },
      { true, "true" },
      { false, "false" },
    }
    for _, case in ipairs(values) do
      it("round-trips " .. case[2] .. " exactly", function()
        local enc = assert(memoize.encode(case[1]))
        assert.equals(case[1], memoize.decode(enc))
      end)
    end

    it("round-trips NaN", function()
      local v = memoize.decode(assert(memoize.encode(0 / 0)))
      assert.is_true(v ~= v)
    end)

    it("round-trips tables as JSON", function()
      local t = { user = "alice", ok = true, list = { 1, 2, "x" }, nested = { a = { b = "c" } } }
      assert.same(t, memoize.decode(assert(memoize.encode(t))))
    end)

    it("returns an array with holes with string keys, never with nulls", function()
      assert.same({ ["1"] = 1, ["3"] = 3 }, memoize.decode(memoize.encode({ 1, nil, 3 })))
    end)

    it("refuses functions, userdata and threads", function()
      assert.is_nil(memoize.encode(print))
      assert.is_nil(memoize.encode(coroutine.create(print)))
      assert.is_nil(memoize.encode(io.stdout))
      local enc, why = memoize.encode({ f = print })
      assert.is_nil(enc)
      assert.matches("Cannot serialise function", why)
    end)

    local bad = {
      { "", "an empty value" },
      { "x", "an unknown tag" },
      { "n", "an empty number" },
      { "n0x10", "a hex number" },
      { "n 5", "a number with blanks" },
      { "Tx", "a boolean with data" },
      { "j[1,", "broken JSON" },
      { "j\"str\"", "JSON that is not a table" },
    }
    for _, case in ipairs(bad) do
      it("does not decode " .. case[2], function()
        local v, why = memoize.decode(case[1])
        assert.is_nil(v)
        assert.is_string(why)
      end)
    end
  end)

  describe("wrap", function()
    it("calls fn once per key and caches with the ttl", function()
      local st, calls = fake_store(), 0
      local f = memoize.wrap(st, function(x) calls = calls + 1 return x .. "!" end,
        { ttl = 30, prefix = "p:" })
      assert.equals("a!", f("a"))
      assert.equals("a!", f("a"))
      assert.equals(1, calls)
      assert.equals("b!", f("b"))
      assert.equals(2, calls)
      for k, ttl in pairs(st.ttls) do
        assert.equals(30, ttl)
        assert.equals("p:", k:sub(1, 2))
      end
    end)

    it("caches false but not nil, and passes nil, err through", function()
      local st, calls = fake_store(), 0
      local no = memoize.wrap(st, function() calls = calls + 1 return false end, { ttl = 5 })
      assert.is_false(no())
      assert.is_false(no())
      assert.equals(1, calls)
      local failing = memoize.wrap(st, function() calls = calls + 1 return nil, "down" end,
        { ttl = 5 })
      local v, err = failing()
      assert.is_nil(v)
      assert.equals("down", err)
      failing()
      assert.equals(3, calls)
    end)

    it("returns only the first result", function()
      local f = memoize.wrap(fake_store(), function() return 1, 2 end, { ttl = 5 })
      assert.equals(1, select("#", f()))
      assert.equals(1, select("#", f()))
    end)

    it("caches tables", function()
      local st, calls = fake_store(), 0
      local f = memoize.wrap(st, function() calls = calls + 1 return { a = { 1, 2 } } end,
        { ttl = 5 })
      assert.same({ a = { 1, 2 } }, f())
      assert.same({ a = { 1, 2 } }, f())
      assert.equals(1, calls)
    end)

    it("keeps different argument lists apart", function()
      local st, calls = fake_store(), 0
      local f = memoize.wrap(st, function(...) calls = calls + 1 return select("#", ...) end,
        { ttl = 5 })
      f("a", "b")
      f("ab")
      f("a", "b", nil)
      f(1)
      f("1")
      f(true)
      assert.equals(6, calls)
      f("a", "b")
      assert.equals(6, calls)
    end)

    it("uses the key function", function()
      local st, calls = fake_store(), 0
      local f = memoize.wrap(st, function(t) calls = calls + 1 return t.id end,
        { ttl = 5, prefix = "u:", key = function(t) return t.id end })
      f({ id = "7" })
      f({ id = "7" })
      assert.equals(1, calls)
      assert.equals("s7", st.data["u:7"])
    end)

    it("gives two memoized functions different default prefixes", function()
      local st = fake_store()
      local f = memoize.wrap(st, function() return "f" end, { ttl = 5 })
      local g = memoize.wrap(st, function() return "g" end, { ttl = 5 })
      assert.equals("f", f())
      assert.equals("g", g())
    end)

    it("calls fn when the store is down and still returns its result", function()
      local st, calls = fake_store(), 0
      st.down = true
      local f = memoize.wrap(st, function() calls = calls + 1 return "v" end, { ttl = 5 })
      assert.equals("v", f())
      assert.equals("v", f())
      assert.equals(2, calls)
    end)

    it("does not cache past the store's key and value bounds, and does not raise", function()
      local st, calls = fake_store(), 0
      st.KEY_MAX, st.VALUE_MAX = 16, 8
      local f = memoize.wrap(st, function(x) calls = calls + 1 return x end,
        { ttl = 5, prefix = "p:" })
      local long = string.rep("k", 20)
      assert.equals(long, f(long))          -- key over KEY_MAX: not even looked up
      assert.equals(long, f(long))
      assert.equals(0, st.gets)
      local g = memoize.wrap(st, function() calls = calls + 1 return long end,
        { ttl = 5, prefix = "g:" })
      assert.equals(long, g())              -- value over VALUE_MAX: not stored
      assert.equals(long, g())
      assert.equals(4, calls)
      assert.is_nil(next(st.data))
    end)

    it("treats a value it cannot decode as a miss and overwrites it", function()
      local st, calls = fake_store(), 0
      st.data["p:" .. "0:"] = "garbage"
      local f = memoize.wrap(st, function() calls = calls + 1 return "v" end,
        { ttl = 5, prefix = "p:", key = function() return "0:" end })
      assert.equals("v", f())
      assert.equals(1, calls)
      assert.equals("sv", st.data["p:0:"])
    end)

    local misuse = {
      { function() memoize.wrap(fake_store(), "f", { ttl = 1 }) end, "expected a function" },
      { function() memoize.wrap(fake_store(), print) end, "options table" },
      { function() memoize.wrap(fake_store(), print, {}) end, "ttl must be" },
      { function() memoize.wrap(fake_store(), print, { ttl = 0.5 }) end, "ttl must be" },
      { function() memoize.wrap(fake_store(), print, { ttl = 1, tll = 2 }) end, "unknown option 'tll'" },
      { function() memoize.wrap(fake_store(), print, { ttl = 1, key = "k" }) end, "key must be a function" },
      { function() memoize.wrap(fake_store(), print, { ttl = 1, prefix = 1 }) end, "prefix must be a string" },
      { function() memoize.wrap(fake_store(), print, { ttl = 1 })({}) end, "argument #1 is a table" },
      { function() memoize.wrap(fake_store(), function() return print end, { ttl = 1 })() end,
        "cannot cache the result" },
      { function() memoize.wrap(fake_store(), print, { ttl = 1, key = function() return 1 end })() end,
        "returned a number" },
    }
    for i, case in ipairs(misuse) do
      it("raises on misuse #" .. i .. " (" .. case[2] .. ")", function()
        local ok, err = pcall(case[1])
        assert.is_false(ok)
        assert.matches(case[2], err, 1, true)
      end)
    end
  end)
end)

describe("luasmtpd.json", function()
  it("encodes and decodes", function()
    assert.same({ user = "alice", ok = true }, json.decode('{"user":"alice","ok":true}'))
    assert.same({ 1, 2, 3 }, json.decode(json.encode({ 1, 2, 3 })))
  end)

  it("returns nil, err on bad input instead of raising", function()
    local v, err = json.decode("{bad")
    assert.is_nil(v)
    assert.is_string(err)
  end)

  it("refuses nesting past its depth limit", function()
    local deep = string.rep("[", json.DEPTH_MAX + 1) .. string.rep("]", json.DEPTH_MAX + 1)
    assert.is_nil(json.decode(deep))
  end)

  it("raises when encoding what JSON cannot hold", function()
    assert.has_error(function() json.encode({ f = print }) end)
    assert.has_error(function() json.encode(0 / 0) end)
  end)

  it("keeps its settings apart from a config's own cjson", function()
    local cjson = require "cjson"
    cjson.decode_max_depth(2)
    local ok, v = pcall(json.decode, "[[[1]]]")
    cjson.decode_max_depth(1000)
    assert.is_true(ok)
    assert.same({ { { 1 } } }, v)
  end)

  it("decodes JSON null to json.null", function()
    assert.equals(json.null, json.decode("[null]")[1])
  end)
end)
