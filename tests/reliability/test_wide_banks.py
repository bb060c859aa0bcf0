"""Wide banks (hostile-input issue, defect 11): sfda, hscore, reg_hscore, gbc and nleep build D x D float64
matrices whatever N is: shape (6, 200000) asked for hundreds of GiB and died in the allocation (or
swapped). They now raise up front, naming the memory the state needs and what is available; LogME, whose
N <= D path works on the N x N Gram, still scores such a bank."""
from __future__ import annotations

import numpy as np
import pytest

import transferlab as tl
from transferlab.core import blocks

WIDE_D = ["sfda", "hscore", "reg_hscore", "gbc", "nleep"]


@pytest.mark.parametrize("name", WIDE_D)
def test_a_d_by_d_state_larger_than_the_machine_raises_up_front(name):
    X = np.random.default_rng(0).normal(size=(6, 200_000)).astype(np.float32)
    with pytest.raises(ValueError, match=rf"{name} needs about .* GiB for its D x D float64 state with "
                                         r"n_features=200000 .* available"):
        tl.score(name, X, np.arange(6) % 2)


@pytest.mark.parametrize("name", WIDE_D)
def test_the_check_uses_the_memory_available_now(name, monkeypatch):
    rng = np.random.default_rng(1)
    y = np.arange(120) % 3
    X = (rng.normal(size=(3, 40))[y] + rng.normal(size=(120, 40))).astype(np.float32)
    monkeypatch.setattr(blocks, "available_memory", lambda: 10_000)  # 10 kB: far below 40 x 40 float64 matrices
    with pytest.raises(ValueError, match="D x D float64 state"):
        tl.score(name, X, y)
    monkeypatch.setattr(blocks, "available_memory", lambda: None)  # unknown: no refusal
    assert np.isfinite(tl.score(name, X, y))


def test_logme_scores_a_wide_bank_through_its_n_by_n_path():
    X = np.random.default_rng(0).normal(size=(6, 200_000)).astype(np.float32)
    with pytest.warns(UserWarning, match="n_samples=6 < n_features=200000"):
        assert np.isfinite(tl.logme(X, np.arange(6) % 2))
