"""Streaming SFDA (three passes): equal to ``transferlab.sfda`` to 1e-9 for chunk sizes {1, 7, 1000, N}
(N > D with a large common offset, N < D), both solvers and ``log``, any merge order of pickled
worker forks, a read-only memmap through ``streaming.run``, labels first seen late (strings too),
real (digits) features; the saturation warning; the one-shot's errors; inputs never mutated."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from transferlab import sfda
from transferlab.scores import streaming
from transferlab.scores.streaming import SFDAStream

from conftest import digest
from _score_checks import class_data, digits_features, rel
from _stream_checks import MERGE_ORDERS, chunked, late_labels, memmap_run, merged

ONE_SHOT_REL = 1e-9


def _wide(n=1200, d=12, c=4):
    X, y = class_data(n=n, d=d, c=c, sep=1.0, seed=11)
    return (X + 20.0).astype(np.float32), y  # a common offset: the streams' shifts keep the Gram accurate


def _narrow():
    """N < D, scaled so that the score does not saturate at 1.0 (lambda is then well above its floor)."""
    X, y = class_data(n=60, d=100, c=5, sep=0.2, seed=2, dtype=np.float64)
    return X * 0.05, y


def _quiet(f, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the N <= D saturation warning
        return f(*args, **kw)


@pytest.mark.parametrize("size", [1, 7, 1000, None])
@pytest.mark.parametrize("log", [False, True])
def test_chunked_equals_one_shot(size, log, monkeypatch):
    if size == 1:  # one kernel call per row: OpenMP's fork/join per call dominates on a loaded machine
        monkeypatch.setenv("TRANSFERLAB_NUM_THREADS", "1")
    X, y = _wide(n=300 if size == 1 else 1200)
    before = digest(X, y)
    got = chunked(SFDAStream(log=log), X, y, size or len(y))
    assert digest(X, y) == before
    assert rel(got, sfda(X, y, log=log)) < ONE_SHOT_REL


@pytest.mark.parametrize("size", [1, 7, None])
@pytest.mark.parametrize("log", [False, True])
def test_n_below_d(size, log):
    X, y = _narrow()
    before = digest(X, y)
    want = _quiet(sfda, X, y, log=log)
    assert 0.5 < np.exp(want) < 0.95 if log else 0.5 < want < 0.95  # not the saturated regime
    st = SFDAStream(log=log)
    got = _quiet(chunked, st, X, y, size or len(y))
    assert digest(X, y) == before  # float64 rows: the ConfMix blocks are copies
    assert rel(got, want) < ONE_SHOT_REL
    with pytest.warns(UserWarning, match="saturates near 1.0"):
        st.compute()


@pytest.mark.parametrize("order", MERGE_ORDERS)
def test_any_merge_order_through_pickled_forks(order):
    X, y = _wide(n=900)
    assert rel(merged(SFDAStream(), X, y, 130, order, seed=2), sfda(X, y)) < ONE_SHOT_REL
    Xn, yn = _narrow()
    got = _quiet(merged, SFDAStream(solver="eigh"), Xn, yn, 9, order)
    assert rel(got, _quiet(sfda, Xn, yn, solver="eigh")) < ONE_SHOT_REL


def test_digits_features_late_string_labels_and_memmap(tmp_path):
    H, y = digits_features()
    Hs, names = late_labels(H, y)
    for log in (False, True):
        assert rel(chunked(SFDAStream(log=log), Hs, names, 250), sfda(Hs, names, log=log)) < ONE_SHOT_REL
    assert rel(memmap_run(tmp_path, "sfda", H, y, 400, a=2.0), sfda(H, y, a=2.0)) < ONE_SHOT_REL
    assert rel(streaming.run("sfda", H, y, solver="eigh"), sfda(H, y, solver="eigh")) < ONE_SHOT_REL


def test_options_and_errors_as_the_one_shot():
    X, y = _wide(n=200)
    for kw, err in [({"a": "5"}, TypeError), ({"a": -1.0}, ValueError), ({"a": float("nan")}, TypeError),
                    ({"solver": "lu"}, ValueError), ({"log": 1}, TypeError)]:
        with pytest.raises(err) as one:
            sfda(X, y, **kw)
        with pytest.raises(err) as st:
            SFDAStream(**kw)
        assert str(st.value) == str(one.value)
    Xn = X.copy()
    Xn[7, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or inf in 1 row"):
        SFDAStream().update(Xn, y)
    with pytest.raises(ValueError, match="n_features"):
        SFDAStream().update(X, y).update(X[:, :5], y)
    with pytest.raises(ValueError, match="need at least 2 classes, got 1"):
        SFDAStream().update(X, np.zeros(200, dtype=int)).end_pass()
    with pytest.raises(ValueError, match="sfda needs at least 2 samples"):
        SFDAStream().update(X[:1], y[:1]).end_pass()
    points = np.repeat(np.eye(2), 3, axis=0)  # every class a single point
    with pytest.raises(ValueError, match="within-class scatter is zero"):
        sfda(points, [0, 0, 0, 1, 1, 1])
    for size in (1, 4, 6):  # whatever the order of the sums
        with pytest.raises(ValueError, match="within-class scatter is zero"):
            chunked(SFDAStream(), points, np.array([0, 0, 0, 1, 1, 1]), size)
    with pytest.raises(ValueError, match="different options"):
        SFDAStream().merge(SFDAStream(a=2.0).update(X, y))


def test_later_passes_must_see_the_same_rows():
    X, y = _wide(n=200)
    st = SFDAStream().update(X, y)
    with pytest.raises(ValueError, match="needs 3 passes"):
        st.compute()
    st.end_pass()
    with pytest.raises(ValueError, match="not seen in the first pass"):
        st.fork().update(X[:5], np.full(5, 99))
    with pytest.raises(ValueError, match="different runs"):
        st.merge(SFDAStream().update(X, y).end_pass().fork())
    st.update(X[:-1], y[:-1])
    with pytest.raises(ValueError, match="saw 199 rows but the first pass saw 200"):
        st.end_pass()
    st.update(X[-1:], y[-1:]).end_pass()
    with pytest.raises(ValueError, match="pass 3 saw 0 rows"):
        st.compute()
    st.update(X, y)
    assert rel(st.compute(), sfda(X, y)) < ONE_SHOT_REL  # during the last pass, ending it is optional
    assert "sfda" in streaming.available_streams() and type(streaming.stream("sfda")) is SFDAStream
