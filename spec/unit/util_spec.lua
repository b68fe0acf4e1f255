-- luasmtpd.util: list helpers and the safe Maildir path of a recipient.
local util = require "luasmtpd.util"

describe("luasmtpd.util", function()
  it("splits a list, trimming blanks and dropping empties", function()
    assert.same({ "a", "b", "c" }, util.split(" a, b,,c ", ","))
    assert.same({}, util.split("", ","))
    assert.same({}, util.split(nil, ","))
  end)

  it("makes a set with lower-cased keys", function()
    assert.same({ ["example.test"] = true, localhost = true },
      util.set{ "Example.TEST", "localhost" })
  end)

  describe("maildir_path", function()
    local domains = util.set{ "example.test" }

    it("maps a local recipient to root/domain/local-part, lower-cased", function()
      assert.equals("/m/example.test/bob.smith+x", util.maildir_path("/m", domains,
        "Bob.Smith+X@Example.Test"))
    end)

    it("refuses a domain that is not local", function()
      assert.is_nil(util.maildir_path("/m", domains, "bob@elsewhere.test"))
    end)

    it("refuses an address without a domain", function()
      assert.is_nil(util.maildir_path("/m", domains, "Postmaster"))
    end)

    it("refuses an empty local part", function()
      assert.is_nil(util.maildir_path("/m", domains, "@example.test"))
      assert.is_nil(util.maildir_path("/m", domains, '""@example.test'))
    end)

    -- address -> the directory under /m/example.test/
    local cases = {
      { '"john smith"@example.test', "john smith", "a quoted local part is unquoted" },
      { '"Bob"@example.test', "bob", "needless quotes are the same mailbox" },
      { '"a\\"b\\\\c"@example.test', 'a"b\\c', "backslash escapes are undone" },
      { '"a@b"@example.test', "a@b", "an @ inside quotes" },
      { "jos\195\169@example.test", "jos\195\169", "valid UTF-8 is kept" },
      { "JOS\195\137@example.test", "jos\195\137", "only ASCII is lower-cased" },
      { "a/b@example.test", "a%2Fb", "a / is encoded" },
      { '"../x"@example.test', "%2E.%2Fx", "a leading . and / are encoded" },
      { ".hidden@example.test", "%2Ehidden", "a leading . is encoded" },
      { '"."@example.test', "%2E", "a lone . is encoded" },
      { '".."@example.test', "%2E.", "a .. is no component" },
      { "a.b..c@example.test", "a.b..c", "dots inside stay" },
      { "100%@example.test", "100%25", "% itself is encoded" },
      { "a%2Fb@example.test", "a%252fb", "an encoded-looking name stays distinct" },
      { '"a\0b"@example.test', "a%00b", "NUL is encoded" },
      { '"a\tb\127"@example.test', "a%09b%7F", "control bytes are encoded" },
      { "a\194\133b@example.test", "a%C2%85b", "a C1 control is encoded" },
      { "x\255y@example.test", "x%FFy", "a byte that is not UTF-8 is encoded" },
      { "\192\175@example.test", "%C0%AF", "an overlong form is encoded" },
      { "\237\160\128@example.test", "%ED%A0%80", "a surrogate is encoded" },
      { "\195@example.test", "%C3", "a cut sequence is encoded" },
      { "\244\144\128\128@example.test", "%F4%90%80%80", "above U+10FFFF is encoded" },
      { "\240\159\152\128@example.test", "\240\159\152\128", "a 4-byte character is kept" },
    }
    for _, case in ipairs(cases) do
      it("maps: " .. case[3], function()
        assert.equals("/m/example.test/" .. case[2],
          util.maildir_path("/m", domains, case[1]))
      end)
    end

    for _, bad in ipairs{ '"abc@example.test', '"a"b"@example.test', '"a\\"@example.test' } do
      it("refuses a malformed quoted string: " .. bad, function()
        assert.is_nil(util.maildir_path("/m", domains, bad))
      end)
    end

    it("bounds a name at 255 bytes once encoded (n and n+1)", function()
      assert.equals("/m/example.test/" .. ("a"):rep(255),
        util.maildir_path("/m", domains, ("a"):rep(255) .. "@example.test"))
      assert.is_nil(util.maildir_path("/m", domains, ("a"):rep(256) .. "@example.test"))
      assert.equals("/m/example.test/" .. ("%2F"):rep(85),
        util.maildir_path("/m", domains, ("/"):rep(85) .. "@example.test"))
      assert.is_nil(util.maildir_path("/m", domains, ("/"):rep(85) .. "a@example.test"))
    end)

    -- The name decodes back to the local part (unquoted, ASCII lower-cased).
    local function decode(name)
      return (name:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
    end

    it("never maps two mailboxes to one name, and never leaves root", function()
      -- Deterministic and bounded: 3000 local parts of up to 12 bytes drawn
      -- from the bytes that matter (%, /, ., case, NUL, control, UTF-8 parts).
      local alphabet = { "a", "A", "b", "B", ".", "/", "%", "2", "F", "\0", "\t", "\127",
                         "\195", "\169", "\194", "\133", "\255", "\\", '"', " ", "@" }
      local seed = 12345
      local function rnd(n)   -- Park-Miller: exact in doubles
        seed = seed * 16807 % 2147483647
        return seed % n + 1
      end
      local seen = {}
      for _ = 1, 3000 do
        local t = {}
        for _ = 1, rnd(12) do t[#t + 1] = alphabet[rnd(#alphabet)] end
        local lp = table.concat(t)
        local quoted = '"' .. lp:gsub('[\\"]', "\\%0") .. '"'
        local path = util.maildir_path("/m", domains, quoted .. "@example.test")
        local name = assert(path):match("^/m/example%.test/(.+)$")
        assert.is_nil(name:find("/", 1, true))
        assert.is_nil(name:find("^%."))
        assert.is_nil(name:find("[%z\1-\31\127]"))
        local folded = lp:gsub("[A-Z]", string.lower)
        assert.equals(folded, decode(name))
        assert.is_true(seen[name] == nil or seen[name] == folded)
        seen[name] = folded
      end
    end)
  end)
end)
