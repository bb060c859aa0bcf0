"""`transferlab race` on .npy files: peak memory beside the same race on the arrays read whole, in one run.

    python bench/bench_race_cli.py                         # 3 models, N=500,000, D=128 float32 (244 MiB each)
    python bench/bench_race_cli.py --n 100000 --d 64       # quick

The command line memory-maps each .npy input (transferlab/_cli_race.py); this measures what that buys. Three
float32 banks of the same N rows and C=10 labels (model j = class centres times a separation s_j plus unit
noise: s = 1.0, 0.6, 0.3) are written block by block into a temporary directory (removed afterwards). Two fresh
processes then run the same race (--first-rows, --max-memory, seed 0):

* cli:      ``transferlab race a.npy b.npy c.npy --labels y.npy --max-memory B --json`` (``cli.main``, in-process);
* baseline: ``tl.select.race`` on the arrays read whole with ``np.load`` (no memory map), same options.

Checked before anything is reported: both choose the same model with the same estimates, intervals and rows
(the CLI's --json against the baseline's RaceResult). Reported: each process's peak RSS (VmHWM) and its RSS
after imports, the files' total size, the wall time of each, and the ratios (baseline / cli).

One run (2 cores, `--n 1000000 --d 256`, 2,930 MiB of files, --max-memory 256MB; chosen after one round of 1024
rows): cli peak 532 MiB (99 after imports), baseline 3,285 MiB: 6.17x; wall 14.0 s against 22.9 s. At the
defaults (732 MiB of files): 508 MiB against 1,059 MiB (2.08x).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

from bench_out_of_core import _write_npy  # noqa: E402  (plain block writes: page cache, not this RSS)

SEPARATIONS = {"sharp": 1.0, "blurred": 0.6, "faint": 0.3}

_HEAD = """
import json, sys, time
sys.path.insert(0, {root!r})
import numpy as np
import transferlab as tl
from transferlab._cli_race import result_dict

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) * 1024
base = hwm()
t = time.perf_counter()
"""

_CLI = _HEAD + """
from transferlab.cli import main
status = main({argv!r})
wall = time.perf_counter() - t
assert status == 0, status
print(json.dumps(dict(result=json.load(open({out!r})), wall_s=wall, hwm=hwm(), base=base)))
"""

_BASELINE = _HEAD + """
banks = {{name: np.load(path) for name, path in {paths!r}.items()}}  # read whole: the baseline
res = tl.select.race(banks, np.load({labels!r}), first_rows={first_rows}, max_memory={budget!r})
wall = time.perf_counter() - t
print(json.dumps(dict(result=result_dict(res), wall_s=wall, hwm=hwm(), base=base)))
"""


def write_pool(root: str, n: int, d: int, c: int = 10, seed: int = 0):
    """{model: .npy path} and the labels' path; features generated block by block (never whole in memory)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, size=n)
    centres = rng.normal(size=(c, d)) * (3.0 / np.sqrt(d))
    labels = os.path.join(root, "labels.npy")
    np.save(labels, y)
    paths = {}
    for j, (name, s) in enumerate(SEPARATIONS.items()):
        noise = np.random.default_rng([seed, j])

        def fill(a, b, s=s, noise=noise):
            return centres[y[a:b]] * s + noise.normal(size=(b - a, d))

        paths[name] = os.path.join(root, f"{name}.npy")
        _write_npy(paths[name], (n, d), np.float32, fill)
    return paths, labels


def _child(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(n: int, d: int, budget: str, first_rows: int) -> dict:
    tmp = tempfile.mkdtemp(prefix="bench_race_cli_", dir=os.environ.get("TMPDIR"))
    try:
        paths, labels = write_pool(tmp, n, d)
        size = sum(os.path.getsize(p) for p in paths.values())
        out = os.path.join(tmp, "race.json")
        argv = ["race", *paths.values(), "--labels", labels, "--max-memory", budget, "--first-rows", str(first_rows),
                "--json", out, "--quiet"]
        cli = _child(_CLI.format(root=ROOT, argv=argv, out=out))
        base = _child(_BASELINE.format(root=ROOT, paths=paths, labels=labels, first_rows=first_rows, budget=budget))
        for key in ("chosen", "estimates", "intervals", "rows_used", "eliminated", "exact", "rounds"):
            assert cli["result"][key] == base["result"][key], (key, cli["result"][key], base["result"][key])
        return dict(n=n, d=d, files_bytes=size, budget=budget, cli=cli, baseline=base)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500_000)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--budget", default="256MB", help="--max-memory of both races (default: 256MB)")
    ap.add_argument("--first-rows", type=int, default=1024)
    a = ap.parse_args()
    r = run(a.n, a.d, a.budget, a.first_rows)
    mib = 1 << 20
    res = r["cli"]["result"]
    print(f"3 models x {r['n']:,} rows x {r['d']} float32: {r['files_bytes'] / mib:.0f} MiB of .npy files; "
          f"--max-memory {r['budget']}; chosen {res['chosen']} ({'exact' if res['exact'] else 'stopped'} after "
          f"rounds {res['rounds']}; rows used {res['rows_used']}); CLI == library race: checked")
    print("| run | peak RSS (MiB) | RSS after imports (MiB) | wall (s) |")
    print("|---|---:|---:|---:|")
    for name in ("cli", "baseline"):
        x = r[name]
        label = "transferlab race (memory-mapped)" if name == "cli" else "tl.select.race on np.load'ed arrays"
        print(f"| {label} | {x['hwm'] / mib:.0f} | {x['base'] / mib:.0f} | {x['wall_s']:.1f} |")
    print(f"peak RSS: baseline / cli = {r['baseline']['hwm'] / r['cli']['hwm']:.2f}x; "
          f"wall: baseline / cli = {r['baseline']['wall_s'] / r['cli']['wall_s']:.2f}x")


if __name__ == "__main__":
    main()
