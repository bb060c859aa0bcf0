"""Odd but plausible arguments get the library's own errors (hostile-input issue, defect 13):
``parc(n_dims=float('inf'))`` was an OverflowError, a torch tensor with the negative bit set
(``x.conj().imag``) and float8 tensors gave torch's errors without naming the argument."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import transferlab as tl
from transferlab.scores import streaming


def _data():
    rng = np.random.default_rng(0)
    y = np.arange(90) % 3
    return (rng.normal(size=(3, 8))[y] + rng.normal(size=(90, 8))).astype(np.float32), y


@pytest.mark.parametrize("n_dims,err", [(float("inf"), TypeError), (2.5, TypeError), (True, TypeError),
                                        ("8", TypeError), (0, ValueError), (-1, ValueError)])
def test_parc_n_dims_is_a_positive_int(n_dims, err):
    X, y = _data()
    with pytest.raises(err, match="n_dims must be a positive int"):
        tl.parc(X, y, n_dims=n_dims)
    with pytest.raises(err, match="n_dims must be a positive int"):
        streaming.stream("parc", n_dims=n_dims)
    assert np.isfinite(tl.parc(X, y, n_dims=np.int64(4)))


@pytest.mark.parametrize("name", ["logme", "knn_loo", "sfda", "hscore"])
def test_lazy_negative_and_conjugate_views_are_read_as_their_values(name):
    X, y = _data()
    t = torch.from_numpy(X)
    view = torch.complex(t, t).conj().imag  # -t, as a lazy view with the negative bit set
    assert view.is_neg()
    assert tl.score(name, view, y) == tl.score(name, -X, y)
    assert view.is_neg()  # the caller's tensor is untouched


@pytest.mark.parametrize("dtype", ["float8_e4m3fn", "float8_e5m2"])
def test_float8_tensors_are_refused_naming_the_argument(dtype):
    X, y = _data()
    if not hasattr(torch, dtype):
        pytest.skip(f"torch has no {dtype}")
    with pytest.raises(TypeError, match=r"features has unsupported dtype .*float8.*features\.float\(\)"):
        tl.logme(torch.from_numpy(X).to(getattr(torch, dtype)), y)
