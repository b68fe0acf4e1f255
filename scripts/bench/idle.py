#!/usr/bin/python3
"""scripts/bench/idle.py — memory per idle SMTP session.

    idle.py --port P --count N --pid PID [--tree] [--deadline SECS]

Measures the server's memory (PID alone, or with --tree PID and every
descendant, for Postfix's one-process-per-connection smtpd), then opens N
connections to 127.0.0.1:P from this one process (non-blocking sockets, at
most --batch of them waiting for their greeting at a time, so the listen
queue never overflows), waits until every one has read a complete 220
greeting, lets the server settle for --settle seconds, measures again and
prints one JSON object:

    {"count": N, "greeted": N, "procs_before": .., "procs_after": ..,
     "rss_before": KiB, "rss_after": KiB, "pss_before": KiB, "pss_after": KiB,
     "uss_before": KiB, "uss_after": KiB, "sock_mem_pages": .., "seconds": ..}

RSS/PSS/USS are sums over the measured processes, from /proc/PID/status and
/proc/PID/smaps_rollup (USS = Private_Clean + Private_Dirty).  Then it closes
every socket and exits.  Bounded: if the greetings are not all in within
--deadline seconds it prints what it has with "error" set and exits 1.
Nothing is sent to the server: the sessions stay idle after the greeting.
"""
import argparse
import errno
import json
import os
import selectors
import socket
import sys
import time


def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may contain spaces or parens.
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree(pid):
    kids = children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def mem_of(pid):
    """(rss, pss, uss) in KiB, or None if the process is gone."""
    rss = pss = uss = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                k, _, rest = line.partition(":")
                if k == "Pss":
                    pss = int(rest.split()[0])
                elif k in ("Private_Clean", "Private_Dirty"):
                    uss += int(rest.split()[0])
    except (OSError, ValueError):
        return None
    return rss, pss, uss


def measure(pid, whole_tree):
    pids = tree(pid) if whole_tree else [pid]
    tot = [0, 0, 0]
    n = 0
    for p in pids:
        m = mem_of(p)
        if m is None:
            continue
        n += 1
        for i in range(3):
            tot[i] += m[i]
    return n, tot


def sock_mem_pages():
    """TCP socket buffer memory in pages (kernel memory, not in any RSS)."""
    try:
        with open("/proc/net/sockstat") as f:
            for line in f:
                if line.startswith("TCP:"):
                    parts = line.split()
                    return int(parts[parts.index("mem") + 1])
    except (OSError, ValueError):
        pass
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--tree", action="store_true")
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--deadline", type=float, default=120.0)
    a = ap.parse_args()

    t0 = time.monotonic()
    deadline = t0 + a.deadline
    res = {"count": a.count, "greeted": 0}
    procs, before = measure(a.pid, a.tree)
    res["procs_before"] = procs
    res["rss_before"], res["pss_before"], res["uss_before"] = before
    res["sock_mem_before"] = sock_mem_pages()

    sel = selectors.DefaultSelector()
    done = []          # greeted sockets, kept open
    waiting = {}       # sock -> received bytes
    opened = 0
    error = None
    while len(done) < a.count and error is None:
        while opened < a.count and len(waiting) < a.batch:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            rc = s.connect_ex((a.host, a.port))
            if rc not in (0, errno.EINPROGRESS):
                error = f"connect: {os.strerror(rc)}"
                s.close()
                break
            sel.register(s, selectors.EVENT_READ)
            waiting[s] = b""
            opened += 1
        if error:
            break
        left = deadline - time.monotonic()
        if left <= 0:
            error = "deadline passed before every greeting arrived"
            break
        for key, _ in sel.select(timeout=min(left, 1.0)):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except OSError as e:
                error = f"recv: {e}"
                break
            if not data:
                error = "server closed a connection before its greeting"
                break
            buf = waiting[s] + data
            waiting[s] = buf
            # A complete greeting: a line "220 ..." (the last line of a
            # possibly multi-line 220 reply).
            lines = buf.split(b"\r\n")
            if any(l.startswith(b"220 ") for l in lines[:-1]):
                sel.unregister(s)
                del waiting[s]
                done.append(s)
            elif any(l[:3] != b"220" for l in lines[:-1]):
                error = "unexpected greeting: " + lines[0][:80].decode("latin-1")
                break
    res["greeted"] = len(done)
    if error is None:
        time.sleep(a.settle)
    procs, after = measure(a.pid, a.tree)
    res["procs_after"] = procs
    res["rss_after"], res["pss_after"], res["uss_after"] = after
    res["sock_mem_after"] = sock_mem_pages()
    res["seconds"] = round(time.monotonic() - t0, 3)
    if error:
        res["error"] = error
    print(json.dumps(res), flush=True)
    for s in done + list(waiting):
        s.close()
    return 1 if error else 0


if __name__ == "__main__":
    sys.exit(main())
