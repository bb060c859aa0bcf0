"""Streaming NCE (one pass, integer joint counts): equal to ``transferlab.nce`` (bitwise: the counts
are exact) for chunk sizes {1, 7, 1000, N}, any merge order of pickled worker forks, a read-only
memmap through ``streaming.run``, labels first seen late (strings too), real and random
probabilities, logits, argmax ties; the one-shot's errors for bad rows; inputs never mutated."""
from __future__ import annotations

import numpy as np
import pytest

from transferlab import nce
from transferlab.scores.streaming import NceStream

from conftest import digest
from _score_checks import digits_probs, rel
from _stream_checks import MERGE_ORDERS, chunked, late_labels, memmap_run, merged
from test_nce import _probs

ONE_SHOT_REL = 1e-9


@pytest.mark.parametrize("size", [1, 7, 1000, None])
@pytest.mark.parametrize("kind", ["probs", "logits", "digits"])
def test_chunked_equals_one_shot(kind, size):
    n = 300 if size == 1 else 1500
    if kind == "digits":
        P, y = digits_probs()
        P, y = P[:n], y[:n]
    else:
        P, y, L = _probs(n=n, z=8, c=5, seed=n)
        P = L if kind == "logits" else P.astype(np.float32)
    kw = {"from_logits": kind == "logits"}
    before = digest(P, y)
    got = chunked(NceStream(**kw), P, y, size or len(y))
    assert digest(P, y) == before
    want = nce(P, y, **kw)
    assert got == want  # integer counts: the very same number
    assert rel(got, want) < ONE_SHOT_REL


@pytest.mark.parametrize("order", MERGE_ORDERS)
def test_any_merge_order_through_pickled_forks(order):
    P, y, _ = _probs(n=1000, z=12, c=6, seed=2)
    assert merged(NceStream(), P, y, 130, order, seed=3) == nce(P, y)


def test_memmap_labels_late_and_ties(tmp_path):
    P, y = digits_probs()
    assert memmap_run(tmp_path, "nce", P, y, 333) == nce(P, y)
    Ps, names = late_labels(P, y)
    assert chunked(NceStream(), Ps, names, 200) == nce(Ps, names)
    # Ties in the argmax go to the lowest source class, in every chunk as in the one-shot.
    T = np.full((60, 4), 0.25)
    T[::3] = [0.1, 0.4, 0.4, 0.1]
    yt = np.arange(60) % 2
    assert chunked(NceStream(), T, yt, 7) == nce(T, yt)


def test_bad_rows_and_bad_use():
    P, y, L = _probs(n=200, z=6, c=3)
    for bad, hint in [(L, "from_logits=True"), (P * 2, "sum to 1")]:
        with pytest.raises(ValueError) as one:
            nce(bad, y)
        with pytest.raises(ValueError) as st:
            NceStream().update(bad, y)
        assert str(st.value).startswith(str(one.value)) and hint in str(st.value)
    bad = P.copy()
    bad[4, 1] = np.inf
    with pytest.raises(ValueError, match="NaN or inf in 1 row"):
        NceStream().update(bad, y)
    with pytest.raises(ValueError, match="n_source_classes"):
        NceStream().update(P, y).update(P[:, :5] / P[:, :5].sum(1, keepdims=True), y)
    with pytest.raises(ValueError, match="need at least 2 classes, got 1"):
        NceStream().update(P, np.zeros(200, dtype=int)).compute()
    with pytest.raises(ValueError, match="at least 2 samples"):
        NceStream().update(P[:1], y[:1]).compute()
    with pytest.raises(ValueError, match="n_samples=0"):
        NceStream().compute()
    with pytest.raises(ValueError, match="different options"):
        NceStream().merge(NceStream(from_logits=True).update(L, y))
    st = NceStream().update(P, y)
    st.end_pass()
    with pytest.raises(ValueError, match="every pass has ended"):
        st.update(P, y)
    assert st.compute() == nce(P, y)
