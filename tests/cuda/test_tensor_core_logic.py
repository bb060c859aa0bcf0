"""The tensor-core (TF32) leave-one-out k-NN's bound and candidate logic (csrc/knn/cuda/knn_tc.h), run
serially on the CPU by the test-only module transferlab._cuda_logic_testing. No GPU needed.

* The bound: the constants equal the header's formula (re-derived here in float64), and on random,
  large- and small-magnitude and adversarial banks every pair's |approx - exact| is <= the bound, while
  the worst ratio is far from 0 (the bound is not vacuous).
* The candidates: knn_loo_tc (TF32 pass, candidates, exact re-check, fallback) returns exactly the exact
  path's twin (cuda_logic.knn_loo), bitwise, on near ties, duplicates, all-equal rows, k > 1, every tile;
  on integer-valued banks (exact float32 distances) it equals a float64 brute-force oracle; the fallback
  triggers where it must (all-equal rows, a tiny buffer, inputs outside the bound's range).
"""
from __future__ import annotations

import numpy as np
import pytest

# test-only, built with TRANSFERLAB_BUILD_TESTING=ON (CI sets it, and tests/core/test_build.py fails there
# without it); the library never imports it.
cuda_logic = pytest.importorskip("transferlab._cuda_logic_testing",
                                 reason="test-only module: build with TRANSFERLAB_BUILD_TESTING=ON")


U = 2.0**-24
NAMES = ("index", "dist", "tie_count", "tie_same")


# ------------------------------------------------------------------ the bound's constants
def _formula(d):
    """knn_tc.h's header derivation, in float64."""
    t, gD = 2.0**-10, d * U / (1 - d * U)
    K = gD + (2 * t + t * t) + (4 * d + 64) * 2.0**-23 * (1 + t) ** 2
    pscale = 1 / ((1 - U) ** 3 * (1 - gD))
    c1 = (2 * K + 2 * U * (1 + gD) + 4 * U * (1 + gD + K)) * pscale
    return c1, 3 * U, (d + 64) * 2.0**-124


@pytest.mark.parametrize("d", [1, 7, 64, 768, 2048, 4096])
def test_bound_constants_cover_the_derivation(d):
    got = cuda_logic.knn_tc_bound(d)
    for g, w in zip(got, _formula(d)):
        assert g >= w, (d, g, w)  # rounded up, never down
        assert g <= w * (1 + 2.0**-12), (d, g, w)  # and only by the stated slack


def test_bound_size_for_unit_rows_at_2048():
    c1, c2, _ = cuda_logic.knn_tc_bound(2048)
    assert 5.5e-3 < c1 + 2 * c2 < 6.5e-3  # the header's "B ~ 6.1e-3 for unit rows"


# ------------------------------------------------------------------ the bound holds and is not vacuous
def _ratio(X, truncate=False):
    A, B, E, lo, up, in_range = cuda_logic.knn_tc_intervals(np.ascontiguousarray(X, dtype=np.float32),
                                                           truncate=truncate)
    assert in_range
    assert np.all(np.isfinite(B)) and np.all(B > 0)
    assert np.all(lo <= E) and np.all(E <= up)  # the float32 interval itself, after its own roundings
    return float(np.max(np.abs(A - E) / B))


def _banks():
    rng = np.random.default_rng(7)
    g = rng.standard_normal((120, 96)).astype(np.float32)
    unit = g / np.linalg.norm(g, axis=1, keepdims=True)
    pos = np.abs(g) + 1.0  # all positive: every product's rounding error has the same sign
    # Inputs just below the next TF32 value: truncation loses almost a TF32 ulp, the same way in every term.
    hi = np.full((6, 512), np.float32(1 + 2.0**-10 - 2.0**-23), dtype=np.float32) * (1 + np.arange(6))[:, None]
    lo = np.full((6, 512), np.float32(1 + 0.999 * 2.0**-11), dtype=np.float32) * (1 + np.arange(6))[:, None]
    mixed = g * np.float32(2.0) ** rng.integers(-40, 40, size=(120, 1)).astype(np.float32)
    return {
        "gaussian": g,
        "unit": unit,
        "positive": pos,
        "large": g * np.float32(2.0**45),
        "small": g * np.float32(2.0**-45),
        "mixed_scales": mixed,
        "trunc_adversarial": hi,
        "rna_adversarial": lo,
        "near_duplicates": np.repeat(unit[:10], 4, axis=0) * (1 + rng.standard_normal((40, 1)).astype(np.float32) * 1e-6),
    }


@pytest.mark.parametrize("truncate", [False, True])
@pytest.mark.parametrize("name", list(_banks()))
def test_bound_bounds_the_error(name, truncate):
    X = _banks()[name]
    r = _ratio(X, truncate)
    assert r <= 1.0, f"{name}: |approx - exact| / bound = {r}"
    assert r > 1e-3, f"{name}: bound vacuous here (worst ratio {r})"


