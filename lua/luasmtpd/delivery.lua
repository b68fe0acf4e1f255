-- luasmtpd.delivery — the SMTP reply for delivery results.
--
--   local delivery = require "luasmtpd.delivery"
--   local res = deliver.lmtp{ to = "unix:/run/dovecot/lmtp" }
--   return delivery.verdict(res)
--
-- verdict(res1 [, res2 ...]) looks at every recipient outcome of one or
-- more results tables (deliver.lmtp, deliver.smtp, deliver.pipe) and maps
-- them to one reply, the mapping all the examples use:
--
--   every recipient delivered          -> accept (250)
--   every recipient refused for good   -> reject 550, with the first
--                                         refusal's enhanced code and text
--   every recipient failed temporarily -> tempfail 451, with the first
--                                         failure's enhanced code and text
--   a mix of delivered and failed      -> tempfail 451 4.3.0
--
-- One SMTP reply cannot say "delivered to some, not to others".  Until the
-- queue delivers the failed recipients itself, a mix is answered 451 so
-- that nothing is lost; the client retries the whole message (the
-- recipients already delivered may see it twice).  The outcomes are
-- recorded per recipient on the transaction (msg.rcpts[i].status) so a
-- queue can take exactly the failed ones.

local smtp = require "luasmtpd"

local M = {}

-- A reply code and enhanced code we can safely repeat to our client.
local function clean(code, ecode, class, default_code, default_ecode)
  if type(code) ~= "number" or math.floor(code / 100) ~= class then
    return default_code, default_ecode
  end
  if type(ecode) ~= "string" or not ecode:match("^" .. class .. "%.%d%d?%d?%.%d%d?%d?$") then
    ecode = default_ecode
  end
  return code, ecode
end

-- The next hop's text, bounded, as "Error: ..." (not twice).
local function text_of(o)
  local t = tostring(o.text or ""):gsub("[%c]", " ")
  if #t > 300 then t = t:sub(1, 300) end
  if t:sub(1, 6) ~= "Error:" then t = "Error: " .. t end
  return t
end

function M.verdict(...)
  local total, delivered, first_reject, first_temp = 0, 0, nil, nil
  for i = 1, select("#", ...) do
    local res = select(i, ...)
    for _, o in ipairs(res or {}) do
      total = total + 1
      if o.status == "delivered" then
        delivered = delivered + 1
      elseif o.status == "reject" then
        first_reject = first_reject or o
      else
        first_temp = first_temp or o
      end
    end
  end
  if total > 0 and delivered == total then
    return smtp.accept()
  end
  if total > 0 and first_reject and not first_temp and delivered == 0 then
    local _, ecode = clean(first_reject.code, first_reject.ecode, 5, 550, "5.0.0")
    return smtp.reject(550, ecode, text_of(first_reject))
  end
  if first_temp and delivered == 0 and not first_reject then
    local _, ecode = clean(first_temp.code, first_temp.ecode, 4, 451, "4.0.0")
    return smtp.tempfail(451, ecode, text_of(first_temp))
  end
  return smtp.tempfail(451, "4.3.0", ("Error: delivered to %d of %d recipients; " ..
    "try again later"):format(delivered, total))
end

return M
