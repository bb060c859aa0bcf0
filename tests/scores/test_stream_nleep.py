"""Streaming NLEEP (``transferlab.scores.nleep.stream``): equal to the one-shot ``nleep`` to 1e-9 for
any chunking, merge order and worker split, with exact duplicates and distinct rows whose canonical
keys collide (both put in the one-shot's canonical order), the 5C fallback and its warning."""
from __future__ import annotations

import numpy as np
import pytest

from transferlab import nleep
from transferlab.core import row_order
from transferlab.scores.nleep import stream as nleep_stream
from transferlab.scores import streaming

from _score_checks import class_data, digits_features
from _stream_checks import (check_bad_use, check_chunk_sizes, check_late_string_labels, check_memmap,
                            check_low_precision, check_merge_orders, within)

SAME = within()
K = {"components": 6}  # a small mixture keeps the EM fast; the default rule is tested below


def _data(n=400, d=10, c=3, seed=21):
    X, y = class_data(n=n, d=d, c=c, sep=1.0, seed=seed)
    X = (X + 5.0).astype(np.float32)
    X[40:52], y[40:52] = X[3], y[3]  # exact duplicates (a tied run in the canonical order)
    X[60:64], y[60:64] = X[5], (y[5] + 1) % c  # the same rows under another label
    return X, y


def test_chunk_sizes():
    X, y = _data()
    check_chunk_sizes("nleep", X[:300], y[:300], nleep(X[:300], y[:300], **K), SAME, sizes=(1,), **K)
    check_chunk_sizes("nleep", X, y, nleep(X, y, **K), SAME, sizes=(7, 1000, None), **K)


def test_default_rule_and_ratio():
    X, y = _data(n=300)
    check_chunk_sizes("nleep", X, y, nleep(X, y), SAME, sizes=(64,))
    check_chunk_sizes("nleep", X, y, nleep(X, y, components="ratio", var_ratio=0.6), SAME, sizes=(64,),
                      components="ratio", var_ratio=0.6)


def test_merge_orders_forks_pickle():
    X, y = _data()
    check_merge_orders("nleep", X, y, nleep(X, y, **K), SAME, **K)


def test_memmap_and_row_permutation(tmp_path):
    X, y = _data()
    want = nleep(X, y, **K)
    check_memmap("nleep", X, y, want, SAME, tmp_path, **K)
    perm = np.random.default_rng(2).permutation(len(y))
    SAME(streaming.run("nleep", X[perm], y[perm], chunk_rows=50, **K), want)


def test_distinct_rows_with_colliding_keys(monkeypatch):
    # Coarse keys make many distinct rows tie: the content tie-break decides their order, in the
    # one-shot and in the stream alike.
    X, y = _data(n=300)
    real = row_order.row_keys

    def coarse(blk):
        k1, k2 = real(blk)
        return np.floor(k1 / 4.0), np.floor(k2 / 4.0)

    monkeypatch.setattr(row_order, "row_keys", coarse)
    monkeypatch.setattr(nleep_stream, "row_keys", coarse)
    want = nleep(X, y, **K)
    check_chunk_sizes("nleep", X, y, want, SAME, sizes=(7, None), **K)
    check_merge_orders("nleep", X, y, want, SAME, **K)


def test_collision_by_rounding():
    # Distinct rows with the same projections (1e-30 vanishes in them) and label, as in test_nleep.
    X, y = _data(n=300)
    X[8, 0] = 0.0
    X[7], X[7, 0], y[7] = X[8], 1e-30, y[8]
    check_chunk_sizes("nleep", X, y, nleep(X, y, **K), SAME, sizes=(7, None), **K)


def test_digits_late_string_labels():
    H, y = digits_features()
    check_late_string_labels("nleep", H, y, nleep, SAME, chunk=300, components=10)


def test_fallback_warns_at_compute():
    X, y = class_data(n=120, d=5, c=30, sep=1.0, seed=4)
    st = streaming.stream("nleep")
    for _ in range(2):
        st.update(X, y).end_pass()
    with pytest.warns(UserWarning, match=r"K=150 .* n_samples=120; fitting K=12"):
        got = st.compute()
    assert got == pytest.approx(nleep(X, y, components=12), rel=1e-9)


def test_bad_use():
    X, y = _data(n=200)
    check_bad_use("nleep", X, y, **K)
    with pytest.raises(ValueError, match="var_ratio"):
        streaming.stream("nleep", var_ratio=1.5)
    with pytest.raises(ValueError, match="components"):
        streaming.stream("nleep", components="10c")
    with pytest.raises(ValueError, match="needs at least 500 samples"):
        streaming.run("nleep", X, y, components=500)


def test_float16_and_bfloat16_chunks():
    # sep=0.3: overlapping classes. With sep=1.0 the mixture's components are pure, NLEEP is 0 up to rounding
    # (0.0 and -1.5e-17 on numpy 2.4 / scikit-learn 1.9) and a relative comparison compares noise.
    X, y = class_data(n=500, d=80, c=4, sep=0.3, seed=3)
    check_low_precision("nleep", X, y, nleep, SAME, **K)
