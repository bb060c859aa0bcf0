"""How many candidates the TF32 pass of the tensor-core kNN leaves per row (the exact re-check's work),
and how many rows overflow to the exact path, on small banks, with the CPU twin of the kernel
(transferlab._cuda_logic_testing.knn_loo_tc: TF32 emulated, same bound and candidate rule). No GPU needed.

    python bench/knn_tc_candidates.py

Banks: scikit-learn's digits (1,797 x 64, pixels / 16), the same through a fixed random ReLU layer to
2,048 features, and bench_cuda.py's synthetic clusters (2,000 x 2,048). Each result is also checked equal
to the exact path's twin. The count grows with N (neighbours crowd closer); the device figures at 1M rows
come from bench_cuda.py -k knn_tc.
"""
from __future__ import annotations

import time

import numpy as np
from sklearn.datasets import load_digits

from transferlab import _cuda_logic_testing as cuda_logic  # test-only module: the CPU twin


def banks():
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    rng = np.random.default_rng(0)
    W = rng.standard_normal((64, 2048)).astype(np.float32) / 8
    yield "digits 1797x64", X, y.astype(np.int32)
    yield "digits ReLU 1797x2048", np.maximum(X @ W, 0).astype(np.float32), y.astype(np.int32)
    c = rng.normal(size=(10, 2048)).astype(np.float32) * 0.35
    yb = rng.integers(0, 10, 2000)
    yield "clusters 2000x2048", (c[yb] + rng.normal(size=(2000, 2048))).astype(np.float32), yb.astype(np.int32)


def main() -> None:
    for name, X, y in banks():
        for k in (1, 10):
            t = time.perf_counter()
            got = cuda_logic.knn_loo_tc(X, y, k, 128)
            want = cuda_logic.knn_loo(X, y, k, 128)
            assert all(np.array_equal(g, w) for g, w in zip(got[:4], want)), name
            ncand, ovf = got[5], got[4].astype(bool)
            print(f"{name:24s} k={k:2d}: candidates per row mean {ncand[~ovf].mean():5.2f} max {ncand.max():3d}, "
                  f"rows on the exact path {ovf.sum()}/{ovf.size} ({time.perf_counter() - t:.1f} s, twin)")


if __name__ == "__main__":
    main()
