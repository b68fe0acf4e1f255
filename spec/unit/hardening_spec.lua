-- hardening_spec.lua — the built server carries the hardening the Makefile
-- asks for (STYLE.md, "Harden the build"): a stack smash must abort, not
-- return into attacker-chosen code.  Read from the ELF file with readelf.

local H = require "spec.helpers"

local bin = H.root .. "/build/luasmtpd"

local function readelf(args)
  local out, rc = H.sh("readelf -W " .. args .. " " .. H.q(bin))
  assert(rc == 0, "readelf failed: " .. out)
  return out
end

describe("the luasmtpd binary #hardening", function()
  it("is a position-independent executable (PIE)", function()
    assert.matches("Type:%s+DYN", readelf("-h"))
  end)

  it("has full RELRO: a GNU_RELRO segment and BIND_NOW", function()
    assert.matches("GNU_RELRO", readelf("-l"))
    assert.matches("BIND_NOW", readelf("-d"))
  end)

  it("has a non-executable stack", function()
    local stack = readelf("-l"):match("GNU_STACK[^\n]*")
    assert.truthy(stack, "no GNU_STACK header")
    assert.falsy(stack:match("RWE"), stack)
  end)

  it("uses the stack protector (__stack_chk_fail)", function()
    assert.matches("__stack_chk_fail", readelf("--dyn-syms"))
  end)

  it("is built with _FORTIFY_SOURCE (fortified libc calls such as __snprintf_chk)",
    function()
      assert.matches("__[%w_]+_chk", readelf("--dyn-syms"):gsub("__stack_chk_fail", ""))
    end)
end)
