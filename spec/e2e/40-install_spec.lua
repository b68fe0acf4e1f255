-- 40-install_spec.lua — `make install` and `make uninstall` (Makefile,
-- README "Install"), and what gets installed: the binary runs from any
-- directory and finds its Lua modules where they were installed, the
-- systemd unit passes systemd-analyze, the server tells systemd it is
-- ready (Type=notify, src/util/sdnotify.c).
--
-- Two installs, both into fresh directories under /tmp, never into the
-- system:
--   staged  DESTDIR=<tmp>/stage PREFIX=/opt/staged-<unique>: what a
--           packager does.  The exact file list, modes, substituted paths;
--           the compiled-in Lua directory is PREFIX's (the binary, run from
--           the stage, looks there and not in the build tree);
--           LUASMTPD_LUA_DIR overrides it; uninstall leaves no file.
--   live    PREFIX=<tmp>/prefix, no DESTDIR: the binary is run from / with
--           LUASMTPD_LUA_DIR unset: -t on every installed example, a real
--           start on 127.0.0.1 port 0 with a whole SMTP session into a
--           Maildir and READY=1 on a NOTIFY_SOCKET, systemd-analyze verify
--           on the unit (its ExecStart exists, man finds its
--           Documentation= pages); uninstall leaves no file.
--
-- The install binary is built in build/install (make test builds it
-- first); an install to another PREFIX recompiles lua_vm.c only.

local H = require "spec.helpers"
local socket = require "socket"

local tmp = H.tmpdir()
-- Every path below (and what uninstall removes) is inside tmp.
assert(tmp:match("^/tmp/luasmtpd%-spec%.%w+$"), "unexpected temporary directory " .. tmp)
local STAGE = tmp .. "/stage"
local STAGED_PREFIX = "/opt/staged-" .. tmp:match("([^/.]+)$")
local LIVE = tmp .. "/prefix"

