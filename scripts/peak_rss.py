#!/usr/bin/env python3
"""Run a command and report its wall time, peak RssAnon and VmHWM.

Usage: scripts/peak_rss.py [--stdout FILE] [--interval 0.01] -- CMD [ARGS...]

RssAnon (heap and other private memory, not the page cache or mapped file
pages) is read from /proc/PID/status of the command and of its descendants
every --interval seconds (default 10 ms); the peak of their sum is reported.
VmHWM is the kernel's own high-water mark of the main process's resident set
(file-backed pages included), taken from wait4()'s ru_maxrss, so it is exact
even for a process shorter than one poll.  The command's stdout goes to FILE
(default: inherited); the report is one line on stderr:

    peak_rss: wall_s=1.234 rss_anon_kb=5120 vmhwm_kb=9216 exit=0 polls=123

and this script exits with the command's exit status.
"""

import argparse
import os
import subprocess
import sys
import time


def rss_anon_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            pass
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stdout", help="write the command's stdout here")
    ap.add_argument("--interval", type=float, default=0.01)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        ap.error("no command given")
    out = open(args.stdout, "wb") if args.stdout else None
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=out)
    peak = polls = 0
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        peak = max(peak, sum(rss_anon_kb(p) for p in descendants(proc.pid)))
        polls += 1
        time.sleep(args.interval)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if out:
        out.close()
    print(f"peak_rss: wall_s={wall:.3f} rss_anon_kb={peak} vmhwm_kb={rusage.ru_maxrss} "
          f"exit={code} polls={polls}", file=sys.stderr)
    sys.exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
