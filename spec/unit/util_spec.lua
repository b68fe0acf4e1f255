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

    for _, bad in ipairs{ "../etc@example.test", "a/b@example.test", "a..b@example.test",
                          ".hidden@example.test", '"q"@example.test', "-x@example.test",
                          "@example.test", "a\0b@example.test" } do
      it("refuses a local part that could leave root: " .. bad:gsub("%z", "\\0"), function()
        assert.is_nil(util.maildir_path("/m", domains, bad))
      end)
    end
  end)
end)
