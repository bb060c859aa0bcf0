"""Streaming TransRate (``transferlab.scores.transrate.stream``): equal to the one-shot ``transrate``
to 1e-9 for both variants, any chunking, merge order and worker split, classes with fewer rows than
D, and a rank-deficient bank (the rank from the Gram's eigenvalues with the one-shot's tolerance)."""
from __future__ import annotations

import numpy as np
import pytest

from transferlab import transrate
from transferlab.scores import streaming
from transferlab.scores.transrate.one_shot import _rank, gram_eigenvalues

from _score_checks import class_data, digits_features
from _stream_checks import (check_bad_use, check_chunk_sizes, check_late_string_labels, check_memmap,
                            check_low_precision, check_merge_orders, within)

SAME = within()
VARIANTS = ["normalized", "original"]


def _data(n=900, d=16, c=4, seed=5):
    X, y = class_data(n=n, d=d, c=c, sep=1.0, seed=seed)
    return (X + 2.0).astype(np.float32), y


@pytest.mark.parametrize("variant", VARIANTS)
def test_chunk_sizes(variant):
    X, y = _data()
    check_chunk_sizes("transrate", X[:300], y[:300], transrate(X[:300], y[:300], variant=variant), SAME,
                      sizes=(1,), variant=variant)
    check_chunk_sizes("transrate", X, y, transrate(X, y, variant=variant), SAME, sizes=(7, 1000, None),
                      variant=variant)


@pytest.mark.parametrize("variant", VARIANTS)
def test_merge_orders_forks_pickle(variant):
    X, y = _data()
    check_merge_orders("transrate", X, y, transrate(X, y, variant=variant), SAME, variant=variant)


@pytest.mark.parametrize("n,d", [(300, 150), (90, 200)])
def test_classes_with_fewer_rows_than_d(n, d):
    # The one-shot eigensolves the row Gram Z_c Z_c^T there; the stream keeps the top n_c eigenvalues
    # of its D x D Gram (the others are zero in exact arithmetic).
    X, y = class_data(n=n, d=d, c=3, sep=1.0, seed=n + d)
    for v in VARIANTS:
        check_chunk_sizes("transrate", X, y, transrate(X, y, variant=v), SAME, sizes=(7, None), variant=v)


def test_rank_deficient_bank(tmp_path):
    # rank 6 in 20 dimensions (plus dead units): rank(Z) must come out the same as the one-shot's
    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 700)
    X = (rng.standard_normal((700, 6)) + y[:, None]) @ rng.standard_normal((6, 20))
    X = np.hstack([X, np.zeros((700, 3))])
    st = streaming.stream("transrate")
    for s in range(0, 700, 64):
        st.update(X[s : s + 64], y[s : s + 64])
    st.end_pass()
    for s in range(0, 700, 64):
        st.update(X[s : s + 64], y[s : s + 64])
    total = st.grams.sum(axis=0)
    assert _rank(gram_eigenvalues(total, 700) * 700, 700, 23) == 6
    SAME(st.compute(), transrate(X, y))
    check_memmap("transrate", X, y, transrate(X, y), SAME, tmp_path)
    check_memmap("transrate", X, y, transrate(X, y, eps=1e-2), SAME, tmp_path, eps=1e-2)


def test_digits_late_string_labels():
    H, y = digits_features()
    check_late_string_labels("transrate", H, y, transrate, SAME, variant="original")
    H = H[:, H.max(axis=0) > 0]
    check_late_string_labels("transrate", H, y, transrate, SAME)


def test_bad_use():
    X, y = _data(n=200)
    check_bad_use("transrate", X, y)
    Xz = X.copy()
    Xz[7] = 0
    st = streaming.stream("transrate").update(X[:5], y[:5])
    with pytest.raises(ValueError, match=r"1 all-zero row\(s\) \(first at row 12\)"):
        st.update(Xz[:10], y[:10])  # rows numbered across chunks: 5 + 7
    assert np.isfinite(streaming.run("transrate", Xz, y, variant="original"))
    with pytest.raises(ValueError, match="variant"):
        streaming.stream("transrate", variant="paper")
    with pytest.raises(ValueError, match="eps"):
        streaming.stream("transrate", eps=0.0)


def test_float16_and_bfloat16_chunks():
    X, y = class_data(n=500, d=80, c=4, sep=1.0, seed=3)
    check_low_precision("transrate", X, y, transrate, SAME)
