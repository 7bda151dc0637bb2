#!/usr/bin/env python3
"""Per-phase medians of the runs in a `perf script` of sched events.

bench/phases.sh records sched_process_{fork,exec,exit} while bash runs one
command N times; each run starts at bash's fork, and its phases are the
times between the events that follow (exec of each program, the
flavor's fork of the app, the exits). Runs whose events differ from the
most common sequence (a stray process, a failed run) are left out.

    phases.py PERF_SCRIPT_OUTPUT
"""
import re
import statistics
import sys
from collections import Counter

EVENT = re.compile(r"\s*(\S.*?)\s+(\d+)\s+(?:\[\d+\]\s+)?([\d.]+):\s+sched:(\w+):(.*)")


def runs(lines):
    out, cur = [], None
    for line in lines:
        m = EVENT.match(line)
        if not m:
            continue
        comm, _pid, t, ev, rest = m.groups()
        t = float(t) * 1e3
        if ev == "sched_process_fork" and comm == "bash":
            if cur:
                out.append(cur)
            cur = [("fork", t)]
        elif cur is None:
            continue
        elif ev == "sched_process_exec":
            cur.append(("exec:" + rest.split("filename=")[1].split()[0].rsplit("/", 1)[-1], t))
        elif ev == "sched_process_fork":
            cur.append(("fork", t))
        elif ev == "sched_process_exit":
            cur.append(("exit:" + comm, t))
    if cur:
        out.append(cur)
    # bash's `seq` for the loop is not a run.
    return [r for r in out if len(r) >= 3 and not any(e[0] == "exec:seq" for e in r)]


def main():
    with open(sys.argv[1]) as f:
        rs = runs(f.read().splitlines())
    if not rs:
        sys.exit("phases.py: no runs in " + sys.argv[1])
    shape, _ = Counter(tuple(e[0] for e in r) for r in rs).most_common(1)[0]
    rs = [r for r in rs if tuple(e[0] for e in r) == shape]
    print(f"  {len(rs)} runs")
    for i in range(1, len(shape)):
        median = statistics.median(r[i][1] - r[i - 1][1] for r in rs)
        print(f"  {shape[i - 1]:>26} -> {shape[i]:<26} {median:7.3f} ms")
    print(f"  {'total':>57} {statistics.median(r[-1][1] - r[0][1] for r in rs):7.3f} ms")


if __name__ == "__main__":
    main()
