-- policy_lists_spec.lua — luasmtpd.policy.lists without a server: the file
-- format, CIDR, domain (with and without subdomains) and address matching,
-- reloading when a file changes (on the fake clock), a broken or missing
-- file keeping the old entries with one log line, and the allow and deny
-- functions.  Files are real, in a temp dir.

local fakes = require "spec.support.policy_fakes"
local H = require "spec.helpers"

insulate("luasmtpd.policy.lists", function()
  local f = fakes.install()
  local lists = require "luasmtpd.policy.lists"
  local dir = H.tmpdir()
  local n = 0

  -- A new file with these lines; returns its path.
  local function file(text)
    n = n + 1
    local path = ("%s/list%d"):format(dir, n)
    H.write_file(path, text)
    return path
  end

  -- Replace a file the way an admin should: write aside, rename over it.
  local function replace(path, text)
    H.write_file(path .. ".new", text)
    assert(os.rename(path .. ".new", path))
  end

  teardown(function() H.sh("rm -rf " .. H.q(dir)) end)

  describe("the file format", function()
    it("reads networks, domains and addresses, with comments and blank lines", function()
      local e = assert(lists.parse([[
# a comment
192.0.2.0/24      spammers
  2001:db8::/32
198.51.100.7

Example.COM.
.example.net      # subdomains only
Bob@Example.org
]], "x"))
      assert.same({ "192.0.2.0/24", "2001:db8::/32", "198.51.100.7" }, e.nets)
      assert.same({ ["example.com"] = true }, e.domains)
      assert.same({ ["example.net"] = true }, e.sub)
      assert.same({ ["bob@example.org"] = true }, e.addresses)
    end)

    local bad = {
      { "192.0.2.0/33", "x:1: bad prefix length: '192.0.2.0/33'" },
      { "ok.example\n300.1.1.1", "x:2: not an IP address or network: '300.1.1.1'" },
      { "a@", "x:1: not an address: 'a@'" },
      { "@example.org", "x:1: not an address: '@example.org'" },
      { "exa mple", nil },      -- "mple" is a comment: fine
      { "bad..example", "x:1: not a network, domain or address: 'bad..example'" },
      { "b\1d", "x:1: not a network, domain or address: 'b?d'" },
    }
    for _, c in ipairs(bad) do
      it("says where a bad line is: " .. ("%q"):format(c[1]), function()
        local e, err = lists.parse(c[1], "x")
        if c[2] then
          assert.is_nil(e)
          assert.equals(c[2], err)
        else
          assert.truthy(e)
        end
      end)
    end
  end)

  describe("matching", function()
    local list = lists.load{ file = file([[
192.0.2.0/24
2001:db8:1::/48
example.com
.example.net
bob@example.org
]]) }
    local sub = lists.load{ file = file("example.com\n"), subdomains = true }

    it("matches a client address in a network", function()
      assert.same({ "192.0.2.0/24", "network" }, { list:match("192.0.2.44") })
      assert.same({ "2001:db8:1:0:0:0:0:0/48", "network" }, { list:match("2001:db8:1:5::1") })
      assert.is_nil(list:match("192.0.3.1"))
      assert.is_nil(list:match("2001:db8:2::1"))
    end)

    it("matches a domain, and its subdomains only when asked", function()
      assert.same({ "example.com", "domain" }, { list:match(nil, "a@Example.COM") })
      assert.is_nil(list:match(nil, "a@mail.example.com"))
      assert.same({ "example.com", "domain" }, { sub:match(nil, "a@mail.example.com") })
      assert.same({ "example.com", "domain" }, { sub:match(nil, "a@x.y.example.com") })
      assert.is_nil(sub:match(nil, "a@notexample.com"))
    end)

    it("matches .domain entries for subdomains, never the domain itself", function()
      assert.same({ ".example.net", "domain" }, { list:match(nil, "a@mx.example.net") })
      assert.is_nil(list:match(nil, "a@example.net"))
    end)

    it("matches an address lower-cased, and looks at every address given", function()
      assert.same({ "bob@example.org", "address" }, { list:match(nil, "BOB@example.org") })
      assert.is_nil(list:match(nil, "alice@example.org"))
      assert.same({ "bob@example.org", "address" },
        { list:match("198.51.100.1", "x@y.test", "bob@example.org") })
    end)

    it("ignores empty and literal addresses", function()
      assert.is_nil(list:match(nil, ""))
      assert.is_nil(list:match(nil, "a@[192.0.2.1]"))
      assert.is_nil(list:match(nil, "Postmaster"))
    end)
  end)

  describe("reloading", function()
    it("re-reads a file that changed, at most every interval", function()
      local path = file("192.0.2.0/24\n")
      local list = lists.load{ file = path, interval = 5 }
      assert.truthy(list:match("192.0.2.1"))
      replace(path, "198.51.100.0/24\n")
      f.clock = f.clock + 1
      assert.truthy(list:match("192.0.2.1"), "re-read before the interval")
      f.clock = f.clock + 5
      assert.is_nil(list:match("192.0.2.1"))
      assert.truthy(list:match("198.51.100.1"))
    end)

    it("keeps the old entries of a broken file and logs once", function()
      local path = file("192.0.2.0/24\n")
      local list = lists.load{ file = path, interval = 1 }
      local logs = #f.logs
      replace(path, "192.0.2.0/24\n300.0.0.0/8\n")
      for _ = 1, 3 do
        f.clock = f.clock + 2
        assert.truthy(list:match("192.0.2.1"))
      end
      assert.equals(logs + 1, #f.logs)
      assert.truthy(f.logs[#f.logs]:find(path .. ":2: not an IP address or network", 1, true),
        f.logs[#f.logs])
      -- Fixed: read again.
      replace(path, "198.51.100.0/24\n")
      f.clock = f.clock + 2
      assert.is_nil(list:match("192.0.2.1"))
      assert.truthy(list:match("198.51.100.1"))
    end)

    it("keeps the old entries when the file goes away", function()
      local path = file("192.0.2.0/24\n")
      local list = lists.load{ file = path, interval = 1 }
      os.remove(path)
      f.clock = f.clock + 2
      assert.truthy(list:match("192.0.2.1"))
      assert.truthy(f.logs[#f.logs]:find("no such file", 1, true))
      local ok, err = list:refresh()
      assert.is_nil(ok)
      assert.truthy(err:find("no such file", 1, true))
    end)

    it("refuses a file over FILE_MAX", function()
      local path = file(("#"):rep(lists.FILE_MAX + 1))
      assert.has_error(function() lists.load{ file = path } end)
    end)

    it("makes a missing or broken file at load a config error", function()
      local ok, err = pcall(lists.load, { file = dir .. "/none" })
      assert.is_false(ok)
      assert.truthy(err:find("no such file", 1, true), err)
      ok, err = pcall(lists.load, { file = file("1.2.3.4/99\n") })
      assert.is_false(ok)
      assert.truthy(err:find(":1: bad prefix length", 1, true), err)
      assert.has_error(function() lists.load{} end)
      assert.has_error(function() lists.load{ file = 5 } end)
      assert.has_error(function() lists.load{ flie = "x" } end)
    end)

    it("merges several files", function()
      local list = lists.load{ files = { file("192.0.2.0/24\n"), file("example.com\n") } }
      assert.truthy(list:match("192.0.2.1"))
      assert.truthy(list:match(nil, "a@example.com"))
    end)
  end)

  describe("allow and deny", function()
    local path = file("192.0.2.0/24\nexample.com\nbad@example.org\n")

    it("deny refuses a listed client, sender or recipient with 554 5.7.1", function()
      local deny = lists.deny{ file = path }
      local v = deny(f.session{ remote_ip = "192.0.2.5" })
      assert.same({ kind = "reject", code = 554, ecode = "5.7.1", text = "Access denied" }, v)
      assert.truthy(deny(f.session{ remote_ip = "198.51.100.1", sender = "x@example.com" }))
      assert.truthy(deny(f.session{ remote_ip = "198.51.100.1", sender = "x@y.test" },
        "bad@example.org"))
      assert.is_nil(deny(f.session{ remote_ip = "198.51.100.1", sender = "x@y.test" },
        "good@example.org"))
      assert.is_nil(deny(f.session{ remote_ip = "198.51.100.1", sender = "" }))
    end)

    it("deny looks only at what check names, and takes its reply", function()
      local deny = lists.deny{ file = path, check = { "rcpt" }, code = 550, ecode = "5.7.2",
        text = "no" }
      assert.is_nil(deny(f.session{ remote_ip = "192.0.2.5", sender = "x@example.com" }))
      assert.same({ kind = "reject", code = 550, ecode = "5.7.2", text = "no" },
        deny(f.session{}, "bad@example.org"))
      assert.has_error(function() lists.deny{ file = path, check = { "helo" } } end)
      assert.has_error(function() lists.deny{ file = path, code = 450 } end)
    end)

    it("allow answers with the entry, a string that is not a verdict", function()
      local allow = lists.allow{ file = path }
      assert.equals("network 192.0.2.0/24", allow(f.session{ remote_ip = "192.0.2.5" }))
      local elsewhere = "203.0.113.1"
      assert.equals("domain example.com",
        allow(f.session{ remote_ip = elsewhere, sender = "a@example.com" }))
      assert.equals("address bad@example.org",
        allow(f.session{ remote_ip = elsewhere }, "bad@example.org"))
      assert.is_nil(allow(f.session{ remote_ip = "203.0.113.1" }))
    end)

    it("judges the address the ip option gives", function()
      local allow = lists.allow{ file = path, ip = function(s) return s.data.ip end }
      local s = f.session{ remote_ip = "127.0.0.1" }
      s.data.ip = "192.0.2.9"
      assert.truthy(allow(s))
    end)
  end)
end)
