#!/usr/bin/python3
"""scripts/bench/probe.py — small socket chores for scripts/bench.sh.

    probe.py freeport            print a TCP port on 127.0.0.1 the kernel
                                 just handed out (it may race; callers retry)
    probe.py greet PORT SECS     wait up to SECS until 127.0.0.1:PORT answers
                                 with a 220 greeting, then QUIT; exit 0/1
    probe.py greet unix:PATH SECS  the same over a unix socket (LMTP)
"""
import socket
import sys
import time


def greet_once(target, timeout):
    if target.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        addr = target[5:]
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        addr = ("127.0.0.1", int(target))
    s.settimeout(timeout)
    try:
        s.connect(addr)
        buf = b""
        while b"\n" not in buf:
            data = s.recv(1024)
            if not data:
                return False
            buf += data
        ok = buf.startswith(b"220")
        try:
            s.sendall(b"QUIT\r\n")
            s.recv(1024)
        except OSError:
            pass
        return ok
    except OSError:
        return False
    finally:
        s.close()


def main(argv):
    if len(argv) >= 2 and argv[1] == "freeport":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])
        s.close()
        return 0
    if len(argv) == 4 and argv[1] == "greet":
        deadline = time.monotonic() + float(argv[3])
        while time.monotonic() < deadline:
            if greet_once(argv[2], 2.0):
                return 0
            time.sleep(0.05)
        return 1
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
