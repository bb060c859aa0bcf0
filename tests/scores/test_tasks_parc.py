"""PARC with task="regression": the paper's regression label RDM, 1 - corrcoef of the target rows."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

import transferlab as tl


def _oracle(X, Y):
    """100 x Spearman of the strict upper triangles of 1 - corrcoef(standardised X rows) and of
    1 - corrcoef(Y rows), float64, no PCA, every row (the published pipeline without its reduction)."""
    Z = (X - X.mean(axis=0)) / X.std(axis=0)
    iu = np.triu_indices(X.shape[0], k=1)
    return 100.0 * spearmanr((1.0 - np.corrcoef(Z))[iu], (1.0 - np.corrcoef(Y))[iu])[0]


def test_regression_rdm_equals_oracle_and_ignores_row_order():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 6))
    Y = X[:, :3] @ rng.normal(size=(3, 3)) + 0.5 * rng.normal(size=(150, 3))
    got = tl.parc(X, Y, task="regression", pca=None, probe_size=None)
    assert got == pytest.approx(_oracle(X, Y), rel=1e-9)
    assert abs(got) > 5.0  # informative targets: not a vacuous comparison of two zeros
    p = rng.permutation(150)
    assert tl.parc(X[p], Y[p], task="regression", probe_size=100) == tl.parc(X, Y, task="regression", probe_size=100)


def test_single_target_column_uses_absolute_differences():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(90, 5))
    y = X[:, 0] + 0.3 * rng.normal(size=90)
    Z = (X - X.mean(axis=0)) / X.std(axis=0)
    iu = np.triu_indices(90, k=1)
    want = 100.0 * spearmanr((1.0 - np.corrcoef(Z))[iu], np.abs(y[:, None] - y[None, :])[iu])[0]
    assert tl.parc(X, y, task="regression", pca=None, probe_size=None) == pytest.approx(want, rel=1e-9)


def test_regression_target_rows_must_not_be_constant():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 4))
    Y = rng.normal(size=(40, 2))
    Y[3] = 1.0
    with pytest.raises(ValueError, match="constant"):
        tl.parc(X, Y, task="regression")


def test_two_target_columns_warn_and_rounding_does_not_order_the_ties():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 5))
    Y = X[:, :2] + 0.3 * rng.normal(size=(60, 2))
    with pytest.warns(UserWarning, match="target-row pairs are perfectly correlated"):
        a = tl.parc(X, Y, task="regression")
    with pytest.warns(UserWarning, match="target-row pairs are perfectly correlated"):
        b = tl.parc(X, Y.astype(np.float32), task="regression")
    assert a == b
