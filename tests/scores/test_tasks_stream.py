"""Streaming states with task="regression" / "multilabel": LogME (sums merged by addition) and kNN (query
blocks against the bank) equal their one-shot scores (to rounding / bitwise), through forks, merges, pickles
and ``streaming.run``. The one-shot scores are tested against oracles in test_tasks_logme.py / test_tasks_knn.py."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

import transferlab as tl
from transferlab.scores import streaming


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 7))
    Y = X @ rng.normal(size=(7, 2)) + rng.normal(size=(240, 2)) + 3.0
    L = (Y - 3.0 + 0.5 * rng.normal(size=Y.shape) > 0).astype(np.int64)
    Xi = rng.integers(0, 3, size=(90, 3)).astype(np.float32)  # duplicates: boundary ties for kNN
    return X, Y, L, Xi


@pytest.mark.parametrize("task", ["regression", "multilabel"])
def test_logme_stream_equals_one_shot(data, task):
    X, Y, L, _ = data
    T = Y if task == "regression" else L
    want = tl.logme(X, T, task=task)
    st = streaming.stream("logme", task=task)
    a, b = st.fork(), st.fork()
    a.update(X[:90], T[:90])
    b.update(X[90:], T[90:])
    st.merge(pickle.loads(pickle.dumps(a))).merge(b)
    assert st.compute() == pytest.approx(want, rel=1e-12)
    assert streaming.run("logme", X, T, task=task, chunk_rows=41) == pytest.approx(want, rel=1e-12)
    assert streaming.run("logme", X, T[:, 0], task=task, chunk_rows=50) == pytest.approx(
        tl.logme(X, T[:, 0], task=task), rel=1e-12)


def test_logme_stream_task_checks(data):
    X, Y, L, _ = data
    st = streaming.stream("logme", task="multilabel")
    with pytest.raises(ValueError, match="0/1 indicator"):
        st.update(X[:10], Y[:10])
    st.update(X[:10], np.c_[np.zeros(10), np.arange(10) % 2])
    with pytest.raises(ValueError, match="column 0 holds only one value"):
        st.compute()
    with pytest.raises(ValueError, match="cannot merge states with different options"):
        streaming.stream("logme").merge(streaming.stream("logme", task="regression"))
    with pytest.raises(ValueError, match="hscore does not support|task must be one of"):
        streaming.stream("logme", task="ordinal")


@pytest.mark.parametrize("task", ["regression", "multilabel"])
@pytest.mark.parametrize("k", [1, 3])
def test_knn_stream_equals_one_shot_bitwise_with_ties(data, task, k):
    _, Y, L, Xi = data
    T = (Y if task == "regression" else L)[:90]
    want = tl.knn_loo(Xi, T, k=k, task=task)
    st = streaming.stream("knn_loo", features=Xi, labels=T, k=k, task=task)
    a, b = st.fork(), st.fork()
    a.update(Xi[:40], T[:40], start=0)
    b.update(Xi[40:], T[40:], start=40)
    st.merge(a).merge(pickle.loads(pickle.dumps(b)))
    assert st.compute() == want
    assert streaming.run("knn_loo", Xi, T, k=k, task=task, chunk_rows=17) == want
    assert tl.knn_loo(Xi, T, k=k, task=task, max_memory="1MB") == want


def test_knn_stream_task_checks(data):
    _, Y, _, Xi = data
    st = streaming.stream("knn_loo", features=Xi, labels=Y[:90], task="regression")
    with pytest.raises(ValueError, match="differ from the bank's labels"):
        st.update(Xi[:10], Y[:10] + 1.0, start=0)
    with pytest.raises(ValueError, match="details\\(\\) is for task='classification'"):
        st.details()


def test_states_without_the_task_say_so(data):
    X, Y, _, _ = data
    with pytest.raises(ValueError, match="the streaming state of linear_probe scores task='classification' only"):
        streaming.stream("linear_probe", task="regression")
    with pytest.raises(ValueError, match="the streaming state of parc scores task='classification' only"):
        streaming.run("parc", X, Y, task="regression")
    with pytest.raises(ValueError, match="sfda does not support task='regression'"):
        streaming.stream("sfda", task="regression")
