"""Streaming GBC (``transferlab.scores.gbc.stream``): equal to the one-shot ``gbc`` to 1e-9 with and
without the PCA pass, both gaussian= options, any chunking, merge order and worker split."""
from __future__ import annotations

import numpy as np
import pytest

from transferlab import gbc
from transferlab.scores import streaming

from _score_checks import class_data, digits_features
from _stream_checks import (check_bad_use, check_chunk_sizes, check_late_string_labels, check_memmap,
                            check_low_precision, check_merge_orders, within)

SAME = within()
GAUSSIANS = ["spherical", "diagonal"]


def _data(n, d, offset=30.0, seed=11):
    X, y = class_data(n=n, d=d, c=5, sep=1.0, seed=seed)
    return (X + offset).astype(np.float32), y  # a large common offset: variances must not cancel


@pytest.mark.parametrize("gaussian", GAUSSIANS)
@pytest.mark.parametrize("d", [12, 100])  # 100 > pca_dims=64: the two-pass PCA path
def test_chunk_sizes(gaussian, d):
    X, y = _data(1200, d)
    st = streaming.stream("gbc", gaussian=gaussian)
    st.update(X[:5], y[:5])
    assert st.n_passes == (2 if d > 64 else 1)
    check_chunk_sizes("gbc", X[:300], y[:300], gbc(X[:300], y[:300], gaussian=gaussian), SAME, sizes=(1,),
                      gaussian=gaussian)
    check_chunk_sizes("gbc", X, y, gbc(X, y, gaussian=gaussian), SAME, sizes=(7, 1000, None), gaussian=gaussian)


@pytest.mark.parametrize("gaussian", GAUSSIANS)
@pytest.mark.parametrize("d", [12, 100])
def test_merge_orders_forks_pickle(gaussian, d):
    X, y = _data(900, d)
    check_merge_orders("gbc", X, y, gbc(X, y, gaussian=gaussian), SAME, gaussian=gaussian)


def test_pca_dims_options_and_memmap(tmp_path):
    X, y = _data(800, 40)
    for kw in ({"pca_dims": 16}, {"pca_dims": None}, {"pca_dims": 16, "gaussian": "diagonal"}):
        check_memmap("gbc", X, y, gbc(X, y, **kw), SAME, tmp_path, **kw)
    # pca_dims capped at N as the one-shot does (N = 30 rows < 64 dims < D = 100)
    Xs, ys = _data(30, 100)
    check_chunk_sizes("gbc", Xs, ys, gbc(Xs, ys), SAME, sizes=(7,))


def test_digits_late_string_labels():
    H, y = digits_features(hidden=96)  # D = 96 > 64: PCA; dead units make the Gram rank-deficient
    for g in GAUSSIANS:
        check_late_string_labels("gbc", H, y, gbc, SAME, gaussian=g)
        check_late_string_labels("gbc", H, y, gbc, SAME, gaussian=g, pca_dims=None)


def test_small_variances_hit_the_floor():
    X, y = _data(400, 8)
    X = (X - 30.0) * 1e-3 + 5.0  # per-dimension variances ~1e-6 < the 1e-4 floor
    check_chunk_sizes("gbc", X, y, gbc(X, y), SAME, sizes=(7, None))


@pytest.mark.parametrize("d", [12, 100])
def test_bad_use(d):
    X, y = _data(200, d)
    check_bad_use("gbc", X, y)
    with pytest.raises(ValueError, match="gaussian"):
        streaming.stream("gbc", gaussian="full")
    with pytest.raises(ValueError, match="pca_dims"):
        streaming.stream("gbc", pca_dims=0)


def test_large_offset_does_not_cancel():
    # Rows 1e6 away from the origin, unit spread: variances from raw sums of squares would lose
    # ~12 digits; the chunk moments merged with Chan's update keep them.
    X, y = _data(600, 8, offset=0.0)
    X = X.astype(np.float64) + 1e6
    for g in GAUSSIANS:
        check_chunk_sizes("gbc", X, y, gbc(X, y, gaussian=g), SAME, sizes=(1, 7, None), gaussian=g)
    X, y = _data(600, 80, offset=0.0)  # and through the PCA pass (the shifted Gram)
    X = X.astype(np.float64) + 1e6
    check_chunk_sizes("gbc", X, y, gbc(X, y), SAME, sizes=(7, None))


def test_float16_and_bfloat16_chunks():
    X, y = class_data(n=500, d=80, c=4, sep=1.0, seed=3)
    check_low_precision("gbc", X, y, gbc, SAME)
