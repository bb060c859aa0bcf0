"""BAD_INPUTS.md rows for the regression / multilabel paths of every score that supports them (from the
registry): inputs never mutated, read-only memory maps and other layouts give the same value, (N, 1) targets
equal (N,), NaN feature rows raise or are omitted, bad targets raise naming the argument."""
from __future__ import annotations

import numpy as np
import pytest

import transferlab as tl
from tests.conftest import digest

CASES = [(name, task) for task in ("regression", "multilabel") for name in tl.available(task=task)
         if tl.scores.get(name).fn.__module__.startswith("transferlab.")]


def _data(task, n=80, d=6):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d)).astype(np.float32)
    if task == "regression":
        # three columns: with two, every centred target row is (a, -a) and PARC's row correlations are all +-1
        T = X[:, :3].astype(np.float64) @ rng.normal(size=(3, 3)) + 0.3 * rng.normal(size=(n, 3))
    else:
        T = (X[:, :2] + 0.5 * rng.normal(size=(n, 2)) > 0).astype(np.int64)
    return X, T


def _quiet(fn, *a, **kw):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # N/D regime warnings are not what these checks are about
        return fn(*a, **kw)


@pytest.mark.parametrize("name,task", CASES)
def test_untouched_layouts_and_memmaps(name, task, tmp_path):
    f = tl.scores.get(name).fn
    X, T = _data(task)
    before = digest(X, T)
    ref = _quiet(f, X, T, task=task)
    assert np.isfinite(ref)
    assert digest(X, T) == before  # nothing mutated
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "T.npy", T)
    Xm, Tm = np.load(tmp_path / "X.npy", mmap_mode="r"), np.load(tmp_path / "T.npy", mmap_mode="r")
    assert _quiet(f, Xm, Tm, task=task) == pytest.approx(ref, rel=1e-12)
    assert _quiet(f, np.asfortranarray(X), T, task=task) == pytest.approx(ref, rel=1e-12)
    assert _quiet(f, X.astype(np.float64), T.astype(np.float32), task=task) == pytest.approx(ref, rel=1e-6)
    one = _quiet(f, X, T[:, 0], task=task)
    assert _quiet(f, X, T[:, :1], task=task) == one  # (N, 1) read as (N,)


@pytest.mark.parametrize("name,task", CASES)
def test_nan_rows_raise_or_are_omitted(name, task):
    f = tl.scores.get(name).fn
    X, T = _data(task)
    Xn = X.copy()
    Xn[[3, 17]] = np.nan
    with pytest.raises(ValueError, match="NaN or inf in 2 row"):
        _quiet(f, Xn, T, task=task)
    keep = np.setdiff1d(np.arange(len(X)), [3, 17])
    if name == "parc":  # PARC's canonical order keys the kept rows; same rows give the same value
        assert _quiet(f, Xn, T, task=task, nan_policy="omit") == _quiet(f, X[keep], T[keep], task=task)
        return
    assert _quiet(f, Xn, T, task=task, nan_policy="omit") == pytest.approx(_quiet(f, X[keep], T[keep], task=task),
                                                                          rel=1e-12)


@pytest.mark.parametrize("name,task", CASES)
def test_bad_targets_name_the_argument(name, task):
    f = tl.scores.get(name).fn
    X, T = _data(task)
    with pytest.raises(ValueError, match="labels has length 79"):
        f(X, T[:79], task=task)
    bad = T.astype(np.float64)
    bad[5, 0] = np.inf
    with pytest.raises(ValueError, match="labels contain NaN or inf in 1 row"):
        f(X, bad, task=task)
    with pytest.raises(ValueError, match=r"must be \(n_samples,\) or \(n_samples, n_targets\)"):
        f(X, T[:, :, None], task=task)
    with pytest.raises(TypeError, match="real numbers"):
        f(X, np.array(["x"] * len(X)), task=task)


@pytest.mark.parametrize("task", ["regression", "multilabel"])
def test_knn_streamed_path_omits_nan_rows_like_the_in_memory_one(task):
    X, T = _data(task)
    Xn = X.copy()
    Xn[[3, 17]] = np.inf
    keep = np.setdiff1d(np.arange(len(X)), [3, 17])
    want = tl.knn_loo(X[keep], T[keep], task=task, k=3)
    assert tl.knn_loo(Xn, T, task=task, k=3, nan_policy="omit", max_memory="1MB") == want
    assert tl.knn_loo(Xn, T, task=task, k=3, nan_policy="omit", queries=np.array([0, 5, 40])) == \
        tl.knn_loo(X[keep], T[keep], task=task, k=3, queries=np.array([0, 4, 38]))
    with pytest.raises(ValueError, match="dropped by nan_policy='omit'"):
        tl.knn_loo(Xn, T, task=task, nan_policy="omit", queries=np.array([3, 5]))


def test_knn_classification_budget_with_omitted_rows():
    # Before: max_memory= with nan_policy="omit" refused every bank holding a NaN row ("query row 3 ... dropped").
    rng = np.random.default_rng(4)
    X = rng.normal(size=(50, 4))
    X[3] = np.nan
    y = np.arange(50) % 2
    assert tl.knn_loo(X, y, nan_policy="omit", max_memory="1MB") == tl.knn_loo(X, y, nan_policy="omit")
