-- rewrite_spec.lua — luasmtpd.rewrite: PCRE2 recipient rewrite rules.
--
-- No network.  Rules files are temp files from os.tmpname(), removed after
-- each test.

local rewrite = require "luasmtpd.rewrite"

local SPEC = debug.getinfo(1, "S").short_src

local tmpfiles = {}

-- Writes content to a fresh temp file; returns its path.
local function write_tmp(content, path)
  path = path or os.tmpname()
  if not tmpfiles[path] then
    tmpfiles[path] = true
  end
  local f = assert(io.open(path, "wb"))
  assert(f:write(content))
  assert(f:close())
  return path
end

-- Runs f and returns its error message (fails if f did not raise).
local function raised(f)
  local ok, err = pcall(f)
  assert(not ok, "expected an error")
  return err
end

-- Returns all values of apply, with their count.
local function apply(rules, address)
  return select("#", rules:apply(address)), rules:apply(address)
end

after_each(function()
  for path in pairs(tmpfiles) do
    os.remove(path)
  end
  tmpfiles = {}
end)

describe("rewrite captures", function()
  it("substitutes $1 and $2 in any order", function()
    local r = rewrite.new{ { "^(.+)@(.+)$", "$2!$1" } }
    local out, i = r:apply("alice@example.org")
    assert.equal("example.org!alice", out)
    assert.equal(1, i)
  end)

  it("substitutes $0 with the whole match", function()
    local r = rewrite.new{ { "example", "[$0]" } }
    assert.equal("alice@[example].org", (r:apply("alice@example.org")))
  end)

  it("turns $$ into a literal dollar", function()
    local r = rewrite.new{ { "^(.+)@", "$1$$$$x$$1@" } }
    assert.equal("alice$$x$1@example.org", (r:apply("alice@example.org")))
  end)

  it("reads $10 as $1 followed by 0", function()
    local r = rewrite.new{ { "^(a)", "$10" } }
    assert.equal("a0b", (r:apply("ab")))
  end)

  it("substitutes an empty string for a group that did not match", function()
    local r = rewrite.new{ { "^(x)?(a)", "[$1|$2]" } }
    assert.equal("[|a]b", (r:apply("ab")))
  end)

  it("replaces with the empty string", function()
    local r = rewrite.new{ { "\\+[^@]*", "" } }
    assert.equal("alice@example.org", (r:apply("alice+news@example.org")))
  end)
end)

describe("rewrite literal %", function()
  it("keeps % literal (the percent hack)", function()
    local r = rewrite.new{ { "^(.+)@(.+)$", "$1%$2@relay.test" } }
    assert.equal("alice%example.org@relay.test",
      (r:apply("alice@example.org")))
  end)

  it("keeps %1, %0 and %% literal", function()
    local r = rewrite.new{ { "^(a)$", "%1%0%%$1%" } }
    assert.equal("%1%0%%a%", (r:apply("a")))
  end)
end)

