"""Streaming PARC (``transferlab.scores.parc.stream``): bitwise the one-shot ``parc`` for any chunking,
merge order and worker split, every option, exact duplicates (the probe may land in a run of them),
distinct rows whose canonical keys collide, float16 / bfloat16 chunks; O(N) keys, O(probe) rows."""
from __future__ import annotations

import numpy as np
import pytest

from transferlab import parc
from transferlab.core import row_order
from transferlab.scores.parc import stream as parc_stream
from transferlab.scores import streaming

from _score_checks import class_data, digits_features
from _stream_checks import (bitwise, check_bad_use, check_chunk_sizes, check_late_string_labels, check_memmap,
                            check_merge_orders)

OPTIONS = [{}, {"pca": "exact", "label_rdm": "exact"}, {"pca": None, "probe_size": 150},
           {"probe_size": None, "n_dims": 8}, {"seed": 3, "probe_size": 300}]


def _data(n=1200, d=48, c=4, seed=31):
    X, y = class_data(n=n, d=d, c=c, sep=0.5, seed=seed)
    X[100:400], y[100:400] = X[7], y[7]  # a long run of exact duplicates: probes land in it
    X[400:420], y[400:420] = X[9], (y[9] + 1) % c  # the same row under another label
    return X, y


@pytest.mark.parametrize("kw", OPTIONS)
def test_chunk_sizes(kw):
    X, y = _data()
    check_chunk_sizes("parc", X[:300], y[:300], parc(X[:300], y[:300], **kw), bitwise, sizes=(1,), **kw)
    check_chunk_sizes("parc", X, y, parc(X, y, **kw), bitwise, sizes=(7, 1000, None), **kw)


@pytest.mark.parametrize("kw", OPTIONS[:3])
def test_merge_orders_forks_pickle(kw):
    X, y = _data()
    check_merge_orders("parc", X, y, parc(X, y, **kw), bitwise, **kw)


def test_memmap_permutation_and_keys_only(tmp_path):
    X, y = _data()
    want = parc(X, y)
    check_memmap("parc", X, y, want, bitwise, tmp_path)
    perm = np.random.default_rng(4).permutation(len(y))
    bitwise(streaming.run("parc", X[perm], y[perm], chunk_rows=100), want)
    st = streaming.stream("parc")
    st.update(X, y).end_pass()
    assert st.k1 is None and len(st.probe) == 500  # pass 1 kept keys only, then the probe's runs
    assert len(st.runs) < 500  # probes in the run of duplicates share it
    st.update(X, y)
    assert sum(len(rows) for rows in st.found.values()) <= 500  # each distinct probe row once


@pytest.mark.parametrize("dtype", [np.float16, "bfloat16", np.float64])
def test_dtypes(dtype):
    X, y = _data(n=700)
    if dtype == "bfloat16":
        import torch

        X = torch.from_numpy(X).to(torch.bfloat16)
        chunks = lambda: [(X[a : a + 99], y[a : a + 99]) for a in range(0, 700, 99)]  # noqa: E731
        bitwise(streaming.run("parc", chunks), parc(X, y))
        return
    X = X.astype(dtype)
    check_chunk_sizes("parc", X, y, parc(X, y), bitwise, sizes=(99,))


def test_distinct_rows_with_colliding_keys(monkeypatch):
    X, y = _data(n=900, d=12)
    X[8, 0] = 0.0
    X[7], X[7, 0], y[7] = X[8], 1e-30, y[8]  # same projections (rounding) and label, other contents
    real = row_order.row_keys

    def coarse(blk):  # many distinct rows tie: the content tie-break orders them
        k1, k2 = real(blk)
        return np.floor(k1 / 4.0), np.floor(k2 / 4.0)

    for kw in ({}, {"probe_size": None, "pca": "exact"}):
        bitwise(streaming.run("parc", X, y, chunk_rows=77, **kw), parc(X, y, **kw))
    monkeypatch.setattr(row_order, "row_keys", coarse)
    monkeypatch.setattr(parc_stream, "row_keys", coarse)
    want = parc(X, y)
    check_chunk_sizes("parc", X, y, want, bitwise, sizes=(7, None))
    check_merge_orders("parc", X, y, want, bitwise)


def test_digits_late_string_labels():
    H, y = digits_features()
    for kw in ({}, {"pca": "exact"}):
        check_late_string_labels("parc", H, y, parc, bitwise, **kw)


def test_bad_use():
    X, y = _data(n=300)
    check_bad_use("parc", X, y)
    with pytest.raises(ValueError, match="pca"):
        streaming.stream("parc", pca="full")
    with pytest.raises(ValueError, match="label_rdm"):
        streaming.stream("parc", label_rdm="dense")
    with pytest.raises(ValueError, match="probe_size"):
        streaming.run("parc", X, y, probe_size=1)
    with pytest.raises(ValueError, match="single class"):
        streaming.run("parc", X, np.r_[np.zeros(299, dtype=int), 1], probe_size=10)
    st = streaming.stream("parc")
    st.update(X, y).end_pass()
    Xo = X.copy()
    Xo[:, 0] += 1.0  # other rows, same count: the probe rows are not found
    with pytest.raises(ValueError, match="other rows than the first"):
        st.update(Xo, y).compute()