-- Run make in the tree without the environment of an outer make (its
-- MAKEFLAGS would carry the outer command line's variables).
local function make(args)
  return H.sh("cd " .. H.q(H.root) .. " && env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS " ..
    "timeout 600 make --no-print-directory " .. args)
end

local function tree_files(dir)
  local list = {}
  for _, f in ipairs(H.files(dir)) do list[#list + 1] = f:sub(#dir + 1) end
  return list
end

local function ls(dir)
  local out = H.sh("ls -1 " .. H.q(dir))
  local list = {}
  for l in out:gmatch("[^\n]+") do list[#list + 1] = l end
  table.sort(list)
  return list
end

local function mode(path)
  return (H.sh("stat -c %a " .. H.q(path)):gsub("%s+$", ""))
end

-- The files an install puts under prefix, relative to it, sorted.
local function expected_files()
  local list = {
    "/sbin/luasmtpd",
    "/share/man/man8/luasmtpd.8",
    "/share/man/man5/luasmtpd.conf.5",
    "/lib/systemd/system/luasmtpd.service",
  }
  for _, f in ipairs(tree_files(H.root .. "/lua/luasmtpd")) do
    list[#list + 1] = "/share/luasmtpd/lua/luasmtpd" .. f
  end
  for _, f in ipairs(ls(H.root .. "/examples")) do
    list[#list + 1] = "/share/luasmtpd/examples/" .. f
  end
  table.sort(list)
  return list
end

-- -D settings that let each installed example load from / with every path
-- it writes (self-signed certificates) under tmp.
local function example_defines(examples)
  local tls = tmp .. "/tls"
  return {
    ["default.lua"] = { tls_cert = tls .. "/default.crt", tls_key = tls .. "/default.key",
      spool = tmp .. "/spool", maildir = tmp .. "/mail" },
    ["submission.lua"] = { cert = tls .. "/sub.crt", key = tls .. "/sub.key",
      users = examples .. "/users.txt" },
    ["relay.lua"] = { tls_cert = tls .. "/relay.crt", tls_key = tls .. "/relay.key" },
    ["dovecot.lua"] = {},
    ["pipe.lua"] = {},
    ["policy.lua"] = {},
    ["mailauth.lua"] = { spool = tmp .. "/spool", maildir = tmp .. "/mail" },
  }
end

local function defines_args(d)
  local args = {}
  for k, v in pairs(d) do args[#args + 1] = "-D " .. H.q(k .. "=" .. v) end
  table.sort(args)
  return table.concat(args, " ")
end

describe("make install #install", function()
  local server_pid, notify

  teardown(function()
    if server_pid then H.stop_pid(server_pid) end
    if notify then notify:close() end
    -- uninstall in case an `it` failed half way, then drop the temp tree
    make("uninstall DESTDIR=" .. H.q(STAGE) .. " PREFIX=" .. H.q(STAGED_PREFIX))
    make("uninstall PREFIX=" .. H.q(LIVE))
    H.sh("rm -rf " .. H.q(tmp))
  end)

  describe("staged (DESTDIR, as a package is built)", function()
    local root = STAGE .. STAGED_PREFIX

    it("installs", function()
      local out, rc = make("install DESTDIR=" .. H.q(STAGE) .. " PREFIX=" .. H.q(STAGED_PREFIX))
      assert.equals(0, rc, out)
    end)

    it("puts exactly the binary, the modules, the examples, the man pages and the unit " ..
      "under DESTDIR/PREFIX, and nothing elsewhere", function()
      local want = {}
      for i, f in ipairs(expected_files()) do want[i] = STAGED_PREFIX .. f end
      assert.same(want, tree_files(STAGE))
    end)

    it("installs the tree's modules and examples unchanged, with the right modes", function()
      assert.equals("755", mode(root .. "/sbin/luasmtpd"))
      for _, f in ipairs(tree_files(H.root .. "/lua/luasmtpd")) do
        local dst = root .. "/share/luasmtpd/lua/luasmtpd" .. f
        assert.equals(H.read_file(H.root .. "/lua/luasmtpd" .. f), H.read_file(dst), dst)
        assert.equals("644", mode(dst), dst)
      end
      for _, f in ipairs(ls(H.root .. "/examples")) do
        local dst = root .. "/share/luasmtpd/examples/" .. f
        assert.equals(H.read_file(H.root .. "/examples/" .. f), H.read_file(dst), dst)
        assert.equals("644", mode(dst), dst)
      end
      for _, f in ipairs({ "/share/man/man8/luasmtpd.8", "/share/man/man5/luasmtpd.conf.5",
        "/lib/systemd/system/luasmtpd.service" }) do
        assert.equals("644", mode(root .. f), f)
      end
    end)

    it("writes the installed paths (PREFIX, not DESTDIR) into the unit and the man pages",
      function()
        local unit = H.read_file(root .. "/lib/systemd/system/luasmtpd.service")
        assert.truthy(unit:find("\nExecStart=" .. STAGED_PREFIX ..
          "/sbin/luasmtpd -c /etc/luasmtpd/luasmtpd.lua\n", 1, true), unit)
        assert.truthy(unit:find("\nExecReload=/bin/kill -HUP $MAINPID\n", 1, true))
        assert.truthy(unit:find("\nType=notify\n", 1, true))
        local man8 = H.read_file(root .. "/share/man/man8/luasmtpd.8")
        assert.truthy(man8:find(STAGED_PREFIX .. "/share/luasmtpd/lua", 1, true))
        for _, f in ipairs({ unit, man8, H.read_file(root .. "/share/man/man5/luasmtpd.conf.5") }) do
          assert.is_nil(f:match("@%u+@"), "a placeholder was not substituted: " ..
            tostring(f:match("@%u+@")))
          assert.is_nil(f:find(STAGE, 1, true), "DESTDIR leaked into an installed file")
        end
      end)

    it("has the PREFIX's Lua directory compiled in: run from the stage it looks there, " ..
      "not in the build tree", function()
      local out, rc = H.sh("cd / && env -u LUASMTPD_LUA_DIR " .. H.q(root .. "/sbin/luasmtpd") ..
        " -t -c " .. H.q(root .. "/share/luasmtpd/examples/pipe.lua"))
      assert.equals(1, rc, out)
      assert.truthy(out:find(STAGED_PREFIX .. "/share/luasmtpd/lua/luasmtpd/prelude.lua", 1,
        true), out)
    end)

    it("takes LUASMTPD_LUA_DIR over the compiled-in directory", function()
      local out, rc = H.sh("cd / && LUASMTPD_LUA_DIR=" .. H.q(root .. "/share/luasmtpd/lua") ..
        " " .. H.q(root .. "/sbin/luasmtpd") .. " -t -c " ..
        H.q(root .. "/share/luasmtpd/examples/pipe.lua"))
      assert.equals(0, rc, out)
      assert.matches("config ok", out)
    end)

    it("uninstalls every file it installed", function()
      local out, rc = make("uninstall DESTDIR=" .. H.q(STAGE) .. " PREFIX=" .. H.q(STAGED_PREFIX))
      assert.equals(0, rc, out)
      assert.same({}, tree_files(STAGE))
      local left = H.sh("find " .. H.q(STAGE) .. " -name '*luasmtpd*'")
      assert.equals("", left)
    end)
  end)

  describe("live (PREFIX only), run from /", function()
    local bin = LIVE .. "/sbin/luasmtpd"
    local examples = LIVE .. "/share/luasmtpd/examples"

    it("installs", function()
      local out, rc = make("install PREFIX=" .. H.q(LIVE))
      assert.equals(0, rc, out)
      assert.same(expected_files(), tree_files(LIVE))
    end)

    it("checks every installed example with -t from /, without LUASMTPD_LUA_DIR", function()
      local defines = example_defines(examples)
      local names = ls(examples)
      local checked = 0
      for _, f in ipairs(names) do
        if f:match("%.lua$") then
          assert(defines[f], "no -D set for the new example " .. f .. " in this spec")
          local out, rc = H.sh("cd / && env -u LUASMTPD_LUA_DIR " .. H.q(bin) .. " -t -c " ..
            H.q(examples .. "/" .. f) .. " " .. defines_args(defines[f]))
          assert.equals(0, rc, f .. ":\n" .. out)
          assert.matches("config ok", out)
          checked = checked + 1
        end
      end
      assert(checked >= 5, "only " .. checked .. " examples checked")
    end)

    it("loads the installed modules, not the tree's", function()
      local conf = tmp .. "/where.lua"
      H.write_file(conf, [[
local smtp = require "luasmtpd"
local util = require "luasmtpd.util"
local where = package.searchpath("luasmtpd.util", package.path)
assert(where == smtp.var("want"), "luasmtpd.util comes from " .. tostring(where))
listen = "127.0.0.1:0"
]])
      local out, rc = H.sh("cd / && env -u LUASMTPD_LUA_DIR " .. H.q(bin) .. " -t -c " ..
        H.q(conf) .. " -D " .. H.q("want=" .. LIVE .. "/share/luasmtpd/lua/luasmtpd/util.lua"))
      assert.equals(0, rc, out)
    end)

    it("serves a session from / with an installed example and notifies READY=1 once " ..
      "it listens", function()
      local sock_path = tmp .. "/notify"
      notify = assert(require("socket.unix").dgram())
      assert(notify:bind(sock_path))
      notify:settimeout(10)

      local d = example_defines(examples)["default.lua"]
      d.listen = "127.0.0.1:0"
      local log = tmp .. "/server.log"
      server_pid = H.spawn("env -C / -u LUASMTPD_LUA_DIR NOTIFY_SOCKET=" .. H.q(sock_path) ..
        " " .. H.q(bin) .. " -c " .. H.q(examples .. "/default.lua") .. " " .. defines_args(d),
        log)

      local state, err = notify:receive()
      local logged = H.read_file(log) or ""
      assert.equals("READY=1", state, "no READY=1 (" .. tostring(err) .. "); log:\n" .. logged)
      -- READY=1 comes after the listeners are open, never before.
      local port = tonumber(logged:match("net listening addr=127%.0%.0%.1:(%d+)"))
      assert(port, "READY=1 before the listener was open; log:\n" .. logged)
      assert.matches("main started", logged)

      local cwd = H.sh("readlink /proc/" .. server_pid .. "/cwd"):gsub("%s+$", "")
      assert.equals("/", cwd)

      local c = H.connect(port)
      c:expect(220)
      c:cmd("EHLO client.test", 250)
      c:cmd("MAIL FROM:<sender@remote.test>", 250)
      c:cmd("RCPT TO:<user@example.test>", 250)
      c:cmd("DATA", 354)
      c:send("Subject: installed\r\n\r\nfrom an installed luasmtpd\r\n.\r\n")
      c:expect(250)
      c:cmd("QUIT", 221)
      c:close()
      local files = H.files(tmp .. "/mail/example.test/user/new")
      assert.equals(1, #files, "Maildir: " .. table.concat(H.files(tmp .. "/mail"), " "))
      assert.matches("from an installed luasmtpd", H.read_file(files[1]))

      H.stop_pid(server_pid)
      assert.is_false(H.alive(server_pid))
      server_pid = nil
      H.wait_for(function() return (H.read_file(log) or ""):find("main stopped", 1, true) end,
        5, "main stopped")
    end)

    it("has a unit that systemd-analyze verify accepts, with its man pages found", function()
      local unit = LIVE .. "/lib/systemd/system/luasmtpd.service"
      -- MANPATH: the Documentation= pages must be the installed ones.
      local out, rc = H.sh("cd / && MANPATH=" .. H.q(LIVE .. "/share/man") ..
        " timeout 60 systemd-analyze verify " .. H.q(unit))
      assert.equals(0, rc, out)
      assert.equals("", out, "systemd-analyze verify said:\n" .. out)
      assert.truthy(H.read_file(unit):find("\nExecStart=" .. bin .. " -c ", 1, true))
    end)

    it("has man pages that man finds in PREFIX/share/man and renders without warnings",
      function()
        for _, page in ipairs({ "8 luasmtpd", "5 luasmtpd.conf" }) do
          local path, rc = H.sh("MANPATH=" .. H.q(LIVE .. "/share/man") .. " man -w " .. page)
          assert.equals(0, rc, path)
          path = path:gsub("%s+$", "")
          assert.equals(LIVE .. "/share/man/man" .. page:gsub(" ", "/") .. "." ..
            page:sub(1, 1), path)
          local out = H.sh("{ LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l " ..
            H.q(path) .. " >/dev/null; }")
          assert.equals("", out, page .. ": " .. out)
        end
      end)

    it("uninstalls every file it installed", function()
      local out, rc = make("uninstall PREFIX=" .. H.q(LIVE))
      assert.equals(0, rc, out)
      assert.same({}, tree_files(LIVE))
      assert.equals("", H.sh("find " .. H.q(LIVE) .. " -name '*luasmtpd*'"))
    end)
  end)
end)