describe("rewrite first-match mode", function()
  it("is the default mode", function()
    local r = rewrite.new{ { "a", "b" } }
    assert.equal("first", r.mode)
    assert.equal(1, r.count)
    assert.is_nil(r.path)
  end)

  it("stops at the first rule that matches; a later rule does not run",
    function()
    local r = rewrite.new{
      { "^alice@", "bob@" },
      { "^bob@", "carol@" },
      { "@example\\.org$", "@never.test" },
      mode = "first",
    }
    local out, i = r:apply("alice@example.org")
    assert.equal("bob@example.org", out)
    assert.equal(1, i)
  end)

  it("returns the index of the first rule that matched", function()
    local r = rewrite.new{
      { "^alice@", "bob@" },
      { "^bob@", "carol@" },
      { "^bob@", "dave@" },
    }
    local out, i = r:apply("bob@example.org")
    assert.equal("carol@example.org", out)
    assert.equal(2, i)
  end)

  it("returns a single nil when no rule matches", function()
    local r = rewrite.new{ { "^alice@", "bob@" }, { "^bob@", "carol@" } }
    local n, out = apply(r, "dave@example.org")
    assert.equal(1, n)
    assert.is_nil(out)
  end)

  it("returns nil for an empty rule set", function()
    local n, out = apply(rewrite.new{}, "alice@example.org")
    assert.equal(1, n)
    assert.is_nil(out)
  end)

  it("replaces every match unless the rule has flag 1", function()
    local all = rewrite.new{ { "o", "0" } }
    local once = rewrite.new{ { "o", "0", "1" } }
    assert.equal("b0b@f00.test", (all:apply("bob@foo.test")))
    assert.equal("b0b@foo.test", (once:apply("bob@foo.test")))
  end)

  it("matches unanchored regexes anywhere, anchored ones only whole",
    function()
    local loose = rewrite.new{ { "example\\.org", "example.net" } }
    local anchored = rewrite.new{
      { "^(.+)@example\\.org$", "$1@example.net" },
    }
    assert.equal("a@example.net.evil.test",
      (loose:apply("a@example.org.evil.test")))
    assert.is_nil(anchored:apply("a@example.org.evil.test"))
    assert.equal("a@example.net", (anchored:apply("a@example.org")))
  end)

  it("returns an empty result as it is", function()
    local r = rewrite.new{ { "^.*$", "" } }
    local out, i = r:apply("alice@example.org")
    assert.equal("", out)
    assert.equal(1, i)
  end)
end)

describe("rewrite chained mode", function()
  it("turns x@example.org into example-org", function()
    local r = rewrite.new{
      { "(.*)@(.*)", "$2" },
      { "[^a-z0-9]+", "-" },
      mode = "chained",
    }
    local out, n = r:apply("x@example.org")
    assert.equal("example-org", out)
    assert.equal(2, n)
    assert.equal("chained", r.mode)
  end)

  it("feeds each rule the previous output and counts only matches",
    function()
    local r = rewrite.new{
      { "^alice@", "bob@" },
      { "^nobody@", "x@" },
      { "^bob@", "carol@" },
      mode = "chained",
    }
    local out, n = r:apply("alice@example.org")
    assert.equal("carol@example.org", out)
    assert.equal(2, n)
  end)

  it("replaces globally, or once with flag 1", function()
    local r = rewrite.new{
      { "\\.", "-" },
      { "-", "_", "1" },
      mode = "chained",
    }
    assert.equal("a@b_c-d", (r:apply("a@b.c.d")))
  end)

  it("returns a single nil when no rule matches", function()
    local r = rewrite.new{ { "^z", "y" }, { "q$", "r" }, mode = "chained" }
    local n, out = apply(r, "alice@example.org")
    assert.equal(1, n)
    assert.is_nil(out)
  end)
end)

describe("rewrite flag i", function()
  it("matches case-insensitively only with i", function()
    local ci = rewrite.new{ { "^POSTMASTER@(.+)$", "admin@$1", "i" } }
    local cs = rewrite.new{ { "^POSTMASTER@(.+)$", "admin@$1" } }
    assert.equal("admin@Example.org", (ci:apply("PostMaster@Example.org")))
    assert.is_nil(cs:apply("PostMaster@Example.org"))
  end)

  it("folds non-ASCII case (UTF-8 mode)", function()
    local r = rewrite.new{ { "^jürgen@", "j@", "i" } }
    assert.equal("j@example.org", (r:apply("JÜRGEN@example.org")))
  end)

  it("accepts i and 1 together", function()
    local r = rewrite.new{ { "O", "0", "1i" } }
    assert.equal("b0b@foo", (r:apply("bob@foo")))
  end)
end)

