"""Streaming LEEP (two passes): equal to ``transferlab.leep`` to 1e-9 for chunk sizes {1, 7, 1000, N},
any merge order of pickled worker forks, a read-only memmap through ``streaming.run``, labels first
seen late (strings too), real and random probabilities, logits; the one-shot's errors for bad rows;
the rules of later passes; inputs never mutated."""
from __future__ import annotations

import numpy as np
import pytest

from transferlab import leep
from transferlab.scores import streaming
from transferlab.scores.streaming import LeepStream

from conftest import digest
from _score_checks import digits_probs, rel
from _stream_checks import MERGE_ORDERS, chunked, late_labels, memmap_run, merged
from test_leep import structured_logits, structured_probs

ONE_SHOT_REL = 1e-9


@pytest.mark.parametrize("size", [1, 7, 1000, None])
@pytest.mark.parametrize("kind", ["probs", "logits", "digits"])
def test_chunked_equals_one_shot(kind, size, monkeypatch):
    n = 300 if size == 1 else 1500
    if size == 1:  # one kernel call per row: OpenMP's fork/join per call dominates on a loaded machine
        monkeypatch.setenv("TRANSFERLAB_NUM_THREADS", "1")
    if kind == "probs":
        P, y = structured_probs(n=n, z=13, c=4, seed=3, dtype=np.float32)
    elif kind == "logits":
        P, y = structured_logits(n=n, z=40, c=5, seed=3)
    else:
        P, y = digits_probs()
        P, y = (P[:n], y[:n])
    kw = {"from_logits": kind == "logits"}
    before = digest(P, y)
    got = chunked(LeepStream(**kw), P, y, size or len(y))
    assert digest(P, y) == before
    assert rel(got, leep(P, y, **kw)) < ONE_SHOT_REL


@pytest.mark.parametrize("order", MERGE_ORDERS)
def test_any_merge_order_through_pickled_forks(order):
    P, y = structured_probs(n=1000, z=20, c=6, seed=4)
    assert rel(merged(LeepStream(), P, y, 130, order, seed=1), leep(P, y)) < ONE_SHOT_REL
    L, yl = structured_logits(n=700, z=30, c=4, seed=5)
    assert rel(merged(LeepStream(from_logits=True), L, yl, 90, order), leep(L, yl, from_logits=True)) < ONE_SHOT_REL


def test_memmap_through_run(tmp_path):
    P, y = digits_probs()
    got = memmap_run(tmp_path, "leep", P.astype(np.float32), y, 333)
    assert rel(got, leep(P.astype(np.float32), y)) < ONE_SHOT_REL
    assert streaming.stream("leep", from_logits=True).params == {"from_logits": True}


def test_labels_first_seen_late_strings():
    P, y = digits_probs()
    Ps, names = late_labels(P, y * 3 + np.arange(len(y)) % 3)  # 9 target classes, one or two per chunk
    assert rel(chunked(LeepStream(), Ps, names, 200), leep(Ps, names)) < ONE_SHOT_REL
    assert rel(merged(LeepStream(), Ps, names, 200, "reverse"), leep(Ps, names)) < ONE_SHOT_REL


def test_zero_mass_source_class_and_torch_chunks():
    torch = pytest.importorskip("torch")
    P, y = structured_probs(n=400, z=9, c=3, seed=6)
    P[:, 4] = 0.0
    P /= P.sum(axis=1, keepdims=True)
    want = leep(P, y)
    assert np.isfinite(want)
    assert rel(chunked(LeepStream(), torch.from_numpy(P), torch.from_numpy(y), 64), want) < ONE_SHOT_REL


def _same_error(bad, y, **kw):
    """The stream's message for a bad bank starts with the one-shot's."""
    with pytest.raises(ValueError) as one:
        leep(bad, y, **kw)
    with pytest.raises(ValueError) as st:
        LeepStream(**kw).update(bad, y)
    assert str(st.value).startswith(str(one.value))
    return str(st.value)


def test_bad_rows_give_the_one_shot_errors():
    P, y = structured_probs(n=200, z=6, c=3, seed=7)
    L, _ = structured_logits(n=200, z=6, c=3)
    assert "from_logits=True" in _same_error(L, y)
    assert "sum to 1" in _same_error(P * 1.5, y)
    bad = P.copy()
    bad[5, 2] = np.nan
    assert "NaN or inf in 1 row" in _same_error(bad, y)
    assert "NaN or inf" in _same_error(np.where(np.isnan(bad), np.nan, L), y, from_logits=True)
    with pytest.raises(ValueError, match="swapped"):
        LeepStream().update(y, P)
    # Rows of a later chunk: numbers within the chunk, and where it starts.
    st = LeepStream().update(P[:50], y[:50])
    with pytest.raises(ValueError, match=r"first at row 3\).*starts after 50 rows"):
        st.update(np.vstack([P[:3], L[:2]]), y[:5])


def test_bad_use():
    P, y = structured_probs(n=200, z=6, c=3, seed=8)
    with pytest.raises(ValueError, match="n_source_classes"):
        LeepStream().update(P, y).update(P[:, :5] / P[:, :5].sum(1, keepdims=True), y)
    with pytest.raises(ValueError, match="need at least 2 classes, got 1"):
        LeepStream().update(P, np.zeros(200, dtype=int)).end_pass()
    with pytest.raises(ValueError, match="at least 2 samples"):
        LeepStream().update(P[:1], y[:1]).end_pass()
    with pytest.raises(ValueError, match="n_samples=0"):
        LeepStream().end_pass()
    st = LeepStream().update(P, y)
    with pytest.raises(ValueError, match="needs 2 passes"):
        st.compute()
    st.end_pass()
    with pytest.raises(ValueError, match="not seen in the first pass"):
        st.fork().update(P[:5], np.full(5, 99))
    st.update(P[:-1], y[:-1])
    with pytest.raises(ValueError, match="saw 199 rows but the first pass saw 200"):
        st.compute()
    with pytest.raises(ValueError, match="different options"):
        LeepStream().merge(LeepStream(from_logits=True).update(P, y))
    with pytest.raises(TypeError, match="from_logits"):
        LeepStream(from_logits="yes")
