"""What linear_probe's default 5-fold protocol (cv=5, issue 18) costs beside the one split (cv=None).

    python bench/bench_linear_probe_cv.py            # the zoo's bank shapes: 300 rows, D in {128, 1280}

Before timing, each case checks what the default buys: every labelled row is scored (the cross-validated
score times N is an integer; the one split's times its ~60 validation rows is), and the reported standard error
equals std(correct, ddof=1) / sqrt(n) for both. Then both protocols are timed in the same run (best of
ROUNDS), alternating, and the ratio cv=5 / cv=None is printed: the price of five fits instead of one.
"""
from __future__ import annotations

import os
import time

import numpy as np

import transferlab as tl

ROUNDS = int(os.environ.get("TL_BENCH_ROUNDS", "3"))
N = 300


def make_data(d: int, seed: int = 0):
    """10 Gaussian classes, float32, overlapping enough that the probe is not at 100%."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(10, d)) * 0.15
    y = rng.integers(0, 10, size=N)
    return (centers[y] + rng.normal(size=(N, d))).astype(np.float32), y


def check(x, y) -> None:
    cv = tl.linear_probe(x, y, return_details=True)
    one = tl.linear_probe(x, y, cv=None, return_details=True)
    for r, n in ((cv, N), (one, one.val_index.size)):
        assert abs(r.score * n - round(r.score * n)) < 1e-9 and r.correct.size == n
        assert abs(r.se - np.std(r.correct, ddof=1) / np.sqrt(n)) < 1e-12
    assert 50 <= one.val_index.size <= 70  # 20% of each class, rounded per class


def best_of(fn) -> float:
    times = []
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    print(f"| D | cv=None (s) | cv=5 (s) | ratio | score cv=None | score cv=5 |\n|---:|---:|---:|---:|---:|---:|")
    for d in (128, 1280):
        x, y = make_data(d)
        check(x, y)
        t_one = best_of(lambda: tl.linear_probe(x, y, cv=None))
        t_cv = best_of(lambda: tl.linear_probe(x, y))
        print(f"| {d} | {t_one:.3f} | {t_cv:.3f} | {t_cv / t_one:.1f} | {tl.linear_probe(x, y, cv=None):.4f} | "
              f"{tl.linear_probe(x, y):.4f} |")


if __name__ == "__main__":
    main()
