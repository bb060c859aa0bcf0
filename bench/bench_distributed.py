"""Sharded knn_loo on a LocalCluster vs the local kernel: equality (bitwise) and wall time.

    python bench/bench_distributed.py --n 12000 --d 256 --k 5 --blocks 4 --workers 2

Work: both use the symmetry (N^2 d / 2 multiply-adds; the sharded one computes each block pair once,
both directions); the sharded one adds Dask overhead and the Python merges. It exists to go past one
machine's memory and cores, not to beat the local kernel on one machine.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=12000)
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--blocks", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scheduler", default=None, help="address of a running scheduler (default: LocalCluster)")
    args = ap.parse_args()

    import distributed

    import transferlab
    from transferlab import distributed as tld

    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.n, args.d)).astype(np.float32)
    y = rng.integers(0, 10, size=args.n)
    t = time.perf_counter()
    local = transferlab.knn_loo(X, y, k=args.k, return_details=True)
    t_local = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bank.npy")
        np.save(path, X)
        if args.scheduler:
            ctx = distributed.Client(args.scheduler)
        else:
            cluster = distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                               dashboard_address=None)
            ctx = distributed.Client(cluster)
        with ctx as client:
            times = []
            for _ in range(2):  # the first run also imports transferlab on cold workers
                t = time.perf_counter()
                got = tld.knn_loo_sharded(path, y, k=args.k, n_blocks=args.blocks, client=client,
                                          kernel_threads=1, return_details=True)
                times.append(time.perf_counter() - t)
        if not args.scheduler:
            cluster.close()
    equal = (np.array_equal(got.neighbors, local.neighbors) and got.distances.tobytes() == local.distances.tobytes()
             and np.array_equal(got.tie_count, local.tie_count) and got.score == local.score)
    print(f"N={args.n} D={args.d} k={args.k} blocks={args.blocks} workers={args.workers}")
    print(f"local knn_loo      : {t_local:7.2f} s  score={local.score!r}")
    print(f"knn_loo_sharded    : {times[1]:7.2f} s (cold workers: {times[0]:.2f} s)  score={got.score!r}  "
          f"bitwise equal: {equal}")


if __name__ == "__main__":
    main()
