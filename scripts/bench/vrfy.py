#!/usr/bin/python3
"""scripts/bench/vrfy.py — N pipelined VRFY commands in one SMTP session.

    vrfy.py --port P --count N [--deadline SECS]

Connects to 127.0.0.1:P, reads the greeting, sends EHLO, then starts the
clock and sends N "VRFY bench@example.test" lines as fast as the socket
takes them (a writer thread) while the main thread reads the replies; the
clock stops at the N-th reply.  Then QUIT.  Prints one JSON object:

    {"count": N, "replies": N, "seconds": s, "codes": {"252": N}}

Every reply must be a single line with a 2xx code, otherwise "error" is set
and the exit status is 1.  Bounded by --deadline (socket timeouts).
"""
import argparse
import json
import socket
import sys
import threading
import time


def read_reply(sock, buf):
    """Read one (possibly multi-line) reply; returns (last line, rest)."""
    while True:
        while b"\r\n" in buf:
            line, buf = buf.split(b"\r\n", 1)
            if len(line) < 4 or line[3:4] != b"-":
                return line, buf
        data = sock.recv(65536)
        if not data:
            raise EOFError("server closed the connection")
        buf += data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--deadline", type=float, default=60.0)
    a = ap.parse_args()

    res = {"count": a.count}
    sock = socket.create_connection(("127.0.0.1", a.port), timeout=a.deadline)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    line, buf = read_reply(sock, buf)
    if not line.startswith(b"220"):
        res["error"] = "greeting: " + line[:80].decode("latin-1")
        print(json.dumps(res))
        return 1
    sock.sendall(b"EHLO bench.client.test\r\n")
    line, buf = read_reply(sock, buf)
    if not line.startswith(b"250"):
        res["error"] = "EHLO: " + line[:80].decode("latin-1")
        print(json.dumps(res))
        return 1

    payload = b"VRFY bench@example.test\r\n" * a.count
    werr = []

    def writer():
        try:
            sock.sendall(payload)
        except OSError as e:
            werr.append(str(e))

    t0 = time.perf_counter()
    th = threading.Thread(target=writer, daemon=True)
    th.start()
    chunks = [buf]
    nl = buf.count(b"\n")
    try:
        while nl < a.count:
            data = sock.recv(1 << 20)
            if not data:
                raise EOFError("server closed the connection")
            chunks.append(data)
            nl += data.count(b"\n")
    except (OSError, EOFError) as e:
        res["error"] = f"after {nl} replies: {e}"
    t1 = time.perf_counter()
    th.join(timeout=5)
    res["seconds"] = round(t1 - t0, 6)
    lines = b"".join(chunks).split(b"\r\n")
    replies = lines[:a.count]
    res["replies"] = len([l for l in replies if l])
    codes = {}
    for l in replies:
        codes[l[:3].decode("latin-1")] = codes.get(l[:3].decode("latin-1"), 0) + 1
    res["codes"] = codes
    res["first_reply"] = replies[0][:80].decode("latin-1") if replies else ""
    if "error" not in res:
        bad = [c for c in codes if not c.startswith("2")]
        if bad or any(l[3:4] == b"-" for l in replies):
            res["error"] = f"unexpected replies: {codes}"
        elif werr:
            res["error"] = "write: " + werr[0]
    try:
        sock.sendall(b"QUIT\r\n")
        sock.close()
    except OSError:
        pass
    print(json.dumps(res), flush=True)
    return 1 if "error" in res else 0


if __name__ == "__main__":
    sys.exit(main())
