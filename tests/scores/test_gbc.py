"""GBC (spherical and diagonal) vs the float64 oracle and the published algorithm; properties; bad input."""
from __future__ import annotations

import numpy as np
import pytest

from transferlab import gbc
from transferlab.reference.gbc import gbc as oracle

from conftest import TOL
from _score_checks import (check_bad_inputs, check_dtypes_and_layouts, check_label_remap_and_row_order,
                           check_no_mutation, class_data, digits_features, rel)
from bench.baselines.gbc_published import gbc_published


@pytest.mark.parametrize("gaussian", ["spherical", "diagonal"])
@pytest.mark.parametrize("n,d,c,sep", [(600, 32, 5, 0.3), (2000, 100, 10, 0.2), (300, 150, 6, 0.3)])
def test_matches_oracle_and_published_random(gaussian, n, d, c, sep):
    # d = 100, 150 > 64: the exact PCA to 64 dimensions (one eigensolve of the centred Gram).
    X, y = class_data(n=n, d=d, c=c, sep=sep, seed=n + d)
    got = gbc(X, y, gaussian=gaussian)
    assert rel(got, oracle(X, y, gaussian=gaussian)) < TOL["oracle_rel"]
    assert rel(got, gbc_published(X, y, gaussian)) < TOL["published_rel"]
    assert got < 0


@pytest.mark.parametrize("gaussian", ["spherical", "diagonal"])
def test_digits(gaussian):
    # Dead units: per-dimension variance 0, floored at 1e-4 as published.
    H, y = digits_features()
    got = gbc(H, y, gaussian=gaussian)
    assert rel(got, oracle(H, y, gaussian=gaussian)) < TOL["oracle_rel"]
    assert rel(got, gbc_published(H, y, gaussian)) < TOL["published_rel"]
    H128, y128 = digits_features(hidden=128)  # D = 128 > 64: through the PCA
    assert rel(gbc(H128, y128, gaussian=gaussian), gbc_published(H128, y128, gaussian)) < TOL["published_rel"]


def test_hand_computed_spherical():
    # Two classes in 1-D: means 0 and 2, variances 1 and 1 -> D_B = 4/8 = 0.5 each way.
    X = np.array([[-1.0], [1.0], [1.0], [3.0]])
    assert gbc(X, [0, 0, 1, 1]) == pytest.approx(-2 * np.exp(-0.5), rel=1e-15)
    assert gbc(X, [0, 0, 1, 1], gaussian="diagonal") == pytest.approx(-2 * np.exp(-0.5), rel=1e-15)


def test_separation_and_options():
    Xa, y = class_data(n=600, d=16, c=4, sep=0.3, seed=1)
    Xb, _ = class_data(n=600, d=16, c=4, sep=3.0, seed=1)
    assert gbc(Xb, y) > gbc(Xa, y)  # separated classes overlap less
    assert gbc(Xa, y, pca_dims=8) == pytest.approx(oracle(Xa, y, pca_dims=8), rel=TOL["oracle_rel"])
    assert gbc(Xa, y, device="reference") == oracle(Xa, y)
    with pytest.raises(ValueError, match="gaussian"):
        gbc(Xa, y, gaussian="full")
    with pytest.raises(ValueError, match="pca_dims"):
        gbc(Xa, y, pca_dims=0)


def test_properties_no_mutation_bad_inputs(tmp_path):
    X, y = class_data(n=500, d=80, c=4, sep=0.3, seed=3)
    a, b = check_no_mutation(gbc, X, y, tmp_path)
    assert a == pytest.approx(b, rel=1e-12)
    check_label_remap_and_row_order(gbc, X, y)
    check_dtypes_and_layouts(gbc, X, y)
    Xs, ys = class_data(n=200, d=8, c=3, seed=2)
    check_bad_inputs(gbc, Xs, ys)
