-- metrics_spec.lua — the C unit driver spec/c/test_metrics.c: counters,
-- gauges and histograms of src/metrics/metrics.c, the text exposition line
-- by line, out-of-range ids and labels, label lookups, shards summed
-- across fork(2) and updates from threads, one `it` per case.  Built by
-- `make build/test/test_metrics` under ASan and UBSan.  The endpoint and
-- the counts of a real server are checked in spec/e2e/55-metrics_spec.lua.
local cdriver = require "spec.support.cdriver"

cdriver.describe(describe, it, "C unit driver test_metrics", "test_metrics",
  function() return "" end)
