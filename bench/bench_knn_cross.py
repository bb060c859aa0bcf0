"""knn_loo's query path (``knn_loo(queries=rows)``, ``_C.knn_cross``) against the full symmetric kernel, per row.

    flock /work/cpu.lock python bench/bench_knn_cross.py               # N=20000, D in {32,128,768}; N=100000, D=64
    python bench/bench_knn_cross.py --cases 20000x32 --queries 1000     # quick

For each case (N, D) the same run times, on the same data and thread count (``--threads``, default 2):

* full: ``knn_loo(X, y)`` (the symmetric in-memory kernel, N^2 D / 2 multiply-adds), per row = time / N;
* query: ``knn_loo(X, y, queries=rows)`` on q scattered random rows (``rows``: the first q of a seeded
  permutation, as ``select.race`` draws them), q in ``--queries`` (default 1000, 5000 and N/4), per row =
  time / q. Such a row costs N D multiply-adds against N D / 2 for a full row, so a kernel running at the
  full kernel's flop rate gives a ratio of about 2;
* kernel: the ``_C.knn_cross`` call alone that the query path makes (the gathered query rows against the
  whole bank, self excluded by ``row_index``), per row: the rest of the query time is Python (block
  planning, the NaN scan, the gather, the credit).

Before timing, each query result is checked against the full kernel's per-row values (neighbours,
distances and per-row credit bit for bit). Times are the minimum over ``--rounds``. The printed ratio is
query-per-row / full-per-row; ``break-even`` is the fraction of N rows whose query cost equals one full pass
(what ``transferlab.race.FULL_FRACTION`` is chosen from).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import transferlab as tl
from transferlab import kernels


def make_data(n: int, d: int, seed: int = 0):
    """Embedding-like data: 10 Gaussian classes in d dimensions, float32 (bench/bench_knn.py's)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(10, d)).astype(np.float32) * 0.35
    y = rng.integers(0, 10, size=n)
    X = centers[y] + rng.normal(size=(n, d)).astype(np.float32)
    return np.ascontiguousarray(X, dtype=np.float32), y.astype(np.int32)


def best_of(fn, rounds: int):
    best, out = float("inf"), None
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def run_case(n: int, d: int, queries, threads: int, rounds: int, k: int):
    X, y = make_data(n, d)
    perm = np.random.default_rng(1).permutation(n)
    with tl.threads(threads):
        t_full, full = best_of(lambda: tl.knn_loo(X, y, k=k, return_details=True), rounds)
        full_row = t_full / n
        print(f"N={n} D={d} k={k}: full knn_loo {t_full:.3f}s = {1e6 * full_row:.2f} us/row", flush=True)
        for q in queries:
            rows = perm[:q]
            t_q, res = best_of(lambda: tl.knn_loo(X, y, k=k, queries=rows, return_details=True), rounds)
            if not (np.array_equal(res.neighbors, full.neighbors[rows])
                    and np.array_equal(res.distances, full.distances[rows])
                    and np.array_equal(res.correct, full.correct[rows])):
                raise SystemExit(f"N={n} D={d} q={q}: the query path disagrees with the full kernel")
            srt = np.sort(rows).astype(np.int64)
            Q, qlab = np.ascontiguousarray(X[srt]), np.ascontiguousarray(y[srt])
            t_k, _ = best_of(lambda: kernels.cpu_module().knn_cross(Q, 0, X, y, k, False, threads, 0, qlab, False,
                                                                    srt), rounds)
            ratio = (t_q / q) / full_row
            print(f"  q={q:6d}: query {t_q:.3f}s = {1e6 * t_q / q:.2f} us/row, ratio {ratio:.2f}x the full row "
                  f"(kernel alone {ratio * t_k / t_q:.2f}x, {100 * t_k / t_q:.0f}% of the query time); "
                  f"break-even at {1 / ratio:.2f} N", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="20000x32,20000x128,20000x768,100000x64", help="NxD,NxD,...")
    ap.add_argument("--queries", default="1000,5000,quarter", help="query counts; 'quarter' = N/4")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--k", type=int, default=1)
    a = ap.parse_args(argv)
    for case in a.cases.split(","):
        n, d = (int(v) for v in case.lower().split("x"))
        qs = []
        for s in a.queries.split(","):
            q = n // 4 if s == "quarter" else int(s)
            if q not in qs and 1 <= q <= n:
                qs.append(q)
        run_case(n, d, qs, a.threads, a.rounds, a.k)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
