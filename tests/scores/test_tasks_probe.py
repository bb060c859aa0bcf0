"""The linear probe with task="regression" (ridge, held-out R^2) and task="multilabel" (one-vs-rest)."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold
from sklearn.preprocessing import StandardScaler

import transferlab as tl
from transferlab.scores.linear_probe.targets import ALPHAS


@pytest.fixture(scope="module")
def diabetes():
    return load_diabetes(return_X_y=True)


def _sk_ridge_r2(Xtr, ytr, Xva, yva, alpha, standardize=True):
    if standardize:
        sc = StandardScaler().fit(Xtr)
        Xtr, Xva = sc.transform(Xtr), sc.transform(Xva)
    return r2_score(yva, Ridge(alpha=alpha).fit(Xtr, ytr).predict(Xva))


@pytest.mark.parametrize("alpha", [1e-3, 0.5, 30.0])
@pytest.mark.parametrize("standardize", [True, False])
def test_ridge_equals_sklearn_on_the_same_split_and_alpha(diabetes, alpha, standardize):
    X, y = diabetes
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(y))
    tr, va = perm[:330], perm[330:]
    want = _sk_ridge_r2(X[tr], y[tr], X[va], y[va], alpha, standardize)
    got = tl.linear_probe(X, y, task="regression", alpha=alpha, split=(tr, va), standardize=standardize)
    assert got == pytest.approx(want, rel=1e-6)
    # two target columns: the uniform average of the per-column R^2
    Y = np.c_[y, X[:, 2] * 100 + rng.normal(size=len(y))]
    want2 = r2_score(Y[va], Ridge(alpha=alpha).fit(*(StandardScaler().fit(X[tr]).transform(X[tr]), Y[tr]))
                     .predict(StandardScaler().fit(X[tr]).transform(X[va]))) if standardize else \
        r2_score(Y[va], Ridge(alpha=alpha).fit(X[tr], Y[tr]).predict(X[va]))
    got2 = tl.linear_probe(X, Y, task="regression", alpha=alpha, split=(tr, va), standardize=standardize)
    assert got2 == pytest.approx(want2, rel=1e-6)


def test_alpha_by_cross_validation_equals_sklearn_grid(diabetes):
    X, y = diabetes
    X = X + np.random.default_rng(1).normal(scale=0.05, size=X.shape)  # make the choice of alpha matter
    tr, va = np.arange(0, 442, 3), np.setdiff1d(np.arange(442), np.arange(0, 442, 3))
    cv_scores = {}
    for a in ALPHAS:
        cv_scores[a] = np.mean([_sk_ridge_r2(X[tr][f], y[tr][f], X[tr][h], y[tr][h], a)
                                for f, h in KFold(5).split(tr)])
    best = max(sorted(ALPHAS), key=lambda a: (cv_scores[a], a))
    want = _sk_ridge_r2(X[tr], y[tr], X[va], y[va], best)
    assert tl.linear_probe(X, y, task="regression", split=(tr, va)) == pytest.approx(want, rel=1e-6)
    # another alpha gives another number (the comparison can fail)
    other = [a for a in ALPHAS if abs(_sk_ridge_r2(X[tr], y[tr], X[va], y[va], a) - want) > 1e-3]
    assert other


def test_seeded_split_ignores_row_order(diabetes):
    X, y = diabetes
    p = np.random.default_rng(2).permutation(len(y))
    a = tl.linear_probe(X, y, task="regression")
    assert a == tl.linear_probe(X[p], y[p], task="regression")
    assert 0.3 < a < 0.7  # a real fit on real data


def test_multilabel_is_one_vs_rest_binary_probes(diabetes):
    X, y = diabetes
    L = np.c_[y > 140, X[:, 2] > 0, X[:, 3] + X[:, 0] > 0.01].astype(int)
    rng = np.random.default_rng(3)
    perm = rng.permutation(len(y))
    tr, va = perm[:330], perm[330:]
    want = np.mean([tl.linear_probe(X, L[:, j], split=(tr, va)) for j in range(3)])
    got = tl.linear_probe(X, L, task="multilabel", split=(tr, va))
    assert got == pytest.approx(want, rel=1e-12)
    sc = StandardScaler().fit(X[tr])
    sk = np.mean([LogisticRegression(C=1.0).fit(sc.transform(X[tr]), L[tr, j]).score(sc.transform(X[va]), L[va, j])
                  for j in range(3)])
    assert got == pytest.approx(sk, abs=0.02)  # scikit-learn's binary logistic: equal within noise


def test_probe_task_bad_inputs(diabetes):
    X, y = diabetes
    with pytest.raises(ValueError, match="alpha must be a positive"):
        tl.linear_probe(X, y, task="regression", alpha=-1.0)
    with pytest.raises(ValueError, match="cv must be an int >= 2"):
        tl.linear_probe(X, y, task="regression", cv=1)
    with pytest.raises(ValueError, match="return_details=True is for task='classification'"):
        tl.linear_probe(X, y, task="regression", return_details=True)
    with pytest.raises(ValueError, match="task='regression'"):
        tl.linear_probe(X, y + 0.5)  # diabetes targets are integral floats: shifted, they look continuous


def _canonical_order(X, seed=0):
    from transferlab.core.arrays import as_matrix
    from transferlab.scores.linear_probe.one_shot import content_keys

    keys = content_keys(as_matrix(X), seed)
    return np.lexsort((keys[:, 1], keys[:, 0]))


def test_cv_none_is_the_seeded_split_with_a_five_fold_alpha_search(diabetes):
    from transferlab.core.arrays import as_matrix
    from transferlab.scores.linear_probe.one_shot import content_keys, stratified_split

    X, y = diabetes
    tr, va = stratified_split(content_keys(as_matrix(X), 0), np.zeros(len(y), dtype=np.int64), 1, 0.2)
    assert tl.linear_probe(X, y, task="regression", cv=None) == tl.linear_probe(X, y, task="regression",
                                                                                 split=(tr, va), cv=5)


@pytest.mark.parametrize("alpha", [0.5, None])
def test_k_fold_r2_equals_sklearn_cross_val_predict(diabetes, alpha):
    """cv=K: the rows in canonical order dealt round-robin to K folds, every row predicted once by
    StandardScaler + Ridge fitted on the other folds (alpha given, or chosen per fold by KFold(K) over the
    fold's training rows in canonical order), R^2 over all rows."""
    from sklearn.model_selection import PredefinedSplit, cross_val_predict
    from sklearn.pipeline import make_pipeline

    X, y = diabetes
    X = X + np.random.default_rng(1).normal(scale=0.05, size=X.shape)
    order = _canonical_order(X)
    folds = np.empty(len(y), dtype=int)
    folds[order] = np.arange(len(y)) % 4
    if alpha is not None:
        pred = cross_val_predict(make_pipeline(StandardScaler(), Ridge(alpha=alpha)), X, y, cv=PredefinedSplit(folds))
    else:
        pred = np.empty_like(y)
        for f in range(4):
            fit = order[folds[order] != f]
            cv_scores = {a: np.mean([_sk_ridge_r2(X[fit][i], y[fit][i], X[fit][h], y[fit][h], a)
                                     for i, h in KFold(4).split(fit)]) for a in ALPHAS}
            best = max(sorted(ALPHAS), key=lambda a: (cv_scores[a], a))
            sc = StandardScaler().fit(X[fit])
            pred[folds == f] = Ridge(alpha=best).fit(sc.transform(X[fit]), y[fit]).predict(sc.transform(X[folds == f]))
    want = r2_score(y, pred)
    got = tl.linear_probe(X, y, task="regression", cv=4, alpha=alpha)
    assert got == pytest.approx(want, rel=1e-6)
    p = np.random.default_rng(2).permutation(len(y))
    assert tl.linear_probe(X[p], y[p], task="regression", cv=4, alpha=alpha) == pytest.approx(got, rel=1e-12)


def test_multilabel_default_is_each_labels_own_binary_protocol(diabetes):
    X, y = diabetes
    L = np.c_[y > 140, X[:, 2] > 0].astype(int)
    want = np.mean([tl.linear_probe(X, L[:, j]) for j in range(2)])
    assert tl.linear_probe(X, L, task="multilabel") == pytest.approx(want, rel=1e-12)
