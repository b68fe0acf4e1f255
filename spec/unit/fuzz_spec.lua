-- Every libFuzzer target runs briefly from its seed corpus (make fuzz runs
-- them longer).  A crash, a sanitizer report or a failed invariant fails.
local H = require "spec.helpers"

local SECONDS = tonumber(os.getenv("FUZZ_BRIEF_SECONDS") or "3")

local targets = {}
for f in H.sh("ls " .. H.q(H.root .. "/spec/fuzz")):gmatch("(fuzz_[%w_]+)%.c") do
  targets[#targets + 1] = f
end

describe("fuzz targets #fuzz", function()
  it("exist", function()
    assert.is_true(#targets >= 3, "expected the fuzz targets in spec/fuzz")
  end)

  for _, t in ipairs(targets) do
    it(t .. " survives " .. SECONDS .. " s of fuzzing from its corpus", function()
      local bin = H.root .. "/build/fuzz/" .. t
      assert.truthy(H.read_file(bin), bin .. " is not built (make test builds it)")
      local work = H.tmpdir()
      H.sh(("cp %s/spec/fuzz/corpus/%s/* %s/"):format(H.q(H.root), t, H.q(work)))
      local out, rc = H.sh(("%s -max_total_time=%d -timeout=10 -rss_limit_mb=2048 " ..
        "-artifact_prefix=%s/ %s"):format(H.q(bin), SECONDS, H.q(work), H.q(work)))
      assert.equals(0, rc, out:sub(-3000))
      assert.truthy(out:find("Done %d+ runs"), out:sub(-2000))
      H.sh("rm -rf " .. H.q(work))
    end)
  end
end)
