"""TransRate (normalized default and the authors' original function) vs the float64 oracle and the
published function; properties; bad input."""
from __future__ import annotations

import numpy as np
import pytest

from transferlab import transrate
from transferlab.reference.transrate import transrate as oracle

from conftest import TOL
from _score_checks import (check_bad_inputs, check_dtypes_and_layouts, check_label_remap_and_row_order,
                           check_no_mutation, class_data, digits_features, rel)
from bench.baselines.transrate_published import transrate_published


@pytest.mark.parametrize("n,d,c,sep", [(600, 32, 5, 0.3), (2000, 100, 10, 0.2), (300, 150, 6, 0.3), (90, 200, 3, 1.0)])
def test_matches_oracle_random(n, d, c, sep):
    # (300, 150): classes with fewer rows than D use the row Gram; (90, 200): N < D everywhere.
    X, y = class_data(n=n, d=d, c=c, sep=sep, seed=n + d)
    got = transrate(X, y)
    assert rel(got, oracle(X, y)) < TOL["oracle_rel"]
    orig = transrate(X, y, variant="original")
    assert rel(orig, oracle(X, y, variant="original")) < TOL["oracle_rel"]
    assert rel(orig, transrate_published(X, y)) < TOL["published_rel"]


def test_digits():
    H, y = digits_features()
    H = H[:, H.max(axis=0) > 0]
    assert rel(transrate(H, y), oracle(H, y)) < TOL["oracle_rel"]
    assert rel(transrate(H, y, variant="original"), transrate_published(H, y)) < TOL["published_rel"]


def test_eps_and_separation():
    Xa, y = class_data(n=800, d=16, c=4, sep=0.2, seed=1)
    Xb, _ = class_data(n=800, d=16, c=4, sep=3.0, seed=1)
    assert transrate(Xb, y) > transrate(Xa, y) > 0  # labels explain more of separated features
    assert rel(transrate(Xa, y, eps=1e-2), oracle(Xa, y, eps=1e-2)) < TOL["oracle_rel"]
    assert transrate(Xa, y, device="reference") == oracle(Xa, y)
    with pytest.raises(ValueError, match="variant"):
        transrate(Xa, y, variant="paper")
    with pytest.raises(ValueError, match="eps"):
        transrate(Xa, y, eps=0.0)


def test_zero_row_is_an_error():
    X, y = class_data(n=100, d=8, c=3, seed=2)
    X[5] = 0
    with pytest.raises(ValueError, match="all-zero row"):
        transrate(X, y)
    assert np.isfinite(transrate(X, y, variant="original"))


def test_properties_no_mutation_bad_inputs(tmp_path):
    X, y = class_data(n=500, d=24, c=4, sep=1.0, seed=3)
    a, b = check_no_mutation(transrate, X, y, tmp_path)
    assert a == pytest.approx(b, rel=1e-6)  # the float32 input is normalised in float64 either way
    check_label_remap_and_row_order(transrate, X, y)
    check_dtypes_and_layouts(transrate, X, y)
    # Row normalisation makes the default invariant to a per-row positive scale.
    s = np.random.default_rng(1).uniform(0.5, 2.0, size=(500, 1))
    assert transrate(X * s, y) == pytest.approx(a, rel=1e-6)
    Xs, ys = class_data(n=200, d=8, c=3, seed=2)
    check_bad_inputs(transrate, Xs, ys)


def test_reference_rejects_rows_it_cannot_normalise():
    # A tiny uint8 bank with an all-zero row used to make the oracle's Z NaN; LAPACK's LU of a NaN
    # matrix returns an arbitrary determinant sign, so `device="reference"` died on a bare assert.
    X = np.array([[0, 0, 1, 1, 1, 1, 0, 0], [1, 1, 0, 1, 1, 1, 1, 1], [0, 0, 1, 0, 0, 0, 1, 0],
                  [0, 0, 1, 1, 1, 0, 1, 0], [0, 1, 1, 1, 1, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0, 0],
                  [0, 0, 1, 0, 0, 1, 0, 1]], dtype=np.uint8)
    y = np.array([0, 1, 0, 0, 0, 0, 1])
    for device in ("cpu", "reference"):
        with pytest.raises(ValueError, match=r"1 all-zero row\(s\) \(first at row 5\)"):
            transrate(X, y, device=device)
    # The original variant does not normalise: finite, and the same on both paths.
    assert transrate(X, y, variant="original") == pytest.approx(
        transrate(X, y, variant="original", device="reference"), rel=1e-9)
    keep = np.arange(7) != 5
    assert transrate(X[keep], y[keep], device="reference") == oracle(X[keep], y[keep])
    assert np.isfinite(oracle(X[keep], y[keep]))
    # Every row in one direction: after centring each equals the mean direction.
    Xd = np.array([[1, 0], [2, 0], [3, 0], [5, 0]], dtype=np.uint8)
    for device in ("cpu", "reference"):
        with pytest.raises(ValueError, match="equals the mean direction"):
            transrate(Xd, np.array([0, 1, 0, 1]), device=device)


def test_tiny_uint8_banks_reference_never_asserts():
    rng = np.random.default_rng(1)
    for _ in range(300):
        n, d = int(rng.integers(3, 10)), int(rng.integers(2, 10))
        X = rng.integers(0, 2, size=(n, d)).astype(np.uint8)
        y = np.r_[0, 1, rng.integers(0, 2, n - 2)]
        try:
            got = transrate(X, y, device="reference")
        except ValueError as e:
            assert "all-zero row" in str(e) or "mean direction" in str(e)
        else:
            assert np.isfinite(got)
