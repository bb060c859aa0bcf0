"""Finite but extreme magnitudes (hostile-input issue, defect 5, the kNN part): knn_loo(X * 1e19) gave
0.55 where X gives 1.0 (float32 tile distances overflowed; at 1e-25 they underflowed to 0). Neighbours
do not change under a global scale; a bank outside [2^-40, 2^40] is now rescaled by a power of two
(exact) first, so any finite input gives the neighbours of a moderate copy."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import transferlab as tl
from transferlab.core.arrays import Matrix, as_matrix
from transferlab.scores.knn.rules import max_abs, rescaled_to_unit


def _blobs(n=240, d=16, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 4
    return (rng.normal(size=(4, d))[y] * 0.6 + rng.normal(size=(n, d))).astype(np.float32), y


@pytest.mark.parametrize("scale", [1e19, 1e30, 2.0 ** 60, 1e-25, 1e-35])
@pytest.mark.parametrize("k", [1, 3])
def test_float32_bank_at_any_scale_has_the_moderate_neighbours(scale, k):
    X, y = _blobs()
    want = tl.knn_loo(X, y, k=k, return_details=True)
    got = tl.knn_loo((X.astype(np.float64) * scale).astype(np.float32), y, k=k, return_details=True)
    assert got.score == want.score
    np.testing.assert_array_equal(got.neighbors, want.neighbors)


def test_float64_and_bfloat16_banks_beyond_float32_range():
    X, y = _blobs(seed=1)
    want = tl.knn_loo(X, y, return_details=True)
    got = tl.knn_loo(X.astype(np.float64) * 1e200, y, return_details=True)
    np.testing.assert_array_equal(got.neighbors, want.neighbors)
    Xb = torch.from_numpy(X).to(torch.bfloat16)
    moderate = tl.knn_loo(Xb, y, return_details=True)
    huge = tl.knn_loo(Xb * 2.0 ** 100, y, return_details=True)  # bfloat16 holds it; a power of two scales exactly
    assert huge.score == moderate.score
    np.testing.assert_array_equal(huge.neighbors, moderate.neighbors)


def test_exact_power_of_two_scaling_is_bitwise():
    X, y = _blobs(seed=2)
    want = tl.knn_loo(X, y, k=3, ties="expected", return_details=True)
    for e in (-100, -45, 45, 50, 100):
        got = tl.knn_loo(np.ldexp(X, e), y, k=3, ties="expected", return_details=True)
        assert got.score == want.score
        np.testing.assert_array_equal(got.neighbors, want.neighbors)
        if abs(e) <= 50:  # distances come back in the bank's own scale (float32 holds them here)
            np.testing.assert_array_equal(got.distances, np.ldexp(want.distances, 2 * e))


def test_moderate_banks_are_not_copied():
    X, _ = _blobs()
    m = as_matrix(X)
    assert rescaled_to_unit(m) == (m, 0) and rescaled_to_unit(m)[0] is m
    assert rescaled_to_unit(as_matrix(np.zeros((3, 2), np.float32)))[1] == 0


def test_the_device_path_rescales_with_torch():
    # A CPU tensor labelled "cuda" runs the torch branch (the GPU path of the same code).
    X, _ = _blobs()
    t = torch.from_numpy(X.astype(np.float64) * 1e50)
    m = Matrix(t, "cuda", "float64", "features")
    out, e = rescaled_to_unit(m)
    assert isinstance(out.data, torch.Tensor) and 0.5 <= max_abs(out) < 1.0
    host, e_host = rescaled_to_unit(as_matrix(X.astype(np.float64) * 1e50))
    assert e == e_host
    np.testing.assert_array_equal(out.data.numpy(), host.data)
