"""The cross k-NN kernel (``_C.knn_cross``, csrc/knn/knn_cross.h) on its work splits.

The kernel splits its work over candidate tiles, and over groups of query tiles when the candidate tiles
are few; every thread keeps private lists that are min-merged at the end. These tests pin the contract on
each split: lists, distances and tie counts bitwise equal for any thread count, equal to an oracle built
from the scalar distance twin (``_C.knn_pair_dist``, bitwise the kernel's distance) with the (dist, index)
order and tie rule of knn_cross.h, and equal to ``knn_loo``'s full lists. Data: small-integer features, so
that exact duplicates and equal distances are everywhere (ties are the hard part of the merge).
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import transferlab as tl
from transferlab import kernels

_C = kernels.cpu_module()
THREADS = (1, 2, 3, 8)
HERE = os.path.dirname(os.path.abspath(__file__))


def tied_bank(n: int, d: int = 5, seed: int = 0):
    """Features in {0, 1, 2}: many duplicate rows and many equal distances; 4 classes."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 3, size=(n, d)).astype(np.float32)
    X[n // 2 : n // 2 + 20] = X[:20]  # explicit duplicates far apart in row order
    y = rng.integers(0, 4, size=n).astype(np.int32)
    return X, y


def oracle(X, y, qrows, crows, k):
    """(idx, dist, found, tie_count, tie_same) of the query rows over the candidate rows (global indices),
    self excluded by index, from the scalar twin's distances: a plain sort by (dist, index)."""
    nq = len(qrows)
    idx = np.full((nq, k), -1, dtype=np.int64)
    dist = np.full((nq, k), np.inf, dtype=np.float32)
    found = np.zeros(nq, dtype=np.int64)
    tc = np.zeros(nq, dtype=np.int64)
    ts = np.zeros(nq, dtype=np.int64)
    for r, i in enumerate(qrows):
        cands = sorted((_C.knn_pair_dist(X, int(i), int(j), False), int(j)) for j in crows if j != i)
        f = min(k, len(cands))
        found[r] = f
        for p in range(f):
            dist[r, p], idx[r, p] = cands[p]
        if f:
            bd = cands[f - 1][0]
            at = [j for dj, j in cands if dj == bd]
            tc[r] = len(at)
            ts[r] = sum(int(y[j] == y[i]) for j in at)
    return idx, dist, found, tc, ts


def assert_same(out, ref, what):
    for name, a, b in zip(("idx", "dist", "found", "tie_count", "tie_same"), out, ref):
        assert np.array_equal(a, b), f"{what}: {name} differs"


@pytest.mark.parametrize("k", [1, 4])
def test_few_queries_many_candidate_tiles(k):
    # 7 queries (one query tile) against 1500 rows (several candidate tiles): the candidate split.
    X, y = tied_bank(1500)
    q0 = 700
    Q = X[q0 : q0 + 7]
    ref = oracle(X, y, range(q0, q0 + 7), range(1500), k)
    for t in THREADS:
        out = _C.knn_cross(Q, q0, X, y, k, False, t)
        assert_same(out, ref, f"threads={t}")


@pytest.mark.parametrize("k", [1, 3])
def test_many_query_tiles_few_candidates(k):
    # 700 query rows (3 query tiles) against 40 candidates (one tile): the query tiles are split in groups.
    X, y = tied_bank(800, seed=1)
    c0 = 700
    C = X[c0:]
    ref = oracle(X, y, range(700), range(c0, 800), k)
    for t in THREADS:
        out = _C.knn_cross(X[:700], 0, C, y[c0:], k, False, t, c0, y[:700])
        assert_same(out, ref, f"threads={t}")


def test_overlapping_blocks_exclude_self_by_index():
    # Query rows inside the candidate block, with duplicates of themselves elsewhere: self (distance 0)
    # is excluded by index, the duplicates stay (distance 0 too).
    X, y = tied_bank(900, seed=2)
    ref = oracle(X, y, range(10, 30), range(900), 2)
    for t in THREADS:
        assert_same(_C.knn_cross(X[10:30], 10, X, y, 2, False, t), ref, f"threads={t}")
    assert np.all(ref[1][:10, 0] == 0.0)  # rows 10..19 are duplicated at 460..469: distance 0 listed


@pytest.mark.parametrize("k", [1, 5])
def test_row_index_scattered_queries_equal_the_full_kernel(k):
    X, y = tied_bank(1200, seed=3)
    full = _C.knn_loo(X, y, k, False, 2)
    rows = np.sort(np.random.default_rng(0).choice(1200, size=37, replace=False)).astype(np.int64)
    rows[0] = 5  # a query with a duplicate far away (row 605)
    rows = np.unique(rows)
    Q, ql = np.ascontiguousarray(X[rows]), np.ascontiguousarray(y[rows])
    for t in THREADS:
        idx, dist, found, tc, ts = _C.knn_cross(Q, 0, X, y, k, False, t, 0, ql, False, rows)
        assert np.all(found == k)
        for name, a, b in (("idx", idx, full[0][rows]), ("dist", dist, full[1][rows]),
                           ("tie_count", tc, full[2][rows]), ("tie_same", ts, full[3][rows])):
            assert np.array_equal(a, b), f"threads={t}: {name} differs from knn_loo"


def test_more_query_rows_than_one_super_chunk():
    # Over 16384 query rows the kernel packs and lists them in super-chunks, merged into the output after
    # each: contiguous (row offset) and scattered (row_index) queries both equal knn_loo's lists.
    rng = np.random.default_rng(7)
    n = 17000
    X = rng.integers(0, 4, size=(n, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=n).astype(np.int32)
    full = _C.knn_loo(X, y, 2, False, 2)
    rows = np.delete(np.arange(n, dtype=np.int64), [5, 9000])
    for t in (1, 3):
        a = _C.knn_cross(X, 0, X, y, 2, False, t)
        assert_same(a, (full[0], full[1], np.full(n, 2), full[2], full[3]), f"contiguous, threads={t}")
        b = _C.knn_cross(np.ascontiguousarray(X[rows]), 0, X, y, 2, False, t, 0, y[rows], False, rows)
        assert_same(b, (full[0][rows], full[1][rows], np.full(rows.size, 2), full[2][rows], full[3][rows]),
                    f"row_index, threads={t}")


def test_back_lists_independent_of_threads():
    # both_sides on two disjoint blocks: the back lists (candidates' lists over the queries) too.
    X, y = tied_bank(1000, seed=4)
    ref_f = oracle(X, y, range(0, 300), range(300, 1000), 3)
    ref_b = oracle(X, y, range(300, 1000), range(0, 300), 3)
    for t in THREADS:
        f, b = _C.knn_cross(X[:300], 0, X[300:], y[300:], 3, False, t, 300, y[:300], True)
        assert_same(f, ref_f, f"forward, threads={t}")
        assert_same(b, ref_b, f"back, threads={t}")


@pytest.mark.parametrize("dtype", [np.float64, np.float16])
def test_converted_dtypes_match_knn_loo(dtype):
    X, y = tied_bank(700, seed=5)
    Xd = X.astype(dtype)
    full = _C.knn_loo(Xd, y, 2, False, 2)
    rows = np.arange(3, 700, 29, dtype=np.int64)
    for t in (1, 3):
        idx, dist, _, tc, ts = _C.knn_cross(np.ascontiguousarray(Xd[rows]), 0, Xd, y, 2, False, t, 0, y[rows], False,
                                            rows)
        assert np.array_equal(idx, full[0][rows]) and np.array_equal(dist, full[1][rows])
        assert np.array_equal(tc, full[2][rows]) and np.array_equal(ts, full[3][rows])


def test_knn_loo_few_queries_equals_full_details_for_any_thread_count():
    X, y = tied_bank(1300, seed=6)
    full = tl.knn_loo(X, y, k=3, return_details=True)
    rows = np.array([1299, 4, 650, 17, 660])  # unsorted, scattered
    for t in (1, 2, 5):
        with tl.threads(t):
            r = tl.knn_loo(X, y, k=3, queries=rows, return_details=True)
        assert np.array_equal(r.neighbors, full.neighbors[rows])
        assert np.array_equal(r.distances, full.distances[rows])
        assert np.array_equal(r.correct, full.correct[rows])
        assert r.score == float(full.correct[rows].mean())


def test_row_index_bad_arguments():
    X, y = tied_bank(50)
    rows = np.arange(5, dtype=np.int64)
    with pytest.raises(ValueError, match="row_index cannot be combined with both_sides"):
        _C.knn_cross(X[:5], 0, X, y, 1, False, 1, 0, y[:5], True, rows)
    with pytest.raises(ValueError, match="needs block_labels"):
        _C.knn_cross(X[:5], 0, X, y, 1, False, 1, 0, None, False, rows)
    with pytest.raises(ValueError, match="row_index must be 1-D of length 5"):
        _C.knn_cross(X[:5], 0, X, y, 1, False, 1, 0, y[:5], False, rows[:4])
    with pytest.raises(ValueError, match="row_index must hold row indices >= 0"):
        _C.knn_cross(X[:5], 0, X, y, 1, False, 1, 0, y[:5], False, rows - 1)


def test_simd_level_is_the_requested_one():
    # Guards test_other_simd_levels below: the subprocess really runs at the level it asked for.
    if "TRANSFERLAB_SIMD" in os.environ:
        assert _C.simd_level() == os.environ["TRANSFERLAB_SIMD"]


@pytest.mark.parametrize("level", ["generic", "avx2"])
def test_other_simd_levels(level):
    # Each ISA has its own micro-kernel and tile scan (knn_internal.h); this process runs the best one, so the
    # split and merge tests above run again at the lower levels, in a subprocess (the level is read at import).
    env = dict(os.environ, TRANSFERLAB_SIMD=level)
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", os.path.abspath(__file__),
                          "-k", "not other_simd_levels"], env=env, cwd=HERE, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
