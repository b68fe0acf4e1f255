#!/usr/bin/python3
"""scripts/bench/cpusnap.py — who used the CPUs during a run.

    cpusnap.py snap FILE ROOT_PID MARK    write a snapshot to FILE
    cpusnap.py diff A B                   compare two snapshots, print
                                          "foreign kernel ours top"

A snapshot lists every process with its CPU time (utime + stime, clock
ticks) and says whether it is the bench's own: ROOT_PID (scripts/bench.sh)
and its descendants, or a process whose environment contains MARK (the
Postfix instances, which daemonize: MAIL_CONFIG=<bench temp dir>/...).
Kernel threads (children of kthreadd) are counted apart: they mostly do our
own I/O and network work.

diff prints CPU seconds used between the snapshots by processes alive in
both: other people's ("foreign"), kernel threads, ours; and the foreign
process that used the most ("name:seconds", or "-").  A process that
started and ended between the snapshots is not seen; a test suite running
beside the bench still shows through its long-lived processes.  The point
is to flag runs that shared the machine with somebody else's load.
"""
import json
import os
import sys

HZ = os.sysconf("SC_CLK_TCK")


def stat_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        st = f.read()
    comm = st[st.index("(") + 1:st.rindex(")")]
    rest = st[st.rindex(")") + 2:].split()
    # rest[0] = state, [1] = ppid, [11] = utime, [12] = stime, [19] = starttime
    return comm, int(rest[1]), int(rest[11]) + int(rest[12]), rest[19]


def snap(path, root, mark):
    procs = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            comm, ppid, ticks, start = stat_of(d)
        except (OSError, ValueError, IndexError):
            continue
        procs[d] = {"comm": comm, "ppid": ppid, "ticks": ticks, "start": start}
    # Ours: the tree under root, plus processes with the mark in environ.
    kids = {}
    for pid, p in procs.items():
        kids.setdefault(str(p["ppid"]), []).append(pid)
    ours, todo = set(), [str(root)]
    while todo:
        p = todo.pop()
        if p in ours:
            continue
        ours.add(p)
        todo.extend(kids.get(p, []))
    mark_b = mark.encode()
    for pid in procs:
        if pid in ours:
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if mark_b and mark_b in f.read():
                    ours.add(pid)
        except OSError:
            pass
    for pid, p in procs.items():
        if pid in ours:
            p["kind"] = "ours"
        elif p["ppid"] == 2 or pid == "2":
            p["kind"] = "kernel"
        else:
            p["kind"] = "foreign"
    with open(path, "w") as f:
        json.dump(procs, f)


def diff(a_path, b_path):
    with open(a_path) as f:
        a = json.load(f)
    with open(b_path) as f:
        b = json.load(f)
    tot = {"foreign": 0, "kernel": 0, "ours": 0}
    top, top_t = "-", 0
    for pid, pb in b.items():
        pa = a.get(pid)
        if pa is None or pa["start"] != pb["start"]:
            continue
        d = pb["ticks"] - pa["ticks"]
        kind = pb["kind"] if pb["kind"] == "ours" or pa["kind"] != "ours" else "ours"
        tot[kind] += d
        if kind == "foreign" and d > top_t:
            top, top_t = pb["comm"], d
    print("%.2f %.2f %.2f %s" % (tot["foreign"] / HZ, tot["kernel"] / HZ, tot["ours"] / HZ,
                                 "-" if top == "-" else "%s:%.2f" % (top.replace(" ", "_").replace(",", "_"),
                                                                   top_t / HZ)))


def main(argv):
    if len(argv) == 5 and argv[1] == "snap":
        snap(argv[2], argv[3], argv[4])
        return 0
    if len(argv) == 4 and argv[1] == "diff":
        diff(argv[2], argv[3])
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
