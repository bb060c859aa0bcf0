"""LogME: vectorised fixed point on the Gram seam vs the float64 SVD oracle and the authors' algorithm;
the exact evidence for N < D; properties; bad input."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from transferlab import logme
from transferlab.reference.logme import logme as oracle

from conftest import TOL
from _score_checks import (check_bad_inputs, check_dtypes_and_layouts, check_label_remap_and_row_order,
                           check_no_mutation, class_data, digits_features, rel)
from bench.baselines.logme_published import logme_published


@pytest.mark.parametrize("n,d,c,sep", [(600, 32, 5, 0.5), (2000, 100, 10, 0.3), (400, 64, 3, 2.0)])
def test_matches_oracle_and_published_random(n, d, c, sep):
    X, y = class_data(n=n, d=d, c=c, sep=sep, seed=n + d)
    got = logme(X, y)
    assert rel(got, oracle(X, y)) < TOL["oracle_rel"]
    # N > D: the default is the authors' LogME.fit (SCORES.md: to 1e-5; in practice to rounding).
    assert rel(got, logme_published(X, y)) < TOL["published_rel"]
    assert rel(logme(X, y, compat="thuml"), got) < 1e-9
    assert logme(X, y, device="reference") == oracle(X, y)


def test_matches_oracle_and_published_digits():
    # Learned ReLU features with dead units (rank-deficient Gram): the null directions cancel.
    H, y = digits_features()
    got = logme(H, y)
    assert rel(got, oracle(H, y)) < TOL["oracle_rel"]
    assert rel(got, logme_published(H, y)) < TOL["published_rel"]
    assert rel(logme(H, y, compat="thuml"), oracle(H, y, compat="thuml")) < TOL["oracle_rel"]
    assert 0.0 < got < 2.0


@pytest.mark.parametrize("n,d", [(60, 200), (150, 150)])
def test_n_below_d_exact_vs_thuml(n, d):
    X, y = class_data(n=n, d=d, c=4, sep=1.0, seed=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        exact, thuml = logme(X, y), logme(X, y, compat="thuml")
    assert rel(exact, oracle(X, y)) < TOL["oracle_rel"]
    assert rel(thuml, oracle(X, y, compat="thuml")) < TOL["oracle_rel"]
    assert rel(thuml, logme_published(X, y)) < TOL["published_rel"]
    if n < d:
        # The authors' number overstates the evidence by (D - k)/(2N) log alpha per class.
        assert thuml > exact + 0.1


def test_warns_when_n_below_d():
    X, y = class_data(n=40, d=80, c=3, seed=1)
    with pytest.warns(UserWarning, match="n_samples=40 < n_features=80"):
        logme(X, y)


def test_no_one_hot_many_classes():
    # 2000 classes: the fixed point runs in class blocks; equal to the oracle on a subsample of classes.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6000, 20)).astype(np.float32)
    y = rng.integers(0, 2000, size=6000)
    got = logme(X, y)
    assert np.isfinite(got)
    assert rel(got, oracle(X, y)) < TOL["oracle_rel"]


def test_properties_and_no_mutation(tmp_path):
    X, y = class_data(n=500, d=24, c=4, sep=1.0, seed=3)
    a, b = check_no_mutation(logme, X, y, tmp_path)
    assert a == pytest.approx(b, rel=1e-12)
    check_label_remap_and_row_order(logme, X, y)
    check_dtypes_and_layouts(logme, X, y)
    # Better separated classes -> higher evidence.
    X2, y2 = class_data(n=500, d=24, c=4, sep=3.0, seed=3)
    assert logme(X2, y2) > logme(X, y)


def test_bad_inputs():
    X, y = class_data(n=200, d=8, c=3, seed=2)
    check_bad_inputs(logme, X, y)
    with pytest.raises(ValueError, match="compat"):
        logme(X, y, compat="sklearn")
