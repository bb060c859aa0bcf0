"""Shared helpers for the Gram-family score tests: digits features from a small trained network,
the published baselines, and the checks every score must pass (BAD_INPUTS.md, no mutation,
label remapping, row order)."""
from __future__ import annotations

import functools
import os
import sys
import warnings

import numpy as np
import pytest

from conftest import class_data, digest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # bench.baselines (the published algorithms)


@functools.lru_cache(maxsize=None)
def digits_features(hidden: int = 64):
    """Hidden-layer ReLU activations of a small MLP trained on scikit-learn's digits (float32, (1797, hidden)).

    Real learned features: class structure, correlated units and some dead (all-zero) units, which
    make the Gram rank-deficient as real banks often are.
    """
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    d = load_digits()
    X = d.data / 16.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp = MLPClassifier(hidden_layer_sizes=(hidden,), max_iter=30, random_state=0).fit(X, d.target)
    H = np.maximum(X @ mlp.coefs_[0] + mlp.intercepts_[0], 0.0)
    return H.astype(np.float32), d.target.copy()


def digits_probs():
    """Source probabilities: a 10-class MLP's predict_proba on digits, scored against a coarser target."""
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    d = load_digits()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp = MLPClassifier(hidden_layer_sizes=(32,), max_iter=30, random_state=1).fit(d.data / 16.0, d.target)
    return mlp.predict_proba(d.data / 16.0), d.target % 3


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


# ------------------------------------------------------------------ checks shared by every score


def check_no_mutation(func, X, y, tmp_path, **kw):
    """Hash float32 / float64 / read-only memmap inputs before and after; the memmap gives the same score."""
    X64 = X.astype(np.float64)
    h = digest(X, X64, y)
    a = func(X, y, **kw)
    b = func(X64, y, **kw)
    assert digest(X, X64, y) == h
    path = tmp_path / "bank.npy"
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")
    hm = digest(mm)
    assert func(mm, y, **kw) == pytest.approx(a, rel=1e-12, abs=1e-12)
    assert digest(mm) == hm
    return a, b


def check_label_remap_and_row_order(func, X, y, rtol=1e-9, rows=True, **kw):
    """Strings / gapped labels give the remapped score; a row permutation changes nothing beyond rounding
    (``rows=False`` for scores whose published algorithm depends on row order)."""
    base = func(X, y, **kw)
    names = np.array(["cat", "dog", "emu", "fox", "gnu", "hen", "ibis", "jay", "kiwi", "lark"])
    assert func(X, names[y], **kw) == pytest.approx(base, rel=1e-12, abs=1e-12)
    assert func(X, 7 * y - 3, **kw) == pytest.approx(base, rel=1e-12, abs=1e-12)
    assert func(X, y.astype(np.float64), **kw) == pytest.approx(base, rel=1e-12, abs=1e-12)
    if not rows:
        return base
    perm = np.random.default_rng(5).permutation(len(y))
    assert func(X[perm], y[perm], **kw) == pytest.approx(base, rel=rtol, abs=rtol)
    return base


def check_bad_inputs(func, X, y, **kw):
    """BAD_INPUTS.md rows 1-4, 6-8, 10 and nan_policy='omit'."""
    Xn = X.copy()
    Xn[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf in 1 row"):
        func(Xn, y, **kw)
    keep = np.arange(len(y)) != 3
    assert func(Xn, y, nan_policy="omit", **kw) == pytest.approx(func(X[keep], y[keep], **kw), rel=1e-12)
    with pytest.raises(ValueError, match="n_samples=0"):
        func(X[:0], y[:0], **kw)
    with pytest.raises(ValueError, match="n_features=0"):
        func(X[:, :0], y, **kw)
    with pytest.raises(ValueError, match="at least 2 samples"):
        func(X[:1], y[:1], **kw)
    with pytest.raises(ValueError, match="need at least 2 classes, got 1"):
        func(X, np.zeros(len(y), dtype=int), **kw)
    with pytest.raises(ValueError, match="continuous"):
        func(X, y + 0.5, **kw)
    with pytest.raises(ValueError, match="length"):
        func(X, y[:-1], **kw)
    with pytest.raises(ValueError, match="2-D"):
        func(X[:, 0], y, **kw)
    with pytest.raises(ValueError, match="pool"):
        func(X[:, :, None, None], y, **kw)
    with pytest.raises(TypeError):
        func(X.astype(np.complex64), y, **kw)
    with pytest.raises(ValueError, match="device"):
        func(X, y, device="tpu", **kw)


def check_dtypes_and_layouts(func, X, y, rtol=1e-5, **kw):
    """float16/int/bool accepted; Fortran order, column slices and negative strides give the same score."""
    base = func(X, y, **kw)
    F = np.asfortranarray(X)
    assert func(F, y, **kw) == pytest.approx(base, rel=1e-12, abs=1e-12)
    wide = np.concatenate([X, X], axis=1)[:, : X.shape[1]]
    assert func(wide, y, **kw) == pytest.approx(base, rel=1e-12, abs=1e-12)
    rev = X[::-1]
    assert func(rev, y[::-1], **kw) == pytest.approx(base, rel=rtol, abs=rtol)
    h = X.astype(np.float16)
    assert func(h, y, **kw) == pytest.approx(func(h.astype(np.float32), y, **kw), rel=1e-12, abs=1e-12)
    ints = np.round(X * 4).astype(np.int32)
    assert func(ints, y, **kw) == pytest.approx(func(ints.astype(np.float32), y, **kw), rel=1e-12, abs=1e-12)
    return base


__all__ = ["class_data", "digest", "digits_features", "digits_probs", "rel", "check_no_mutation",
           "check_label_remap_and_row_order", "check_bad_inputs", "check_dtypes_and_layouts"]


@pytest.fixture
def fake_cuda(monkeypatch):
    """device="cuda" without a GPU: banks become CPU torch tensors labelled "cuda" (the torch path of
    ``kernels.lda``, the one the CUDA build falls back to); eigensolves use torch.linalg on the CPU.
    Returns counters of what ran on the "device" (placements, eigensolves, Gram passes)."""
    import torch

    from transferlab import kernels
    from transferlab.core import devices, linalg
    from transferlab.core.arrays import Matrix
    from transferlab.kernels import lda
    from transferlab.scores import _gram

    seen = {"placed": 0, "solves": 0, "grams": 0}

    def place(m, device):
        if device != "cuda":
            return devices.to_host(m)
        seen["placed"] += 1
        host = devices.to_host(m)
        data = host.data.view("int16") if host.is_bf16 else host.data
        t = torch.from_numpy(np.array(data))
        if host.is_bf16:
            t = t.view(torch.bfloat16)
        return Matrix(t, "cuda", host.dtype, host.name)

    def solve_on_cpu(G):
        seen["solves"] += 1
        return torch.as_tensor(np.ascontiguousarray(G, dtype=np.float64))

    real_gram = lda.gram

    def counting_gram(m, device, **kw):
        seen["grams"] += device == "cuda"
        return real_gram(m, device, **kw)

    monkeypatch.setattr(kernels, "require_cuda", lambda: None)
    monkeypatch.setattr(devices, "place", place)
    monkeypatch.setattr(devices, "to_cuda", lambda m: place(m, "cuda"))
    monkeypatch.setattr(linalg, "_torch_symmetric", solve_on_cpu)
    monkeypatch.setattr(lda, "gram", counting_gram)
    return seen
