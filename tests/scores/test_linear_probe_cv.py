"""linear_probe's default k-fold protocol (cv=5, issue 18) against the float64 oracle
(reference.linear_probe.cross_validated: plain-loop folds, a different solver) and scikit-learn; steps of 1/N,
the standard error, invariances, bad input."""
from __future__ import annotations

import numpy as np
import pytest

import transferlab as tl
from transferlab.reference import linear_probe as ref
from transferlab.select import task_aware

from conftest import class_data

TIGHT = dict(tol=1e-10, max_iter=5000)


def _digits(n=300):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X[:n].astype(np.float32), y[:n]


@pytest.mark.parametrize("cv", [2, 5, 7])
def test_matches_the_oracle_fold_by_fold(cv):
    X, y = class_data(n=240, d=12, c=4, sep=1.2, seed=2)
    got = tl.linear_probe(X, y, cv=cv, return_details=True, **TIGHT)
    score, correct, folds = ref.cross_validated(X.astype(np.float64), y, 4, cv)
    np.testing.assert_array_equal(got.folds, folds)
    np.testing.assert_array_equal(got.val_index, np.arange(240))
    # a different solver to 1e-10: at most one boundary row may flip
    assert np.sum(got.correct != correct) <= 1
    assert abs(got.score - score) <= 1 / 240 + 1e-15
    assert 0.6 < got.score < 1.0  # not saturated: the comparison can fail
    # the reference device runs the oracle itself on the same folds
    assert tl.linear_probe(X, y, cv=cv, device="reference") == pytest.approx(score, abs=1e-15)


def test_default_is_five_folds_and_every_row_counts():
    X, y = _digits()
    got = tl.linear_probe(X, y, return_details=True)
    assert got.score == tl.linear_probe(X, y, cv=5)
    assert np.bincount(got.folds).tolist() == [60] * 5  # stratified round robin: sizes within one
    for k in range(5):  # each fold is stratified: class counts within one of 1/5 of the class
        counts = np.bincount(y[got.folds == k], minlength=10)
        assert np.all(np.abs(counts - np.bincount(y, minlength=10) / 5) <= 1)
    assert got.correct.size == 300 and got.score * 300 == pytest.approx(round(got.score * 300), abs=1e-9)
    assert got.correct.mean() == got.score
    assert got.se == pytest.approx(np.std(got.correct, ddof=1) / np.sqrt(300), rel=1e-12)
    one_split = tl.linear_probe(X, y, cv=None, return_details=True)
    assert one_split.correct.size == 60 and one_split.se > got.se


def test_scikit_learn_cross_val_predict_on_the_same_folds():
    """Each fold's probe is scikit-learn's StandardScaler + LogisticRegression(C=1) on the other folds."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import PredefinedSplit, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _digits()
    got = tl.linear_probe(X, y, return_details=True, **TIGHT)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, tol=1e-10, max_iter=10000))
    pred = cross_val_predict(pipe, X.astype(np.float64), y, cv=PredefinedSplit(got.folds))
    assert np.sum((pred == y) != (got.correct == 1)) <= 1


def test_row_permutation_and_relabelling():
    X, y = class_data(n=200, d=10, c=3, sep=1.0, seed=5)
    a = tl.linear_probe(X, y, return_details=True)
    perm = np.random.default_rng(0).permutation(200)
    b = tl.linear_probe(X[perm], y[perm], return_details=True)
    assert a.score == b.score  # bitwise: folds follow the rows' contents
    np.testing.assert_array_equal(b.correct, a.correct[perm])
    np.testing.assert_array_equal(b.folds, a.folds[perm])
    names = np.array(["cat", "dog", "eel"])[y]
    assert tl.linear_probe(X, names) == a.score


def test_single_sample_class_and_nan_rows():
    X, y = class_data(n=120, d=6, c=3, seed=1)
    y = y.copy()
    y[7] = 9  # a class of one
    with pytest.warns(UserWarning, match="single sample"):
        got = tl.linear_probe(X, y, return_details=True)
    assert got.folds[7] == -1 and got.train_index.tolist() == [7] and 7 not in got.val_index
    assert got.correct.size == 119
    Xn = X.astype(np.float64).copy()
    Xn[3, 2] = np.nan
    with pytest.warns(UserWarning, match="single sample"):
        om = tl.linear_probe(Xn, y, nan_policy="omit", return_details=True)
    assert om.folds.shape == (120,) and om.folds[3] == -1 and 3 not in om.val_index
    keep = np.setdiff1d(np.arange(120), [3])
    with pytest.warns(UserWarning, match="single sample"):
        assert om.score == tl.linear_probe(X[keep], y[keep])


def test_split_and_renggli_keep_one_split():
    X, y = class_data(n=150, d=6, c=3, seed=3)
    tr, va = np.arange(100), np.arange(100, 150)
    assert tl.linear_probe(X, y, split=(tr, va)) == tl.linear_probe(X, y, split=(tr, va), cv=None)


def test_statistical_ties_on_cross_validated_rows():
    """Per-row correctness on the same rows pairs two models (task_aware ties='statistical')."""
    X, y = class_data(n=300, d=16, c=4, sep=1.0, seed=7)
    rng = np.random.default_rng(1)
    models = {"same": X, "noisy": X + 1e-6 * rng.normal(size=X.shape).astype(np.float32),
              "blind": rng.normal(size=X.shape).astype(np.float32)}
    det = {m: tl.linear_probe(f, y, return_details=True) for m, f in models.items()}
    scores = {m: d.score for m, d in det.items()}
    sel = task_aware(scores, ties="statistical", samples=det)
    assert sel.models[-1] == "blind"
    assert set(sel.tied_groups[0]) == {"same", "noisy"} and sel.tied_groups[-1] == ("blind",)


@pytest.mark.parametrize("cv,exc,msg", [
    (1, ValueError, "cv must be an int >= 2"),
    (True, TypeError, "cv must be an int"),
    (2.5, TypeError, "cv must be an int"),
    (500, ValueError, "cv=500 needs at least 500 rows"),
])
def test_bad_cv(cv, exc, msg):
    X, y = class_data(n=60, d=4, c=2, seed=0)
    with pytest.raises(exc, match=msg):
        tl.linear_probe(X, y, cv=cv)


def test_knn_standard_errors():
    """knn_loo and the train/test knn_accuracy report the standard error of their mean over rows."""
    X, y = class_data(n=200, d=8, c=3, sep=1.0, seed=9)
    loo = tl.knn_loo(X, y, return_details=True)
    assert loo.se == pytest.approx(np.std(loo.correct, ddof=1) / np.sqrt(200), rel=1e-12)
    assert 0 < loo.se < 0.05
    acc = tl.knn_accuracy(X[:150], y[:150], X[150:], y[150:], return_details=True)
    assert acc.score == tl.knn_accuracy(X[:150], y[:150], X[150:], y[150:])
    assert acc.correct.shape == (50,) and acc.correct.mean() == pytest.approx(acc.score, abs=1e-15)
    assert acc.se == pytest.approx(np.std(acc.correct, ddof=1) / np.sqrt(50), rel=1e-12)
    with pytest.raises(ValueError, match="return_details=True is for task='classification'"):
        tl.knn_accuracy(X[:150], y[:150].astype(float), X[150:], y[150:].astype(float), task="regression",
                        return_details=True)