def test_bound_is_tight_on_adversarial_data():
    # All products round the same way: the input term dominates and is attained to within a factor ~2.
    assert _ratio(_banks()["trunc_adversarial"], truncate=True) > 0.3
    assert _ratio(_banks()["rna_adversarial"]) > 0.3


def test_out_of_range_inputs_are_flagged():
    X = np.ones((4, 3), dtype=np.float32)
    for v in (2.0**51, 2.0**-61, np.inf):
        Y = X.copy()
        Y[2, 1] = v
        assert not cuda_logic.knn_tc_intervals(Y)[5], v
    Y = X.copy()
    Y[2, 1] = 0.0  # zero is exact in every format
    assert cuda_logic.knn_tc_intervals(Y)[5]


# ------------------------------------------------------------------ candidates + re-check == exact path
def _tc(X, y, k, tile, **kw):
    return cuda_logic.knn_loo_tc(np.ascontiguousarray(X, dtype=np.float32), y, k, tile, **kw)


def _assert_exact(X, y, k, tile, **kw):
    got = _tc(X, y, k, tile, **kw)
    want = cuda_logic.knn_loo(np.ascontiguousarray(X, dtype=np.float32), y, k, tile)
    for name, g, w in zip(NAMES, got[:4], want):
        np.testing.assert_array_equal(g, w, err_msg=f"{name} differs (k={k}, tile={tile})")
    return got


def _oracle(X, y, k):
    """float64 brute force: neighbours by (distance, index), self excluded; tie counts at the k-th."""
    X = X.astype(np.float64)
    D = (X * X).sum(1)[:, None] + (X * X).sum(1)[None, :] - 2 * X @ X.T
    n = X.shape[0]
    idx = np.empty((n, k), dtype=np.int64)
    tc, ts = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    for i in range(n):
        j = np.array([j for j in range(n) if j != i])
        order = np.lexsort((j, D[i, j]))[:k]
        idx[i] = j[order]
        thr = D[i, idx[i, -1]]
        at = j[D[i, j] == thr]
        tc[i], ts[i] = at.size, int(np.sum(y[at] == y[i]))
    return idx, tc, ts


