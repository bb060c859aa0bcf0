"""Leave-one-out 1-NN: transferlab's fused kernel beside faiss-cpu, scikit-learn and numpy.

    python -m pytest bench/bench_knn.py -q -s                 # N = 20000, D in {256, 768, 2048}
    TL_BENCH_N=3000 python -m pytest bench/bench_knn.py -q -s  # quick check

Every library runs on the same data with the same thread count (TL_BENCH_THREADS, default 2):
transferlab via ``transferlab.threads``, faiss via ``faiss.omp_set_num_threads``, scikit-learn and
numpy via threadpoolctl. Baselines: faiss ``IndexFlatL2`` searched with k=2 and self dropped;
scikit-learn ``NearestNeighbors(algorithm="brute", n_neighbors=2)``; numpy chunked
``|x|^2 + |y|^2 - 2 X Y^T`` with the diagonal masked. Each benchmark first checks that the baseline's
1-NN agrees with knn_loo (tie-aware: a different neighbour must be a float64 near-tie), then times
it. The summary (bench/conftest.py) prints the times, the ratios to knn_loo, and the peak resident
memory of one call of each in a fresh subprocess (VmHWM after the call minus VmRSS before it, the\nhigh-water mark reset once the data is loaded).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import transferlab as tl

N = int(os.environ.get("TL_BENCH_N", "20000"))
THREADS = int(os.environ.get("TL_BENCH_THREADS", "2"))
DIMS = [int(d) for d in os.environ.get("TL_BENCH_DIMS", "256,768,2048").split(",")]
ROUNDS = int(os.environ.get("TL_BENCH_ROUNDS", "3"))
LIBS = ["transferlab", "faiss", "sklearn", "numpy"]
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def make_data(n: int, d: int, seed: int = 0):
    """Embedding-like data: 10 Gaussian classes in d dimensions, float32."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(10, d)).astype(np.float32) * 0.35
    y = rng.integers(0, 10, size=n)
    X = centers[y] + rng.normal(size=(n, d)).astype(np.float32)
    return np.ascontiguousarray(X, dtype=np.float32), y


# ------------------------------------------------------------------ the four 1-NN implementations
def nn_transferlab(X, y):
    with tl.threads(THREADS):
        r = tl.knn_loo(X, y, k=1, ties="lowest_index", device="cpu", return_details=True)
    return r.neighbors[:, 0]


def nn_faiss(X, y):
    import faiss

    faiss.omp_set_num_threads(THREADS)
    index = faiss.IndexFlatL2(X.shape[1])
    index.add(X)
    _, I = index.search(X, 2)
    self_first = I[:, 0] == np.arange(X.shape[0])
    return np.where(self_first, I[:, 1], I[:, 0])  # drop self (it may come second among duplicates)


def nn_sklearn(X, y):
    from sklearn.neighbors import NearestNeighbors
    from threadpoolctl import threadpool_limits

    with threadpool_limits(THREADS):
        nn = NearestNeighbors(n_neighbors=2, algorithm="brute", n_jobs=1).fit(X)
        I = nn.kneighbors(X, return_distance=False)
    self_first = I[:, 0] == np.arange(X.shape[0])
    return np.where(self_first, I[:, 1], I[:, 0])


def nn_numpy(X, y, chunk=2048):
    from threadpoolctl import threadpool_limits

    sq = np.einsum("ij,ij->i", X, X)
    out = np.empty(X.shape[0], dtype=np.int64)
    with threadpool_limits(THREADS):
        for s in range(0, X.shape[0], chunk):
            D = sq[s : s + chunk, None] + sq[None, :] - 2.0 * (X[s : s + chunk] @ X.T)
            D[np.arange(D.shape[0]), np.arange(s, s + D.shape[0])] = np.inf
            out[s : s + chunk] = np.argmin(D, axis=1)
    return out


IMPLS = {"transferlab": nn_transferlab, "faiss": nn_faiss, "sklearn": nn_sklearn, "numpy": nn_numpy}

_DATA = {}
_REF = {}


def data(d):
    if d not in _DATA:
        _DATA[d] = make_data(N, d, seed=d)
    return _DATA[d]


def check_agrees(X, y, got, want, rel=1e-5):
    """Same 1-NN, except on float64 near-ties; the LOO accuracies then agree up to those rows."""
    diff = np.flatnonzero(got != want)
    X64 = X.astype(np.float64)
    for i in diff:
        dg = float(((X64[i] - X64[got[i]]) ** 2).sum())
        dw = float(((X64[i] - X64[want[i]]) ** 2).sum())
        assert got[i] != i and abs(dg - dw) <= rel * max(dw, 1e-12), f"row {i}: {got[i]} ({dg}) vs {want[i]} ({dw})"
    acc_g, acc_w = np.mean(y[got] == y), np.mean(y[want] == y)
    assert abs(acc_g - acc_w) <= len(diff) / len(y) + 1e-12
    return len(diff)


@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("lib", LIBS)
def test_knn_loo_1nn(benchmark, lib, d, knn_results):
    X, y = data(d)
    if d not in _REF:
        _REF[d] = nn_transferlab(X, y)
    ref = _REF[d]
    got = IMPLS[lib](X, y)  # correctness first (and a warm-up)
    near_ties = check_agrees(X, y, got, ref)
    if lib == "transferlab":
        # The score itself, as users call it, equals the plain 1-NN accuracy on this tie-free data.
        with tl.threads(THREADS):
            assert tl.knn_loo(X, y) == float(np.mean(y[ref] == y))
    benchmark.group = f"knn_loo 1-NN N={N} D={d} threads={THREADS}"
    benchmark.extra_info.update({"lib": lib, "N": N, "D": d, "threads": THREADS, "near_ties": near_ties})
    benchmark.pedantic(IMPLS[lib], args=(X, y), rounds=ROUNDS, iterations=1, warmup_rounds=0)
    knn_results.setdefault(d, {})[lib] = {"min_s": benchmark.stats.stats.min, "near_ties": near_ties}


# ------------------------------------------------------------------ peak memory, one call per subprocess
_MEM_SCRIPT = r"""
import json, sys
sys.path.insert(0, sys.argv[4])
import bench_knn as b
lib, n, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
X, y = b.make_data(n, d, seed=d)
import faiss, sklearn.neighbors, threadpoolctl, transferlab  # imports counted in the baseline

def status_kb(field):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(field + ":"))

# Reset the peak (VmHWM) to the current RSS, so that data generation's float64 temporaries do not hide
# the call's own peak (Linux >= 4.0: writing 5 to clear_refs resets the high-water mark).
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status_kb("VmRSS")
b.IMPLS[lib](X, y)
after = status_kb("VmHWM")
print(json.dumps({"delta_mb": (after - before) / 1024.0, "data_mb": X.nbytes / 2**20}))
"""


@pytest.mark.parametrize("lib", LIBS)
def test_peak_memory(lib, knn_results):
    d = 768 if 768 in DIMS else DIMS[0]
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", _MEM_SCRIPT, lib, str(N), str(d), HERE], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    knn_results.setdefault("memory", {"D": d})[lib] = res
    if lib == "transferlab":
        # Far below the N x N float32 matrix the fused kernel never builds.
        assert res["delta_mb"] < 0.05 * N * N * 4 / 2**20 + 64