describe("rewrite.new errors", function()
  it("names the config file and line of the new call for an invalid regex",
    function()
    local line
    local err = raised(function()
      line = debug.getinfo(1, "l").currentline + 1
      local r = rewrite.new{ { "^a$", "b" }, { "(ab", "$1" } }
      return r
    end)
    assert.equal(SPEC .. ":" .. line .. ": rewrite rule 2: invalid regex "
      .. "'(ab': missing closing parenthesis (pattern offset: 4)", err)
    assert.truthy(err:find("rewrite_spec.lua:" .. line .. ":", 1, true))
  end)

  it("rejects a $ reference to a group the regex does not have", function()
    local err = raised(function()
      local r = rewrite.new{ { "^(a)@(b)$", "$3" } }
      return r
    end)
    assert.truthy(err:find("rewrite rule 1: invalid replacement '$3': $3, "
      .. "but the regex has 2 capture groups", 1, true))
  end)

  it("rejects a trailing $", function()
    local err = raised(function()
      local r = rewrite.new{ { "a", "b$" } }
      return r
    end)
    assert.truthy(err:find("invalid replacement 'b$': '$' must be followed "
      .. "by a digit 0-9 or '$'", 1, true))
  end)

  it("rejects ${name}", function()
    local err = raised(function()
      local r = rewrite.new{ { "(?<u>a)", "${u}" } }
      return r
    end)
    assert.truthy(err:find("invalid replacement '${u}'", 1, true))
  end)

  it("rejects an unknown flag", function()
    local err = raised(function()
      local r = rewrite.new{ { "a", "b", "ig" } }
      return r
    end)
    assert.truthy(err:find("rewrite rule 1: unknown flag 'g' in 'ig' "
      .. "(flags are i and 1)", 1, true))
  end)

  it("rejects an unknown mode", function()
    local err = raised(function()
      local r = rewrite.new{ { "a", "b" }, mode = "chain" }
      return r
    end)
    assert.truthy(err:find("mode must be 'first' or 'chained', got 'chain'",
      1, true))
  end)

  it("rejects an unknown option (a typo of mode)", function()
    local err = raised(function()
      local r = rewrite.new{ { "a", "b" }, Mode = "chained" }
      return r
    end)
    assert.truthy(err:find("unknown option 'Mode'", 1, true))
  end)

  it("rejects an unknown key in a rule", function()
    local err = raised(function()
      local r = rewrite.new{ { "a", "b", flags = "i" } }
      return r
    end)
    assert.truthy(err:find("rewrite rule 1: unexpected key 'flags'", 1, true))
  end)

  it("rejects a rule that is not a table or has no replacement", function()
    local e1 = raised(function()
      local r = rewrite.new{ "^a$" }
      return r
    end)
    local e2 = raised(function()
      local r = rewrite.new{ { "^a$" } }
      return r
    end)
    assert.truthy(e1:find("rewrite rule 1: expected { REGEX, REPLACEMENT "
      .. "[, FLAGS] }, got string", 1, true))
    assert.truthy(e2:find("rewrite rule 1: REGEX, REPLACEMENT and FLAGS "
      .. "must be strings", 1, true))
  end)

  it("rejects a list with holes and a non-table argument", function()
    local e1 = raised(function()
      local r = rewrite.new{ [1] = { "a", "b" }, [3] = { "c", "d" } }
      return r
    end)
    local e2 = raised(function()
      local r = rewrite.new("a")
      return r
    end)
    assert.truthy(e1:find("the rules must be a list without holes", 1, true))
    assert.truthy(e2:find("rewrite.new expects a table of rules, got string",
      1, true))
  end)

  it("rejects a replacement that is not valid UTF-8", function()
    local err = raised(function()
      local r = rewrite.new{ { "a", "b\255" } }
      return r
    end)
    assert.truthy(err:find("invalid replacement 'b\255': not valid UTF-8",
      1, true))
  end)
end)

describe("rewrite.apply errors", function()
  it("raises for a non-string address", function()
    local r = rewrite.new{ { "a", "b" } }
    local err = raised(function()
      local out = r:apply(nil)
      return out
    end)
    assert.truthy(err:find("rewrite: apply expects a string, got nil", 1,
      true))
  end)

  it("raises when called with . instead of :", function()
    local r = rewrite.new{ { "a", "b" } }
    local err = raised(function()
      local out = r.apply("a")
      return out
    end)
    assert.truthy(err:find("rewrite: use rules:apply(...)", 1, true))
  end)

  it("raises for an address that is not valid UTF-8", function()
    local r = rewrite.new{ { "a", "b" } }
    local err = raised(function()
      local out = r:apply("a\255@example.org")
      return out
    end)
    assert.truthy(err:find("rewrite: the address is not valid UTF-8", 1, true))
  end)
end)