def _integer_bank(seed, n=90, d=5):
    """Integer rows with many duplicates and equidistant neighbours: float32 distances are exact."""
    rng = np.random.default_rng(seed)
    base = rng.integers(-3, 4, size=(n // 5, d))
    X = base[rng.integers(0, base.shape[0], size=n)].astype(np.float32)
    return X, rng.integers(0, 3, size=n).astype(np.int32)


@pytest.mark.parametrize("k", [1, 2, 5, 17])
@pytest.mark.parametrize("tile", [1, 3, 8, 64])
def test_duplicates_equal_float64_oracle_and_exact_path(k, tile):
    X, y = _integer_bank(seed=k * 7 + tile)
    got = _assert_exact(X, y, k, tile)
    idx, tc, ts = _oracle(X, y, k)
    np.testing.assert_array_equal(got[0], idx)
    np.testing.assert_array_equal(got[2], tc)
    np.testing.assert_array_equal(got[3], ts)


@pytest.mark.parametrize("k", [1, 3, 10])
def test_separated_data_needs_few_candidates_and_no_fallback(k):
    rng = np.random.default_rng(k)
    X = rng.standard_normal((300, 64)).astype(np.float32)
    y = rng.integers(0, 4, size=300).astype(np.int32)
    got = _assert_exact(X, y, k, 32)
    assert got[4].sum() == 0
    assert got[5].min() >= k and got[5].mean() < k + 3  # the TF32 pass excluded nearly everything


def test_all_equal_rows_fall_back_and_stay_exact():
    X = np.full((80, 16), 0.37, dtype=np.float32)
    y = (np.arange(80) % 3).astype(np.int32)
    got = _assert_exact(X, y, 4, 16)
    assert got[4].all()  # 79 candidates each: more than the buffer holds
    np.testing.assert_array_equal(got[2], np.full(80, 79))  # every other row ties at distance 0


def _needed(X, k, truncate=False):
    """Per row, from the pairwise intervals (numpy): how many j != i have lo <= the k-th smallest up."""
    _, _, _, lo, up, _ = cuda_logic.knn_tc_intervals(np.ascontiguousarray(X, dtype=np.float32), truncate=truncate)
    n = lo.shape[0]
    off = ~np.eye(n, dtype=bool)
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        u = np.sort(up[i, off[i]])[k - 1]
        out[i] = np.sum(lo[i, off[i]] <= u)
    return out


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("tile", [1, 7, 64])
def test_candidates_are_exactly_the_rows_the_bound_cannot_exclude(k, tile):
    rng = np.random.default_rng(k + tile)
    X = np.concatenate([rng.standard_normal((50, 8)), np.repeat(rng.standard_normal((5, 8)), 3, 0)])
    X = (X + rng.standard_normal(X.shape) * 1e-4).astype(np.float32)  # near, not exact, duplicates
    y = rng.integers(0, 3, size=X.shape[0]).astype(np.int32)
    got = _assert_exact(X, y, k, tile)
    assert got[4].sum() == 0
    np.testing.assert_array_equal(got[5], _needed(X, k))


@pytest.mark.parametrize("cap", [3, 6, 8])
def test_small_buffer_falls_back_exactly_where_candidates_exceed_it(cap):
    # 60 scattered rows and 10 rows repeated 8 times (7 others at distance 0 each).
    rng = np.random.default_rng(3)
    X = np.concatenate([rng.standard_normal((60, 6)), np.repeat(rng.standard_normal((10, 6)), 8, 0)])
    X = X.astype(np.float32)
    y = rng.integers(0, 3, size=X.shape[0]).astype(np.int32)
    got = _assert_exact(X, y, 2, 8, cap=cap)
    need = _needed(X, 2)
    np.testing.assert_array_equal(got[4].astype(bool), need > cap)
    assert got[4][60:].all() == (cap < 7) and not got[4][:60].all()
    idx, tc, ts = _oracle(X, y, 2)
    np.testing.assert_array_equal(got[0], idx)
    np.testing.assert_array_equal(got[2], tc)
    np.testing.assert_array_equal(got[3], ts)


@pytest.mark.parametrize("k", [1, 4])
@pytest.mark.parametrize("truncate", [False, True])
def test_near_ties_below_tf32_resolution(k, truncate):
    # Neighbours of each anchor differ from it by perturbations far below a TF32 ulp (2^-10), so the
    # TF32 pass cannot order them; the exact re-check must reproduce the float32 order and ties.
    rng = np.random.default_rng(11)
    anchors = rng.standard_normal((6, 48)).astype(np.float32)
    rows = []
    for a in anchors:
        rows.append(a)
        for s in range(8):
            b = a.copy()
            b[s % 48] += np.float32(2.0**-16 * (1 + s % 3))
            rows.append(b)
    X = np.stack(rows).astype(np.float32)
    y = rng.integers(0, 2, size=X.shape[0]).astype(np.int32)
    got = _assert_exact(X, y, k, 5, truncate=truncate)
    assert got[4].sum() == 0 and got[5].max() >= 8  # the whole near-tie cluster was re-checked


def test_out_of_range_bank_runs_the_exact_path_whole():
    X, y = _integer_bank(seed=5)
    X[0, 0] = 2.0**52
    got = _assert_exact(X, y, 3, 8)
    assert got[4].all()


def test_without_labels_and_validation():
    X, y = _integer_bank(seed=1)
    a = _tc(X, y, 3, 8)
    b = _tc(X, None, 3, 8)
    for g, w in zip(a[:3], b[:3]):
        np.testing.assert_array_equal(g, w)
    assert not b[3].any()
    with pytest.raises(ValueError, match="k must be in"):
        _tc(X, y, X.shape[0], 8)
    with pytest.raises(ValueError, match="cap"):
        _tc(X, y, 3, 8, cap=2)


def test_half_and_double_inputs_are_rounded_as_the_exact_path():
    import torch

    X, y = _integer_bank(seed=9)
    X = X * np.float32(0.3) + np.float32(0.01)
    t = torch.from_numpy(X).to(torch.bfloat16)
    bits = t.view(torch.int16).numpy().view(np.uint16)
    got = cuda_logic.knn_loo_tc(bits, y, 3, 8, is_bf16=True)
    want = cuda_logic.knn_loo(t.float().numpy(), y, 3, 8)
    for name, g, w in zip(NAMES, got[:4], want):
        np.testing.assert_array_equal(g, w, err_msg=f"bf16 {name}")
    X64 = X.astype(np.float64) + 1e-9  # rounded to float32 first, as the exact path does
    got = cuda_logic.knn_loo_tc(X64, y, 3, 8)
    want = cuda_logic.knn_loo(X64, y, 3, 8)
    for name, g, w in zip(NAMES, got[:4], want):
        np.testing.assert_array_equal(g, w, err_msg=f"float64 {name}")


# ------------------------------------------------------------------ property: any bank, any tile, any buffer
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 40),
    d=st.integers(1, 6),
    levels=st.integers(1, 4),
    noise=st.sampled_from([0.0, 2.0**-20, 1e-3]),
    tile=st.integers(1, 20),
    extra=st.integers(0, 6),
    truncate=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
    data=st.data(),
)
def test_tc_equals_exact_path_property(n, d, levels, noise, tile, extra, truncate, seed, data):
    """Small banks full of ties and near ties, any tile edge and candidate buffer: the TF32 pass with its
    re-check and fallback is bitwise the exact path, and a row falls back iff its candidates exceed the buffer."""
    rng = np.random.default_rng(seed)
    X = (rng.integers(0, levels + 1, size=(n, d)) + noise * rng.standard_normal((n, d))).astype(np.float32)
    y = rng.integers(0, 3, size=n).astype(np.int32)
    k = data.draw(st.integers(1, n - 1))
    got = _assert_exact(X, y, k, tile, cap=k + extra, truncate=truncate)
    np.testing.assert_array_equal(got[4].astype(bool), _needed(X, k, truncate) > k + extra)
