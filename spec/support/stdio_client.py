#!/usr/bin/python3
"""stdio_client.py — talk SMTP to `luasmtpd --stdio` over pipes or a socketpair.

    stdio_client.py pipes|socketpair SCRIPT STDERR_FILE -- luasmtpd --stdio -c ...

Starts the command with its standard input and output connected to us —
two pipes, or both to one end of a socketpair — and standard error into
STDERR_FILE, then plays SCRIPT, one step per line:

    C: text        send text and CRLF
    RAW: literal   send a Python bytes literal as it is, e.g. RAW: b"x\\n"
    REPEAT: N text send text N times, without a line end
    S:             read one reply (all its lines) and print it
    CLOSE          close our sending side (the server sees end of input)

and finally reads whatever the server still writes until it closes, and
waits for it to exit.  It prints, one line each:

    reply <line> | <line> ...     for each S:
    rest <repr of the octets after the last reply>
    exit <status>

Every wait is bounded (WAIT seconds per reply, EXIT_WAIT for the exit); a
server that does not answer or exit in time is killed (by its PID) and
reported as "timeout ...", and the status is then 124.
"""
import ast
import os
import select
import socket
import subprocess
import sys
import time

WAIT = 10.0
EXIT_WAIT = 20.0


class Channel:
    def __init__(self, rfd, wfd, close_write):
        self.rfd, self.wfd, self.close_write = rfd, wfd, close_write
        self.buf = b""
        self.eof = False

    def fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0 or self.eof:
            return False
        r, _, _ = select.select([self.rfd], [], [], left)
        if not r:
            return False
        data = os.read(self.rfd, 65536)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def line(self, deadline):
        while b"\n" not in self.buf:
            if not self.fill(deadline):
                return None
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        deadline = time.monotonic() + WAIT
        lines = []
        while True:
            line = self.line(deadline)
            if line is None:
                return lines, "closed" if self.eof else "timeout"
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return lines, None

    def send(self, data):
        try:
            os.write(self.wfd, data)
        except OSError as e:
            print("send-error %s" % e.strerror, flush=True)

    def rest(self):
        deadline = time.monotonic() + WAIT
        while self.fill(deadline):
            pass
        out, self.buf = self.buf, b""
        return out, self.eof


def main():
    mode, script, errfile = sys.argv[1:4]
    cmd = sys.argv[sys.argv.index("--") + 1:]
    err = open(errfile, "wb")
    if mode == "socketpair":
        ours, theirs = socket.socketpair()
        proc = subprocess.Popen(cmd, stdin=theirs.fileno(), stdout=theirs.fileno(),
                                stderr=err, close_fds=True)
        theirs.close()
        ch = Channel(ours.fileno(), ours.fileno(),
                     lambda: ours.shutdown(socket.SHUT_WR))
    else:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=err, close_fds=True)
        ch = Channel(proc.stdout.fileno(), proc.stdin.fileno(), proc.stdin.close)
    err.close()
    for step in open(script, encoding="utf-8").read().splitlines():
        if step.startswith("C: "):
            ch.send(step[3:].encode() + b"\r\n")
        elif step.startswith("RAW: "):
            ch.send(ast.literal_eval(step[5:]))
        elif step.startswith("REPEAT: "):
            count, text = step[8:].split(" ", 1)
            ch.send(text.encode() * int(count))
        elif step == "S:":
            lines, why = ch.reply()
            print("reply " + " | ".join(lines) + ("" if why is None else " <" + why + ">"),
                  flush=True)
        elif step == "CLOSE":
            ch.close_write()
        elif step.strip():
            raise SystemExit("bad script step: " + step)
    rest, eof = ch.rest()
    print("rest %r%s" % (rest, "" if eof else " <timeout>"), flush=True)
    try:
        status = proc.wait(timeout=EXIT_WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        print("timeout waiting for the exit", flush=True)
        status = 124
    print("exit %d" % status, flush=True)


if __name__ == "__main__":
    main()