describe("rewrite.load", function()
  it("skips comments and blank lines and keeps the order", function()
    local path = write_tmp(table.concat({
      "# recipient rewrites",
      "",
      "   # indented comment",
      "^alice@(.+)$\tbob@$1",
      "   \t  ",
      "^bob@(.+)$   carol@$1",
      "",
    }, "\n"))
    local r = assert(rewrite.load(path))
    assert.equal(2, r.count)
    assert.equal("first", r.mode)
    assert.equal(path, r.path)
    local out, i = r:apply("bob@example.org")
    assert.equal("carol@example.org", out)
    assert.equal(2, i)
    assert.equal("bob@example.org", (r:apply("alice@example.org")))
  end)

  it("reads flags, quoted fields and CRLF line ends", function()
    local path = write_tmp(table.concat({
      "^POSTMASTER@ admin@ i\r",
      "\"\\+[^@]*\" \"\"\r",
      "\"^#(.*)$\" \"x $1\"\r",
    }, "\n"))
    local r = assert(rewrite.load(path))
    assert.equal(3, r.count)
    assert.equal("admin@example.org", (r:apply("Postmaster@example.org")))
    local out, i = r:apply("alice+tag@example.org")
    assert.equal("alice@example.org", out)
    assert.equal(2, i)
    assert.equal("x y@z", (r:apply("#y@z")))
  end)

  it("takes the mode from a mode line", function()
    local path = write_tmp("# chained\nmode chained\n(.*)@(.*) $2\n"
      .. "[^a-z0-9]+ -\n")
    local r = assert(rewrite.load(path))
    assert.equal("chained", r.mode)
    local out, n = r:apply("x@example.org")
    assert.equal("example-org", out)
    assert.equal(2, n)
  end)

  it("takes the mode from opts when the file has no mode line", function()
    local path = write_tmp("(.*)@(.*) $2\n[^a-z0-9]+ -\n")
    local r = assert(rewrite.load(path, { mode = "chained" }))
    assert.equal("chained", r.mode)
    assert.equal("example-org", (r:apply("x@example.org")))
  end)

  it("lets the file's mode line win over opts.mode", function()
    local path = write_tmp("mode first\n(.*)@(.*) $2\n[^a-z0-9]+ -\n")
    local r = assert(rewrite.load(path, { mode = "chained" }))
    assert.equal("first", r.mode)
    local out, i = r:apply("x@example.org")
    assert.equal("example.org", out)
    assert.equal(1, i)
  end)

  it("treats a quoted \"mode\" as a regex", function()
    local path = write_tmp('"mode" chained\n')
    local r = assert(rewrite.load(path))
    assert.equal("first", r.mode)
    assert.equal("chained@x", (r:apply("mode@x")))
  end)

  it("returns nil, path:LINE: invalid regex for a bad regex", function()
    local path = write_tmp("# ok\n^a$ b\n\n(ab $1\n")
    local r, err = rewrite.load(path)
    assert.is_nil(r)
    assert.equal(path .. ":4: invalid regex '(ab': missing closing "
      .. "parenthesis (pattern offset: 4)", err)
  end)

  it("returns nil, path:LINE: for a bad replacement", function()
    local path = write_tmp("^(a)$ $2\n")
    local r, err = rewrite.load(path)
    assert.is_nil(r)
    assert.equal(path .. ":1: invalid replacement '$2': $2, but the regex "
      .. "has 1 capture group", err)
  end)

  it("returns nil, path:LINE: for a wrong number of fields", function()
    local p1 = write_tmp("^a$\n")
    local p2 = write_tmp("^a$ b i extra\n")
    local _, e1 = rewrite.load(p1)
    local _, e2 = rewrite.load(p2)
    assert.equal(p1 .. ":1: expected REGEX REPLACEMENT [FLAGS], got 1 field",
      e1)
    assert.equal(p2 .. ":1: expected REGEX REPLACEMENT [FLAGS], got 4 "
      .. "fields", e2)
  end)

  it("returns nil, path:LINE: for an unclosed or misplaced quote", function()
    local p1 = write_tmp('^a$ "b\n')
    local p2 = write_tmp('"^a"x b\n')
    local _, e1 = rewrite.load(p1)
    local _, e2 = rewrite.load(p2)
    assert.equal(p1 .. ":1: unclosed double quote", e1)
    assert.equal(p2 .. ":1: a closing double quote must end the field", e2)
  end)

  it("returns nil, path:LINE: for a bad mode line", function()
    local p1 = write_tmp("mode chain\n")
    local p2 = write_tmp("^a$ b\nmode chained\n")
    local p3 = write_tmp("mode first\nmode chained\n")
    local _, e1 = rewrite.load(p1)
    local _, e2 = rewrite.load(p2)
    local _, e3 = rewrite.load(p3)
    assert.equal(p1 .. ":1: expected 'mode first' or 'mode chained'", e1)
    assert.equal(p2 .. ":2: mode must come before the first rule", e2)
    assert.equal(p3 .. ":2: mode given twice (first at line 1)", e3)
  end)

  it("returns nil, err for a missing file", function()
    local path = os.tmpname()
    os.remove(path)
    local r, err = rewrite.load(path)
    assert.is_nil(r)
    assert.equal(path .. ": No such file or directory", err)
  end)

  it("raises for bad opts", function()
    local path = write_tmp("^a$ b\n")
    local e1 = raised(function()
      local r = rewrite.load(path, { mode = "all" })
      return r
    end)
    local e2 = raised(function()
      local r = rewrite.load(path, { mdoe = "chained" })
      return r
    end)
    assert.truthy(e1:find("opts.mode must be 'first' or 'chained', got 'all'",
      1, true))
    assert.truthy(e2:find("rewrite.load: unknown option 'mdoe'", 1, true))
  end)
end)

