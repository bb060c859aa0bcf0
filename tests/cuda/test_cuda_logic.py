"""The CUDA kernels' decompositions, run serially on the CPU through the same host+device headers
(the test-only module transferlab._cuda_logic_testing), against the CPU kernels and float64 numpy. No GPU
needed: this is how CI tests the tiling, schedule, merge and tie logic of csrc/*/cuda."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from transferlab import kernels

from conftest import class_data, digest

# test-only, built with TRANSFERLAB_BUILD_TESTING=ON (CI sets it, and tests/core/test_build.py fails there
# without it); the library never imports it.
cuda_logic = pytest.importorskip("transferlab._cuda_logic_testing",
                                 reason="test-only module: build with TRANSFERLAB_BUILD_TESTING=ON")

_C = kernels.cpu_module()
FUSED = _C.simd_level() in {"avx2", "avx512"}  # the CPU kernel's distance is the same fma chain
TILES = [1, 2, 3, 5, 8, 13, 64, 128]


# ------------------------------------------------------------------ k-NN: the round-robin schedule
@pytest.mark.parametrize("nb", [1, 2, 3, 4, 7, 8, 33])
def test_knn_schedule_covers_each_pair_once_and_rounds_are_matchings(nb):
    sched = cuda_logic.knn_schedule(nb)
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
    got = cuda_logic.knn_loo(X, y, k, tile)
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
        idx, dist, tc, ts = cuda_logic.knn_loo(X, y, 1, tile)
        assert np.all(dist == 0) and np.all(tc == 69)
        np.testing.assert_array_equal(idx[:, 0], np.where(np.arange(70) == 0, 1, 0))  # lowest other index
        np.testing.assert_array_equal(ts, np.bincount(y)[y] - 1)


def test_knn_self_excluded_by_index_and_symmetric_distance():
    X, y = class_data(n=150, d=12, c=3, seed=5)
    idx, dist, _, _ = cuda_logic.knn_loo(X, y.astype(np.int32), 4, 8)
    assert not np.any(idx == np.arange(150)[:, None])
    X64 = X.astype(np.float64)
    ref = ((X64[:, None, :] - X64[None, :, :]) ** 2).sum(-1)
    np.testing.assert_allclose(dist, np.take_along_axis(ref, idx, 1), rtol=1e-4, atol=1e-3)
    np.testing.assert_array_equal(dist, np.sort(dist, axis=1))


def test_knn_without_labels_and_other_dtypes():
    X, y = class_data(n=120, d=9, c=3, seed=8, dtype=np.float64)
    h = digest(X)
    a = cuda_logic.knn_loo(X, None, 3, 16)
    b = cuda_logic.knn_loo(X.astype(np.float32), None, 3, 5)  # float64 is rounded to float32 first
    for u, v in zip(a[:3], b[:3]):
        np.testing.assert_array_equal(u, v)
    assert digest(X) == h
    half = X.astype(np.float16)
    c = cuda_logic.knn_loo(half, y.astype(np.int32), 2, 7)
    d = cuda_logic.knn_loo(half.astype(np.float32), y.astype(np.int32), 2, 64)
    for u, v in zip(c, d):
        np.testing.assert_array_equal(u, v)


def test_knn_bad_arguments():
    X = np.zeros((5, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="k must be"):
        cuda_logic.knn_loo(X, None, 5, 4)
    with pytest.raises(ValueError, match="tile"):
        cuda_logic.knn_loo(X, None, 1, 0)


# ------------------------------------------------------------------ class CSR (leep joint, lda class sums)
@pytest.mark.parametrize("chunks", [0, 1, 2, 7, 1000])
def test_class_rows_is_the_stable_sort_for_any_chunking(chunks):
    rng = np.random.default_rng(chunks)
    y = rng.integers(0, 6, size=777).astype(np.int32)
    y[y == 4] = 5  # an empty class
    order, starts, totals = cuda_logic.class_rows(y, 7, chunks)
    np.testing.assert_array_equal(order, np.argsort(y, kind="stable"))
    np.testing.assert_array_equal(totals, np.bincount(y, minlength=7))
    np.testing.assert_array_equal(starts, np.concatenate([[0], np.cumsum(totals)[:-1]]))


def test_class_rows_rejects_out_of_range_labels():
    with pytest.raises(ValueError, match="labels must be in"):
        cuda_logic.class_rows(np.array([0, 3], dtype=np.int32), 3)


# ------------------------------------------------------------------ LEEP
def _probs(n=300, z=45, c=5, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, size=n).astype(np.int32)
    alpha = np.ones(z) * 0.3
    P = rng.dirichlet(alpha, size=n)
    P[np.arange(n), y * (z // c)] += 2.0  # class structure
    P /= P.sum(axis=1, keepdims=True)
    return P, y


def _joint_row_order(P, y, c):
    """J[c] += P[i] row by row, in row order: the exact float64 order the kernel promises."""
    J = np.zeros((c, P.shape[1]))
    for i in range(P.shape[0]):
        J[y[i]] += P[i]
    return J


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_leep_joint_equals_row_order_sum_bitwise(dtype):
    P, y = _probs(seed=1)
    P = P.astype(dtype)
    h = digest(P, y)
    want = _joint_row_order(P.astype(np.float64), y, 5)
    for chunks in (0, 1, 3, 64):
        got = cuda_logic.leep_joint(P, y, 5, False, None, None, chunks)
        np.testing.assert_array_equal(got, want)
    assert digest(P, y) == h


def test_leep_joint_chunk_accumulation_equals_one_shot_bitwise():
    P, y = _probs(n=257, seed=2)
    one = cuda_logic.leep_joint(P, y, 5, False, None)
    acc = None
    for s in range(0, 257, 50):
        acc = cuda_logic.leep_joint(P[s : s + 50], y[s : s + 50], 5, False, None, acc)
    np.testing.assert_array_equal(acc, one)


def test_leep_row_stats_flags_and_sums():
    P, _ = _probs(n=100, seed=3)
    P[7, 0] = np.nan
    P[9, 2] += 0.5 + P[9, 1]
    P[9, 1] = -0.5  # still sums to 1, but negative
    P[20] *= 1.01
    P[21] *= 0.5
    stats, lse = cuda_logic.leep_row_stats(P, False, 1e-3)
    assert lse is None
    assert (stats["nonfinite_rows"], stats["first_nonfinite_row"]) == (1, 7)
    assert (stats["negative_rows"], stats["first_negative_row"]) == (1, 9)
    assert (stats["bad_sum_rows"], stats["first_bad_sum_row"]) == (2, 20)
    finite = np.delete(P, 7, axis=0).sum(axis=1)
    assert stats["min_row_sum"] == pytest.approx(finite.min(), rel=1e-15)
    assert stats["max_row_sum"] == pytest.approx(finite.max(), rel=1e-15)


def test_leep_logits_lse_joint_eep_match_numpy():
    rng = np.random.default_rng(4)
    n, z, c = 200, 70, 4
    L = (rng.normal(size=(n, z)) * 4).astype(np.float32)
    y = rng.integers(0, c, size=n).astype(np.int32)
    stats, lse = cuda_logic.leep_row_stats(L, True, 1e-3)
    assert stats["nonfinite_rows"] == 0 and stats["negative_rows"] == 0 and stats["bad_sum_rows"] == 0
    L64 = L.astype(np.float64)
    m = L64.max(axis=1, keepdims=True)
    want_lse = (m + np.log(np.exp(L64 - m).sum(axis=1, keepdims=True)))[:, 0]
    np.testing.assert_allclose(lse, want_lse, rtol=1e-14)
    P = np.exp(L64 - lse[:, None])
    J = cuda_logic.leep_joint(L, y, c, True, lse)
    np.testing.assert_allclose(J, _joint_row_order(P, y, c), rtol=1e-13)
    cond = J / J.sum(axis=0, keepdims=True)
    eep = cuda_logic.leep_eep(L, y, c, True, lse, np.ascontiguousarray(cond))
    np.testing.assert_allclose(eep, (P * cond[y]).sum(axis=1), rtol=1e-13)
    with pytest.raises(ValueError, match="row_lse"):
        cuda_logic.leep_joint(L, y, c, True, None)


def test_leep_eep_probs_and_score_matches_classic_formula():
    P, y = _probs(n=333, z=33, c=3, seed=5)
    J = cuda_logic.leep_joint(P, y, 3, False, None) / P.shape[0]
    cond = J / J.sum(axis=0, keepdims=True)
    eep = cuda_logic.leep_eep(P, y, 3, False, None, np.ascontiguousarray(cond))
    # classic LEEP (Nguyen et al.): one-hot GEMM, conditional, log of the gathered expectation
    onehot = np.eye(3)[y]
    Jc = onehot.T @ P / P.shape[0]
    want = np.mean(np.log((P @ (Jc / Jc.sum(axis=0, keepdims=True)).T)[np.arange(333), y]))
    assert np.mean(np.log(eep)) == pytest.approx(want, rel=1e-12)


# ------------------------------------------------------------------ LDA
@pytest.mark.parametrize("tile", [1, 2, 5, 16, 64])
def test_lda_gram_tiles_equal_each_other_and_numpy(tile):
    X, _ = class_data(n=150, d=23, c=3, seed=6)
    h = digest(X)
    rng = np.random.default_rng(6)
    shift = X.astype(np.float64).mean(axis=0)
    s = rng.uniform(0.5, 2.0, size=150)
    got = cuda_logic.lda_gram(X, shift, s, tile)
    ref = cuda_logic.lda_gram(X, shift, s, 64)  # one tile: the plain per-element chain
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(got, got.T)  # the mirror is exact
    U = (X.astype(np.float64) - shift) * s[:, None]
    np.testing.assert_allclose(got, U.T @ U, rtol=1e-12, atol=1e-12)
    assert digest(X) == h


def test_lda_gram_accumulates_and_defaults():
    X, _ = class_data(n=90, d=10, c=3, seed=7, dtype=np.float64)
    one = cuda_logic.lda_gram(X, None, None, 4)
    np.testing.assert_allclose(one, X.T @ X, rtol=1e-13)
    acc = cuda_logic.lda_gram(X[:40], None, None, 3)
    acc = cuda_logic.lda_gram(X[40:], None, None, 3, acc)
    np.testing.assert_array_equal(acc, one)  # chunk after chunk == one shot, bitwise


@pytest.mark.parametrize("chunks", [0, 1, 5])
def test_lda_class_sums_match_numpy(chunks):
    X, y = class_data(n=210, d=17, c=4, seed=8)
    y = y.astype(np.int32)
    rng = np.random.default_rng(8)
    shift = rng.normal(size=17)
    w = rng.uniform(0, 1, size=210)
    counts, sums = cuda_logic.lda_class_sums(X, y, 5, shift, w, chunks)
    np.testing.assert_array_equal(counts, np.bincount(y, minlength=5))
    V = (X.astype(np.float64) - shift) * w[:, None]
    want = np.stack([V[y == c].sum(axis=0) for c in range(5)])
    np.testing.assert_allclose(sums, want, rtol=1e-12, atol=1e-12)
    assert np.all(sums[4] == 0)
    c2, s2 = cuda_logic.lda_class_sums(X, y, 5, None, None, chunks)
    np.testing.assert_allclose(s2[:4], np.stack([X[y == c].astype(np.float64).sum(axis=0) for c in range(4)]),
                               rtol=1e-12)


# ------------------------------------------------------------------ property: any bank, any tile
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 40),
    d=st.integers(1, 5),
    levels=st.integers(1, 4),
    tile=st.integers(1, 20),
    seed=st.integers(0, 2**31 - 1),
    data=st.data(),
)
def test_knn_twin_equals_cpu_kernel_property(n, d, levels, tile, seed, data):
    """Small integer banks (exact distances, many ties and duplicates): the CUDA decomposition gives
    exactly the CPU kernel's neighbours, distances and tie counts for every k and tile edge."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, levels + 1, size=(n, d)).astype(np.float32)
    y = rng.integers(0, 3, size=n).astype(np.int32)
    k = data.draw(st.integers(1, n - 1))
    _check_equal(X, y, k, tile, exact_dist=True)


def test_knn_twin_bfloat16_bits():
    import torch

    X, y = class_data(n=90, d=11, c=3, seed=9)
    t = torch.from_numpy(X).to(torch.bfloat16)
    bits = t.view(torch.int16).numpy().view(np.uint16)
    got = cuda_logic.knn_loo(bits, y.astype(np.int32), 3, 8, True)
    want = cuda_logic.knn_loo(t.float().numpy(), y.astype(np.int32), 3, 64)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_lda_gram_half_inputs_are_exact_upcasts():
    X, _ = class_data(n=60, d=9, c=3, seed=10)
    half = X.astype(np.float16)
    np.testing.assert_array_equal(cuda_logic.lda_gram(half, None, None, 4),
                                  cuda_logic.lda_gram(half.astype(np.float64), None, None, 4))
