"""Out of core: an >= 8 GB memory-mapped bank scored with max_memory="1GB", peak RSS measured.

    python bench/bench_out_of_core.py                       # 1,050,000 x 2048 float32 (8.6 GB) + probs
    python bench/bench_out_of_core.py --n 200000 --d 512    # a quick run
    pytest -m slow bench/bench_out_of_core.py               # the same as a (slow) test, with asserts

The bank (features .npy, source probabilities N x Z .npy, labels) is generated block by block in a
temporary directory on /work (removed afterwards). Each score then runs in a fresh subprocess on the
read-only memory maps; the child reports its peak RSS (VmHWM, and ru_maxrss) after importing
transferlab and after scoring, and the wall time. Scores: knn_loo on 1000 queries (neighbours from
the whole bank), leep, sfda, logme. The run asserts peak RSS <= 2 GB, and first checks on a small
bank that fits that every score's memory-mapped, budgeted value equals the in-memory one bitwise.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RSS_LIMIT = 2 << 30
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# (score, input, keyword options) run on the big bank; the budget is added to each.
SCORES = [
    ("knn_loo", "features", {"queries": 1000, "seed": 0}),
    ("leep", "probs", {}),
    ("sfda", "features", {}),
    ("logme", "features", {}),
]


# ---------------------------------------------------------------------------- the bank


def _write_npy(path: str, shape, dtype, fill) -> None:
    """A .npy written block by block with plain file writes (page cache, not this process's RSS)."""
    header = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    offset = header.offset
    del header
    with open(path, "r+b") as f:
        f.seek(offset)
        for s in range(0, shape[0], 16384):
            e = min(shape[0], s + 16384)
            f.write(np.ascontiguousarray(fill(s, e), dtype=dtype).tobytes())


def make_bank(root: str, n: int, d: int, z: int, c: int, seed: int = 0):
    """features (n, d) float32 with class structure, probs (n, z) float32 rows on the simplex, labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n).astype(np.int64)
    means = rng.standard_normal((c, d)).astype(np.float32)
    proj = rng.standard_normal((c, z)).astype(np.float32)

    def feats(s, e):
        r = np.random.default_rng([seed, s])
        return means[y[s:e]] * 0.15 + r.standard_normal((e - s, d), dtype=np.float32)

    def probs(s, e):
        r = np.random.default_rng([seed + 1, s])
        logits = proj[y[s:e]] + r.standard_normal((e - s, z), dtype=np.float32)
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        return p / p.sum(axis=1, keepdims=True)

    paths = {k: os.path.join(root, f"{k}.npy") for k in ("features", "probs", "labels")}
    _write_npy(paths["features"], (n, d), np.float32, feats)
    _write_npy(paths["probs"], (n, z), np.float32, probs)
    np.save(paths["labels"], y)
    return paths


# ---------------------------------------------------------------------------- one score per process

_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
import numpy as np
import transferlab as tl

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) * 1024
x = np.load({path!r}, mmap_mode="r")
y = np.load({labels!r})
base = hwm()
t = time.perf_counter()
value = getattr(tl, {score!r})(x, y, **{kw!r})
wall = time.perf_counter() - t
print(json.dumps(dict(value=float(value), wall_s=wall, hwm=hwm(), base=base,
                      maxrss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)))
"""


def run_child(score: str, path: str, labels: str, kw: dict) -> dict:
    code = _CHILD.format(root=ROOT, path=path, labels=labels, score=score, kw=kw)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def check_small(tmp: str, budget: str = "4MB") -> None:
    """On a bank that fits: memory-mapped + max_memory == in memory, bitwise, for every score."""
    import transferlab as tl

    paths = make_bank(os.path.join(tmp), n=6000, d=96, z=20, c=12, seed=1)
    y = np.load(paths["labels"])
    for score, src, kw in SCORES:
        mm = np.load(paths[src], mmap_mode="r")
        ram = np.array(mm)
        kw_small = dict(kw, queries=200) if score == "knn_loo" else kw
        fn = getattr(tl, score)
        want = fn(ram, y, **kw_small) if score == "knn_loo" else fn(ram, y)
        if score == "knn_loo":  # the full in-memory kernel's per-sample credit on the queries
            full = tl.knn_loo(ram, y, return_details=True)
            from transferlab.scores.knn.out_of_core import resolve_queries

            rows = resolve_queries(200, ram.shape[0], 0)
            assert want == float(full.correct[rows].mean()), (want, full.correct[rows].mean())
        got = fn(mm, y, max_memory=budget, **kw_small)
        assert got == want, (score, got, want)
    for p in paths.values():
        os.remove(p)


def run(n: int, d: int, z: int, c: int, budget: str = "1GB", keep: bool = False):
    tmp = tempfile.mkdtemp(prefix="tl_ooc_", dir="/work")
    rows = []
    try:
        check_small(tmp)
        t = time.perf_counter()
        paths = make_bank(tmp, n, d, z, c)
        gen = time.perf_counter() - t
        size = os.path.getsize(paths["features"]) + os.path.getsize(paths["probs"])
        print(f"bank: features {n} x {d} float32 + probs {n} x {z} float32 = {size / 2**30:.2f} GiB on disk "
              f"(generated in {gen:.0f} s); max_memory={budget!r}", flush=True)
        for score, src, kw in SCORES:
            r = run_child(score, paths[src], paths["labels"], dict(kw, max_memory=budget))
            r["score"] = score
            rows.append(r)
            print(f"  {score:8s} value {r['value']:.6g}  wall {r['wall_s']:7.1f} s  peak RSS {r['hwm'] / 2**20:7.0f} MiB "
                  f"(after imports {r['base'] / 2**20:.0f} MiB; ru_maxrss {r['maxrss'] / 2**20:.0f} MiB)", flush=True)
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print("\n| score | options | wall (s) | peak RSS (MiB) | RSS after imports (MiB) | value |")
    print("|---|---|---|---|---|---|")
    for (score, _, kw), r in zip(SCORES, rows):
        opts = ", ".join(f"{k}={v}" for k, v in dict(kw, max_memory=budget).items())
        print(f"| {score} | {opts} | {r['wall_s']:.1f} | {r['hwm'] / 2**20:.0f} | {r['base'] / 2**20:.0f} | "
              f"{r['value']:.6g} |")
    return rows


@pytest.mark.slow
def test_out_of_core_8gb():
    rows = run(1_050_000, 2048, 100, 100)
    for r in rows:
        assert r["hwm"] <= RSS_LIMIT, (r["score"], r["hwm"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_050_000)
    ap.add_argument("--d", type=int, default=2048)
    ap.add_argument("--z", type=int, default=100)
    ap.add_argument("--c", type=int, default=100)
    ap.add_argument("--max-memory", default="1GB")
    ap.add_argument("--keep", action="store_true", help="keep the generated bank")
    args = ap.parse_args()
    rows = run(args.n, args.d, args.z, args.c, args.max_memory, args.keep)
    worst = max(r["hwm"] for r in rows)
    print(f"\nworst peak RSS {worst / 2**20:.0f} MiB (limit {RSS_LIMIT / 2**20:.0f} MiB): "
          f"{'OK' if worst <= RSS_LIMIT else 'OVER'}")
    sys.exit(0 if worst <= RSS_LIMIT else 1)


if __name__ == "__main__":
    main()
