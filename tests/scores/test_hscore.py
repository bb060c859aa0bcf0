"""H-score and regularised H-score vs their float64 oracles and the published algorithms; the N <= D
warning; properties; bad input."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from transferlab import hscore, reg_hscore
from transferlab.reference.hscore import hscore as h_oracle, reg_hscore as rh_oracle

from conftest import TOL
from _score_checks import (check_bad_inputs, check_dtypes_and_layouts, check_label_remap_and_row_order,
                           check_no_mutation, class_data, digits_features, rel)
from bench.baselines.hscore_published import hscore_published, reg_hscore_published


@pytest.mark.parametrize("n,d,c,sep", [(600, 32, 5, 0.5), (2000, 100, 10, 0.3), (300, 40, 3, 2.0)])
def test_matches_oracles_and_published_random(n, d, c, sep):
    X, y = class_data(n=n, d=d, c=c, sep=sep, seed=n + d)
    h, r = hscore(X, y), reg_hscore(X, y)
    assert rel(h, h_oracle(X, y)) < TOL["oracle_rel"]
    assert rel(h, hscore_published(X, y)) < TOL["published_rel"]
    assert rel(r, rh_oracle(X, y)) < TOL["oracle_rel"]
    assert rel(r, reg_hscore_published(X, y)) < TOL["published_rel"]
    assert 0 < h < c - 1 and 0 < r < c - 1  # between-class "energy" is bounded by C - 1


def test_digits_features():
    # Dead ReLU units: Cov(X) is singular even with N > D; the pseudo-inverse drops the null space.
    H, y = digits_features()
    H = H[:, H.max(axis=0) > 0]  # the published pinv(rcond=1e-15) is unstable on exact null directions
    assert rel(hscore(H, y), h_oracle(H, y)) < TOL["oracle_rel"]
    assert rel(hscore(H, y), hscore_published(H, y)) < TOL["published_rel"]
    H0, _ = digits_features()
    assert rel(reg_hscore(H0, y), rh_oracle(H0, y)) < TOL["oracle_rel"]
    assert rel(reg_hscore(H0, y), reg_hscore_published(H0, y)) < TOL["published_rel"]


def test_saturation_warning_and_regularised_stays_finite():
    X, y = class_data(n=50, d=80, c=4, sep=0.1, seed=1)
    with pytest.warns(UserWarning, match="saturates at n_classes - 1"):
        h = hscore(X, y)
    assert h == pytest.approx(3.0, rel=1e-6)  # saturated whatever the features
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = reg_hscore(X, y)  # no warning: the shrunk covariance is invertible
    assert np.isfinite(r) and r < 3.0
    assert rel(r, rh_oracle(X, y)) < TOL["oracle_rel"]


def test_reference_device():
    X, y = class_data(n=300, d=10, c=3, seed=4)
    assert hscore(X, y, device="reference") == h_oracle(X, y)
    assert reg_hscore(X, y, device="reference") == rh_oracle(X, y)


@pytest.mark.parametrize("func", [hscore, reg_hscore])
def test_properties_no_mutation_bad_inputs(func, tmp_path):
    X, y = class_data(n=500, d=24, c=4, sep=1.0, seed=3)
    a, b = check_no_mutation(func, X, y, tmp_path)
    assert a == pytest.approx(b, rel=1e-12)
    check_label_remap_and_row_order(func, X, y)
    check_dtypes_and_layouts(func, X, y)
    # Invariant to an invertible affine map of the features (plain H-score exactly, in theory).
    if func is hscore:
        A = np.random.default_rng(0).normal(size=(24, 24))
        assert func(X @ A + 5.0, y) == pytest.approx(a, rel=1e-6)
    Xs, ys = class_data(n=200, d=8, c=3, seed=2)
    check_bad_inputs(func, Xs, ys)