describe("rewrite reload", function()
  it("re-reads the changed file", function()
    local path = write_tmp("^alice@ bob@\n")
    local r = assert(rewrite.load(path))
    assert.equal("bob@example.org", (r:apply("alice@example.org")))
    write_tmp("^alice@ carol@\n^dave@ erin@\n", path)
    assert.is_true(r:reload())
    assert.equal(2, r.count)
    assert.equal("carol@example.org", (r:apply("alice@example.org")))
    local out, i = r:apply("dave@example.org")
    assert.equal("erin@example.org", out)
    assert.equal(2, i)
  end)

  it("keeps the old rules when the new file is broken", function()
    local path = write_tmp("^alice@ bob@\n")
    local r = assert(rewrite.load(path))
    write_tmp("^alice@ carol@\n[z bad\n", path)
    local ok, err = r:reload()
    assert.is_nil(ok)
    assert.equal(path .. ":2: invalid regex '[z': missing terminating ] for "
      .. "character class (pattern offset: 3)", err)
    assert.equal(1, r.count)
    assert.equal("bob@example.org", (r:apply("alice@example.org")))
  end)

  it("keeps the old rules when the file is gone", function()
    local path = write_tmp("^alice@ bob@\n")
    local r = assert(rewrite.load(path))
    os.remove(path)
    local ok, err = r:reload()
    assert.is_nil(ok)
    assert.equal(path .. ": No such file or directory", err)
    assert.equal("bob@example.org", (r:apply("alice@example.org")))
  end)

  it("picks up a changed mode line", function()
    local path = write_tmp("(.*)@(.*) $2\n[^a-z0-9]+ -\n")
    local r = assert(rewrite.load(path))
    assert.equal("example.org", (r:apply("x@example.org")))
    write_tmp("mode chained\n(.*)@(.*) $2\n[^a-z0-9]+ -\n", path)
    assert.is_true(r:reload())
    assert.equal("chained", r.mode)
    assert.equal("example-org", (r:apply("x@example.org")))
  end)

  it("raises for inline rules", function()
    local r = rewrite.new{ { "a", "b" } }
    local err = raised(function()
      local ok = r:reload()
      return ok
    end)
    assert.truthy(err:find("rewrite: reload needs rules made by rewrite.load",
      1, true))
  end)
end)

