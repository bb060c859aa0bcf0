"""LogME with task="regression" / "multilabel" against a float64 oracle of the authors' regression path.

The oracle below is written from SCORES.md ("LogME", "Targets beyond single-label classification"): the
authors' ``LogME(regression=True).fit(f, y)`` (their ``truncated_svd`` of f^T f for N > D, a thin SVD of
f for N <= D, K = D in the evidence, one fixed point per target column). It shares no code with
transferlab (not even ``transferlab.reference``).
"""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_digits

import transferlab as tl
from tests.conftest import TOL


def authors_logme_regression(f: np.ndarray, y: np.ndarray) -> float:
    f = np.asarray(f, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 1:
        y = y.reshape(-1, 1)
    n, d = f.shape
    if n > d:  # their truncated_svd: SVD of f^T f, rank by sqrt(s) > 1e-10
        _, s, vh = np.linalg.svd(f.T @ f)
        s = np.sqrt(s)
        k = int(np.sum(s > 1e-10))
        u = (f @ vh.T)[:, :k] / s[:k].reshape(1, -1)
        s = s[:k]
    else:
        u, s, _ = np.linalg.svd(f, full_matrices=False)
    sigma = (s**2).reshape(-1, 1)
    out = []
    for i in range(y.shape[1]):
        y_ = y[:, i].reshape(-1, 1)
        x = u.T @ y_
        x2 = x**2
        res_x2 = float((y_**2).sum() - x2.sum())
        alpha, beta = 1.0, 1.0
        for _ in range(11):
            t = alpha / beta
            gamma = float((sigma / (sigma + t)).sum())
            m2 = float((sigma * x2 / ((t + sigma) ** 2)).sum())
            res2 = float((x2 / ((1 + sigma / t) ** 2)).sum()) + res_x2
            alpha = gamma / (m2 + 1e-5)
            beta = (n - gamma) / (res2 + 1e-5)
            t_ = alpha / beta
            evidence = (d / 2.0 * np.log(alpha) + n / 2.0 * np.log(beta) - 0.5 * np.sum(np.log(alpha + beta * sigma))
                        - beta / 2.0 * res2 - alpha / 2.0 * m2 - n / 2.0 * np.log(2 * np.pi)) / n
            if abs(t_ - t) / t <= 1e-3:
                break
        out.append(evidence)
    return float(np.mean(out))


def _close(a, b):
    assert a == pytest.approx(b, rel=TOL["oracle_rel"], abs=1e-9)


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return X, y


def test_regression_random_n_gt_d_equals_authors():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 12)).astype(np.float32)
    Y = X.astype(np.float64) @ rng.normal(size=(12, 3)) + rng.normal(size=(300, 3)) * 2.0 + 5.0
    for y in (Y, Y[:, 0], Y[:, :1]):
        want = authors_logme_regression(X, y)
        _close(tl.logme(X, y, task="regression"), want)
        _close(tl.logme(X, y, task="regression", compat="thuml"), want)
        _close(tl.logme(X, y, task="regression", device="reference"), want)


def test_regression_real_features_equal_authors(diabetes):
    X, y = diabetes  # 442 x 10, real targets (un-normalised: 25..346)
    _close(tl.logme(X, y, task="regression"), authors_logme_regression(X, y))
    digits = load_digits()  # 1797 x 64 real pixels (constant columns: rank-deficient); target as a float
    Xd, yd = digits.data, digits.target.astype(np.float64) + 0.5
    _close(tl.logme(Xd, yd, task="regression"), authors_logme_regression(Xd, yd))


@pytest.mark.filterwarnings("ignore:LogME with n_samples")
def test_regression_n_le_d_thuml_reproduces_authors_exact_differs():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 90))
    y = rng.normal(size=(40, 2))
    want = authors_logme_regression(X, y)
    _close(tl.logme(X, y, task="regression", compat="thuml"), want)
    exact = tl.logme(X, y, task="regression")
    assert exact != pytest.approx(want, rel=1e-3)  # the (D - k)/(2N) log alpha overstatement is gone
    _close(exact, tl.logme(X, y, task="regression", device="reference"))


def test_multilabel_equals_hand_oracle_per_indicator_column():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(150, 8))
    L = (X[:, :3] + rng.normal(size=(150, 3)) > 0).astype(np.int64)
    want = np.mean([authors_logme_regression(X, L[:, j].astype(float)) for j in range(3)])
    _close(tl.logme(X, L, task="multilabel"), want)
    _close(tl.logme(X, L.astype(bool), task="multilabel"), want)
    # A single indicator column is the one-hot column of class 1 of the binary problem.
    _close(tl.logme(X, L[:, 0], task="multilabel"), authors_logme_regression(X, L[:, 0].astype(float)))


def test_regression_budget_and_inputs_untouched():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(500, 16)).astype(np.float32)
    y = rng.normal(size=500)
    X0, y0 = X.copy(), y.copy()
    full = tl.logme(X, y, task="regression")
    assert tl.logme(X, y, task="regression", max_memory="1MB") == pytest.approx(full, rel=1e-12)
    assert np.array_equal(X, X0) and np.array_equal(y, y0)


def test_regression_target_validation():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(30, 4))
    with pytest.raises(ValueError, match="task='regression'"):
        tl.logme(X, rng.normal(size=30))  # continuous labels under the default task name the fix
    with pytest.raises(ValueError, match="NaN or inf"):
        tl.logme(X, np.r_[np.nan, rng.normal(size=29)], task="regression")
    with pytest.raises(ValueError, match="length 29"):
        tl.logme(X, rng.normal(size=29), task="regression")
    with pytest.raises(ValueError, match="0/1 indicator"):
        tl.logme(X, rng.normal(size=(30, 2)), task="multilabel")
    with pytest.raises(ValueError, match="column 1 holds only zeros"):
        tl.logme(X, np.c_[np.arange(30) % 2, np.zeros(30)], task="multilabel")
    with pytest.raises(ValueError, match="task must be one of"):
        tl.logme(X, np.arange(30) % 2, task="ordinal")
    with pytest.raises(TypeError, match="real numbers"):
        tl.logme(X, np.array(["a"] * 30), task="regression")
