"""Two whole `transferlab demo` runs from scratch, the second beside two busy processes (`yes > /dev/null`):
their printed score tables must be identical, and each run's wall-clock is reported (issue 16: the demo's
output must not depend on load, and it should take <= 90 s on 2 loaded cores).

    python bench/demo_determinism.py [--keep DIR]

Prints the wall-clock and CPU seconds of each run, the load average before each, and IDENTICAL or the first
differing line; exits 1 when the tables differ. On 2 cores beside two busy processes the demo gets about one
core, so its wall-clock there is about its CPU time, whatever else the machine runs. Needs the zoo's packages (see README). Not a test: two full demos take minutes.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time


def score_table(text: str) -> str:
    """The demo's step-2 score table (its heading, which holds the seconds, left out)."""
    part = text.split("## 2. scores", 1)[1].split("## 3.", 1)[0]
    return part.split("\n", 1)[1]


def run(out: str, busy: int) -> tuple:
    """(printed text, wall-clock s, load average before, CPU s of the demo process alone)."""
    hogs = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(busy)]
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryFile("w+") as log, tempfile.TemporaryFile("w+") as err:
            p = subprocess.Popen([sys.executable, "-m", "transferlab", "demo", "--out", out], stdout=log,
                                 stderr=err, text=True)
            _, status, usage = os.wait4(p.pid, 0)  # the demo's own rusage, not the busy processes'
            p.returncode = os.waitstatus_to_exitcode(status)
            seconds = time.perf_counter() - t0
            log.seek(0)
            err.seek(0)
            stdout, stderr = log.read(), err.read()
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    if p.returncode != 0:
        sys.exit(f"demo failed ({p.returncode}): {stderr[-2000:]}")
    return stdout, seconds, load, usage.ru_utime + usage.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", metavar="DIR", help="keep both runs' outputs (and printed text) under DIR")
    args = ap.parse_args()
    root = args.keep or tempfile.mkdtemp(prefix="tl-demo-")
    texts = []
    for i, busy in enumerate((0, 2)):
        out = os.path.join(root, f"run{i}")
        text, seconds, load, cpu = run(out, busy)
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "printed.txt"), "w") as f:
            f.write(text)
        print(f"run {i}: {busy} busy processes beside it, 1-min load average before {load:.2f}, "
              f"{os.cpu_count()} cores: {seconds:.1f} s wall-clock, {cpu:.1f} s CPU (user + system)")
        texts.append(text)
    a, b = score_table(texts[0]), score_table(texts[1])
    if a == b:
        print(f"score tables IDENTICAL ({a.count(chr(10) + '| ') - 1} rows); outputs in {root}")
        return 0
    for la, lb in zip(a.splitlines(), b.splitlines()):
        if la != lb:
            print(f"score tables DIFFER:\n  {la}\n  {lb}")
            break
    return 1


if __name__ == "__main__":
    sys.exit(main())