describe("rewrite bounds", function()
  -- A file of exactly `size` bytes: one rule, then a comment as padding.
  local function file_of_size(size)
    local rule = "^a$ b\n"
    local pad = size - #rule - 2
    return rule .. "#" .. string.rep("x", pad) .. "\n"
  end

  -- A rules file with n rules ^a<i>$ -> b<i>.
  local function file_of_rules(n)
    local lines = {}
    for i = 1, n do
      lines[i] = "^a" .. i .. "$ b" .. i
    end
    return table.concat(lines, "\n") .. "\n"
  end

  it("loads a file of exactly MAX_FILE_SIZE bytes", function()
    assert.equal(1024 * 1024, rewrite.MAX_FILE_SIZE)
    local content = file_of_size(rewrite.MAX_FILE_SIZE)
    assert.equal(rewrite.MAX_FILE_SIZE, #content)
    local r = assert(rewrite.load(write_tmp(content)))
    assert.equal("b", (r:apply("a")))
  end)

  it("rejects a file of MAX_FILE_SIZE + 1 bytes", function()
    local path = write_tmp(file_of_size(rewrite.MAX_FILE_SIZE + 1))
    local r, err = rewrite.load(path)
    assert.is_nil(r)
    assert.equal(path .. ": rules file larger than 1048576 bytes", err)
  end)

  it("loads MAX_RULES rules from a file", function()
    assert.equal(10000, rewrite.MAX_RULES)
    local r = assert(rewrite.load(write_tmp(file_of_rules(rewrite.MAX_RULES))))
    assert.equal(rewrite.MAX_RULES, r.count)
    local out, i = r:apply("a10000")
    assert.equal("b10000", out)
    assert.equal(10000, i)
  end)

  it("rejects MAX_RULES + 1 rules in a file, naming the line", function()
    local path = write_tmp("# many\n" .. file_of_rules(rewrite.MAX_RULES + 1))
    local r, err = rewrite.load(path)
    assert.is_nil(r)
    assert.equal(path .. ":10002: more than 10000 rules", err)
  end)

  it("accepts MAX_RULES inline rules and rejects one more", function()
    local list = {}
    for i = 1, rewrite.MAX_RULES do
      list[i] = { "^a" .. i .. "$", "b" .. i }
    end
    local r = rewrite.new(list)
    assert.equal(rewrite.MAX_RULES, r.count)
    list[#list + 1] = { "^z$", "y" }
    local err = raised(function()
      local r2 = rewrite.new(list)
      return r2
    end)
    assert.truthy(err:find("rewrite.new: more than 10000 rules", 1, true))
  end)

  -- 20 a's: about a million steps, under PCRE2's own default of 10 million
  -- but over MATCH_LIMIT, so this fails only because of our bound.
  it("stops a backtracking regex at the match limit and names the rule",
    function()
    assert.equal(100000, rewrite.MATCH_LIMIT)
    local path = write_tmp("^ok$ fine\n^(a+)+$ x\n")
    local r = assert(rewrite.load(path))
    local err = raised(function()
      local out = r:apply(string.rep("a", 20) .. "b")
      return out
    end)
    assert.truthy(err:find("rewrite: " .. path .. ":2: match limit exceeded",
      1, true))
    assert.truthy(err:find("PCRE2_ERROR_MATCHLIMIT", 1, true))
  end)

  it("names the new call and rule for an inline rule at the match limit",
    function()
    local line = debug.getinfo(1, "l").currentline + 1
    local r = rewrite.new{ { "^(a|aa)+$", "x" }, mode = "chained" }
    local err = raised(function()
      local out = r:apply(string.rep("a", 200) .. "b")
      return out
    end)
    assert.truthy(err:find("rewrite: " .. SPEC .. ":" .. line .. ": rule 1: "
      .. "match limit exceeded", 1, true))
  end)

  it("rewrites a long ordinary address within the limit", function()
    local r = rewrite.new{ { "^(.+)@(.+)\\.example$", "$2+$1@example.org" } }
    local localpart = string.rep("a", 500)
    assert.equal("sub+" .. localpart .. "@example.org",
      (r:apply(localpart .. "@sub.example")))
  end)
end)
