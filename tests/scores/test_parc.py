"""PARC vs the float64 oracle and the published algorithm (randomized PCA, random_state=1919);
the label-RDM rounding noise; probe sets; bad input."""
from __future__ import annotations

import numpy as np
import pytest

import transferlab
from transferlab import parc
from transferlab.reference.parc import parc as oracle

from conftest import TOL
from _score_checks import (check_bad_inputs, check_label_remap_and_row_order, check_no_mutation, class_data,
                           digits_features, rel)
from bench.baselines.parc_published import parc_published

_parc_mod = transferlab.scores.get("parc").func.__module__
import sys  # noqa: E402

P = sys.modules[_parc_mod]


@pytest.mark.parametrize("n,d,c,sep", [(400, 64, 5, 0.3), (300, 20, 4, 0.3), (450, 100, 10, 0.5)])
def test_matches_published_and_oracle(n, d, c, sep):
    X, y = class_data(n=n, d=d, c=c, sep=sep, seed=n + d)
    got = parc(X, y)
    assert rel(got, parc_published(X, y)) < TOL["published_rel"]
    F = P.reduce(transferlab._arrays.as_matrix(X), "randomized", 32)
    assert rel(got, oracle(F, y)) < TOL["oracle_rel"]
    ex = parc(X, y, label_rdm="exact")
    assert rel(ex, oracle(F, y, label_rdm="exact")) < TOL["oracle_rel"]
    assert 0 < got < 100


def test_digits_probe():
    H, y = digits_features()
    got = parc(H, y)  # N = 1797 > 500: the probe set
    rows = P.probe_indices(len(y), 500, 0)
    assert rows.shape == (500,) and np.all(np.diff(rows) > 0)
    assert rel(got, parc_published(H[rows], y[rows])) < TOL["published_rel"]
    assert parc(H, y, probe_size=None, label_rdm="exact") > 0
    assert parc(H, y, seed=1) != got  # another probe set


def test_exact_pca_and_no_pca():
    X, y = class_data(n=300, d=48, c=3, sep=0.4, seed=2)
    F = P.reduce(transferlab._arrays.as_matrix(X), "exact", 32)
    Xc = X.astype(np.float64) - X.astype(np.float64).mean(axis=0)
    _, _, vt = np.linalg.svd(Xc, full_matrices=False)
    # Row correlations centre each row over the axes, so PARC sees the axes' signs: both follow
    # scikit-learn's convention (the largest-|.| loading of each axis positive).
    vt = vt[:32] * np.sign(vt[np.arange(32), np.argmax(np.abs(vt[:32]), axis=1)])[:, None]
    np.testing.assert_allclose(F, Xc @ vt.T, rtol=1e-7, atol=1e-9)
    assert rel(parc(X, y, pca="exact"), oracle(Xc @ vt.T, y)) < TOL["oracle_rel"]
    from sklearn.decomposition import PCA

    G = PCA(n_components=32, svd_solver="full").fit_transform(X.astype(np.float64))
    assert rel(parc(X, y, pca="exact"), oracle(G, y)) < TOL["oracle_rel"]
    assert rel(parc(X, y, pca=None), oracle(X, y)) < TOL["oracle_rel"]


def test_label_rdm_noise_is_what_differs():
    # 5 classes: 1 - corrcoef(onehot) is 1e-16 instead of 0 for some same-class pairs, which
    # reorders ties; "exact" removes it. Both are pinned against the oracle above.
    X, y = class_data(n=400, d=64, c=5, sep=0.3, seed=464)
    a, b = parc(X, y), parc(X, y, label_rdm="exact")
    assert a != b and abs(a - b) < 1.0


def test_options_and_bad_inputs(tmp_path):
    X, y = class_data(n=300, d=40, c=3, sep=0.5, seed=3)
    a, b = check_no_mutation(parc, X, y, tmp_path)
    check_label_remap_and_row_order(parc, X, y, rows=False)  # the randomized PCA sees the row order
    check_label_remap_and_row_order(parc, X, y, pca="exact", label_rdm="exact", rtol=1e-9)
    with pytest.raises(ValueError, match="pca"):
        parc(X, y, pca="full")
    with pytest.raises(ValueError, match="label_rdm"):
        parc(X, y, label_rdm="dense")
    with pytest.raises(ValueError, match="probe_size"):
        parc(X, y, probe_size=1)
    with pytest.raises(ValueError, match="single class"):
        parc(X, np.r_[np.zeros(299, dtype=int), 1], probe_size=10)
    Xs, ys = class_data(n=200, d=8, c=3, seed=2)
    check_bad_inputs(parc, Xs, ys)
