"""The CUDA kernels' decompositions, run serially on the CPU through the same host+device headers
(_C._cuda_logic_*), against the CPU kernels and float64 numpy. No GPU needed: this is how CI tests the
tiling, schedule, merge and tie logic of csrc/*/cuda."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from transferlab import _backend

from conftest import class_data, digest

_C = _backend.cpu_module()
FUSED = _C.simd_level() in {"avx2", "avx512"}  # the CPU kernel's distance is the same fma chain
TILES = [1, 2, 3, 5, 8, 13, 64, 128]


# ------------------------------------------------------------------ k-NN: the round-robin schedule
@pytest.mark.parametrize("nb", [1, 2, 3, 4, 7, 8, 33])
def test_knn_schedule_covers_each_pair_once_and_rounds_are_matchings(nb):
    sched = _C._cuda_logic_knn_schedule(nb)
    pairs = [tuple(p) for p in sched[:, 1:]]
    assert all(i < j for i, j in pairs)
    assert sorted(pairs) == list(itertools.combinations(range(nb), 2))  # every pair exactly once
    for r in np.unique(sched[:, 0]):
        blocks = sched[sched[:, 0] == r][:, 1:].ravel()
        assert len(set(blocks.tolist())) == blocks.size, f"round {r} touches a block twice"
    rounds = 0 if nb < 2 else nb - 1 + nb % 2
    assert sched.shape[0] == 0 or sched[:, 0].max() == rounds - 1


# ------------------------------------------------------------------ k-NN: results vs _C.knn_loo
def _duplicate_bank(seed=0, n=160, d=6):
    """Integer-valued rows with many exact duplicates and equidistant neighbours: every float32
    distance is exact, so CPU and CUDA orders must agree bitwise whatever the accumulation order."""
    rng = np.random.default_rng(seed)
    base = rng.integers(-3, 4, size=(n // 4, d))
    X = base[rng.integers(0, base.shape[0], size=n)].astype(np.float32)
    y = rng.integers(0, 3, size=n).astype(np.int32)
    return X, y


def _check_equal(X, y, k, tile, exact_dist):
    want = _C.knn_loo(X, y, k, False, 1)
    got = _C._cuda_logic_knn(X, y, k, tile)
    names = ("index", "dist", "tie_count", "tie_same")
    for name, g, w in zip(names, got, want):
        if name == "dist" and not exact_dist:
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
        elif name != "index" or exact_dist:
            np.testing.assert_array_equal(g, w, err_msg=f"{name} differs (k={k}, tile={tile})")


@pytest.mark.parametrize("tile", TILES)
@pytest.mark.parametrize("k", [1, 2, 5, 17])
def test_knn_duplicates_equal_cpu_kernel_exactly(tile, k):
    X, y = _duplicate_bank(seed=tile * 31 + k)
    _check_equal(X, y, k, tile, exact_dist=True)


@pytest.mark.parametrize("tile", TILES)
def test_knn_random_equal_cpu_kernel(tile):
    X, y = class_data(n=203, d=37, c=4, sep=0.7, seed=tile)
    for k in (1, 3, 10):
        _check_equal(X, y.astype(np.int32), k, tile, exact_dist=FUSED)


@pytest.mark.parametrize("n", [2, 3, 9])
def test_knn_tiny_banks_and_k_max(n):
    rng = np.random.default_rng(n)
    X = rng.integers(0, 2, size=(n, 3)).astype(np.float32)
    y = rng.integers(0, 2, size=n).astype(np.int32)
    for k in range(1, n):
        for tile in (1, 2, 4, 64):
            _check_equal(X, y, k, tile, exact_dist=True)


def test_knn_all_rows_identical_counts_every_tie():
    X = np.ones((70, 5), dtype=np.float32)
    y = (np.arange(70) % 3).astype(np.int32)
    for tile in (1, 4, 64):
        idx, dist, tc, ts = _C._cuda_logic_knn(X, y, 1, tile)
        assert np.all(dist == 0) and np.all(tc == 69)
        np.testing.assert_array_equal(idx[:, 0], np.where(np.arange(70) == 0, 1, 0))  # lowest other index
        np.testing.assert_array_equal(ts, np.bincount(y)[y] - 1)


def test_knn_self_excluded_by_index_and_symmetric_distance():
    X, y = class_data(n=150, d=12, c=3, seed=5)
    idx, dist, _, _ = _C._cuda_logic_knn(X, y.astype(np.int32), 4, 8)
    assert not np.any(idx == np.arange(150)[:, None])
    X64 = X.astype(np.float64)
    ref = ((X64[:, None, :] - X64[None, :, :]) ** 2).sum(-1)
    np.testing.assert_allclose(dist, np.take_along_axis(ref, idx, 1), rtol=1e-4, atol=1e-3)
    np.testing.assert_array_equal(dist, np.sort(dist, axis=1))


def test_knn_without_labels_and_other_dtypes():
    X, y = class_data(n=120, d=9, c=3, seed=8, dtype=np.float64)
    h = digest(X)
    a = _C._cuda_logic_knn(X, None, 3, 16)
    b = _C._cuda_logic_knn(X.astype(np.float32), None, 3, 5)  # float64 is rounded to float32 first
    for u, v in zip(a[:3], b[:3]):
        np.testing.assert_array_equal(u, v)
    assert digest(X) == h
    half = X.astype(np.float16)
    c = _C._cuda_logic_knn(half, y.astype(np.int32), 2, 7)
    d = _C._cuda_logic_knn(half.astype(np.float32), y.astype(np.int32), 2, 64)
    for u, v in zip(c, d):
        np.testing.assert_array_equal(u, v)


def test_knn_bad_arguments():
    X = np.zeros((5, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="k must be"):
        _C._cuda_logic_knn(X, None, 5, 4)
    with pytest.raises(ValueError, match="tile"):
        _C._cuda_logic_knn(X, None, 1, 0)
