-- Clients nobody here wrote: swaks and Python's smtplib.
local H = require "spec.helpers"

local PYTHON = "/usr/bin/python3"	-- Debian's, not a pyenv shim (PEERS.md)

describe("third-party clients #e2e", function()
  local srv, maildir

  lazy_setup(function()
    local dir = H.tmpdir()
    maildir = dir .. "/mail"
    srv = H.start_server{ dir = dir, config_file = H.root .. "/examples/default.lua",
      defines = { maildir = maildir, domains = "example.test,localhost" } }
  end)
  lazy_teardown(function() srv:stop() end)

  it("swaks delivers a message into the Maildir", function()
    local out, rc = H.sh(("swaks --server 127.0.0.1:%d --to alice@example.test " ..
      "--from bob@remote.test --header 'Subject: from swaks' --body 'swaks body'"):format(srv.port))
    assert.equals(0, rc, out)
    assert.truthy(out:find("<%-  250 2%.0%.0 Ok: delivered as"))
    local files = H.files(maildir .. "/example.test/alice/new")
    assert.equals(1, #files)
    local msg = H.read_file(files[1])
    assert.truthy(msg:find("Subject: from swaks\n", 1, true))
    assert.truthy(msg:find("\nswaks body\n", 1, true))
  end)

  it("swaks with --pipeline gets every reply right", function()
    local out, rc = H.sh(("swaks --pipeline --server 127.0.0.1:%d --to carol@example.test " ..
      "--from bob@remote.test"):format(srv.port))
    assert.equals(0, rc, out)
    assert.truthy(out:find("PIPELINING"))
    assert.equals(1, #H.files(maildir .. "/example.test/carol/new"))
  end)

  it("swaks sees a relay attempt refused at RCPT (exit 24)", function()
    local out, rc = H.sh(("swaks --server 127.0.0.1:%d --to x@elsewhere.test " ..
      "--from bob@remote.test"):format(srv.port))
    assert.equals(24, rc, out)
    assert.truthy(out:find("554 5%.7%.1"))
  end)

  it("Python smtplib sends to several recipients and gets refusals per recipient", function()
    local script = srv.dir .. "/send.py"
    H.write_file(script, ([[
import smtplib, sys
from email.message import EmailMessage
m = EmailMessage()
m["From"] = "py@remote.test"
m["To"] = "dave@example.test"
m["Subject"] = "from smtplib"
m.set_content("hello from python\n")
with smtplib.SMTP("127.0.0.1", %d, timeout=10) as s:
    s.ehlo("python.test")
    assert s.has_extn("pipelining") and s.has_extn("size")
    refused = s.send_message(m, to_addrs=["dave@example.test", "erin@example.test",
                                           "nobody@elsewhere.test"])
    print("refused", sorted(refused.items()))
    code, _ = s.noop()
    print("noop", code)
]]):format(srv.port))
    local out, rc = H.sh(PYTHON .. " " .. script)
    assert.equals(0, rc, out)
    assert.truthy(out:find("refused [('nobody@elsewhere.test', (554,", 1, true), out)
    assert.truthy(out:find("noop 250", 1, true))
    for _, who in ipairs{ "dave", "erin" } do
      local files = H.files(maildir .. "/example.test/" .. who .. "/new")
      assert.equals(1, #files)
      assert.truthy(H.read_file(files[1]):find("hello from python", 1, true))
    end
  end)

  it("Python smtplib gets SMTPDataError for an oversized message", function()
    local small = H.start_server{ config = H.basic_config ..
      "limits = { max_message_size = 1024 }\n" }
    local script = small.dir .. "/big.py"
    H.write_file(script, ([[
import smtplib
with smtplib.SMTP("127.0.0.1", %d, timeout=10) as s:
    try:
        s.sendmail("a@remote.test", ["b@example.test"], "Subject: big\r\n\r\n" + "x" * 5000)
        print("accepted")
    except smtplib.SMTPSenderRefused as e:
        print("refused", e.smtp_code)
]]):format(small.port))
    local out, rc = H.sh(PYTHON .. " " .. script)
    assert.equals(0, rc, out)
    -- smtplib declares SIZE=, so the refusal comes at MAIL (RFC 1870).
    assert.truthy(out:find("refused 552", 1, true), out)
    small:stop()
  end)
end)
