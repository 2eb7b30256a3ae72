#!/usr/bin/python3
"""Runs a command and copies its stdout, adding to every JSON-object line "cpu_s": the CPU
time (user + system, all threads: lavapipe's workers included) the process has used so far,
read from /proc when the line arrives. On a shared machine tokens per CPU-second compare
engines by the work they do, whatever share of the cores the scheduler gave them.

    cpuwatch.py COMMAND [ARGS...]
"""

import json
import os
import subprocess
import sys


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: cpuwatch.py COMMAND [ARGS...]")
    p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, text=True)
    for line in p.stdout:
        try:
            d = json.loads(line)
            d["cpu_s"] = cpu_seconds(p.pid)
            line = json.dumps(d) + "\n"
        except (ValueError, OSError):
            pass
        sys.stdout.write(line)
        sys.stdout.flush()
    sys.exit(p.wait())


if __name__ == "__main__":
    main()
