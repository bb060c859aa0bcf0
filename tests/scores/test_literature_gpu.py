"""The eight literature scores on device="cuda": the Gram seam reads the bank on the GPU and the eigensolves
run there (``core.linalg`` with the bank's device); only D x D, C x D and N-vectors come back to the host.

Two layers:
* CPU (always runs): the whole "cuda" code path of every score, driven on the host. ``fake_cuda`` makes
  ``device="cuda"`` place the bank as a CPU torch tensor labelled "cuda" (the torch path of ``kernels.lda``,
  the same one the CUDA build falls back to) and solves the eigenproblems with torch.linalg on the CPU;
  the result must equal device="cpu" to 1e-9 relative, and the path must really have been taken.
* GPU (marked ``cuda``: skipped without a device): the real thing against device="cpu", for CUDA tensors of
  every dtype, host arrays sent with device="cuda", and CUDA tensors scored with device="cpu".
"""
from __future__ import annotations

import numpy as np
import pytest

import transferlab as tl
from transferlab.core.arrays import as_matrix
from transferlab.core import devices, linalg
from transferlab.scores import _gram
from transferlab.kernels import lda

from _score_checks import digits_features, digits_probs, fake_cuda  # noqa: F401 (a fixture)
from conftest import class_data, digest

torch = pytest.importorskip("torch")

# (score, keyword arguments): every literature score, and the options that take other GPU code.
CASES = [
    ("logme", {}),
    ("hscore", {}),
    ("reg_hscore", {}),
    ("gbc", {}),
    ("gbc", {"gaussian": "diagonal", "pca_dims": 8}),
    ("transrate", {}),
    ("transrate", {"variant": "original"}),
    ("nleep", {}),
    ("parc", {"pca": "exact", "n_dims": 16}),
    ("parc", {}),
]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'default'}" for n, kw in CASES]
REL_FAKE = 1e-9
REL_GPU = 1e-8  # cuBLAS / cuSOLVER sum and rotate in other orders than LAPACK and the CPU kernels


def _score(name):
    return getattr(tl, name)


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_cuda_path_equals_cpu_on_the_host(fake_cuda, name, kw):
    X, y = class_data(n=700, d=72, c=6, sep=1.0, seed=3)  # D > GBC's 64 PCA dims
    want = _score(name)(X, y, device="cpu", **kw)
    got = _score(name)(X, y, device="cuda", **kw)
    assert got == pytest.approx(want, rel=REL_FAKE)
    assert fake_cuda["placed"] == 1
    randomized_parc = name == "parc" and "pca" not in kw
    if not randomized_parc:  # PARC's default randomized PCA is scikit-learn's, on the host
        assert fake_cuda["grams"] >= 1 and fake_cuda["solves"] >= 1, fake_cuda


@pytest.mark.parametrize("name", ["logme", "hscore", "reg_hscore", "gbc", "transrate", "nleep"])
def test_cuda_path_on_real_features_and_low_precision(fake_cuda, name):
    X, y = digits_features()
    for dtype in (np.float32, np.float16):
        Xd = X.astype(dtype)
        want = _score(name)(Xd, y, device="cpu")
        assert _score(name)(Xd, y, device="cuda") == pytest.approx(want, rel=REL_FAKE), dtype


def test_logme_cuda_path_with_fewer_rows_than_dims(fake_cuda):
    X, y = class_data(n=30, d=50, c=3, seed=4)
    with pytest.warns(UserWarning, match="n_samples=30 < n_features=50"):
        want = tl.logme(X, y, device="cpu")
    with pytest.warns(UserWarning):
        assert tl.logme(X, y, device="cuda") == pytest.approx(want, rel=REL_FAKE)


def test_nce_cuda_path_validates_and_counts_on_the_device(fake_cuda):
    P, y = digits_probs()
    assert tl.nce(P, y, device="cuda") == tl.nce(P, y, device="cpu")  # integer counts: bitwise
    bad = P.copy()
    bad[5, 0] += 0.5
    with pytest.raises(ValueError) as on_device:
        tl.nce(bad, y, device="cuda")
    with pytest.raises(ValueError) as on_host:
        tl.nce(bad, y, device="cpu")
    assert str(on_device.value) == str(on_host.value)
    assert "row 5" in str(on_device.value)


def test_solver_device_is_scoped_to_the_call(fake_cuda):
    X, y = class_data(n=300, d=20, c=4, seed=5)
    tl.logme(X, y, device="cuda")
    solves = fake_cuda["solves"]
    assert solves > 0  # the GPU call solved on the device
    tl.logme(X, y, device="cpu")
    assert fake_cuda["solves"] == solves  # a host call after a GPU call solves on the host


def test_row_sq_norms_on_device_blocks(fake_cuda, monkeypatch):
    X, _ = class_data(n=257, d=9, seed=6)
    monkeypatch.setattr(lda, "block_rows", lambda d, *a, **k: 10)  # many blocks and a ragged tail
    m = devices.place(as_matrix(X), "cuda")
    shift = X.astype(np.float64).mean(axis=0)
    want = ((X.astype(np.float64) - shift) ** 2).sum(axis=1)
    np.testing.assert_allclose(_gram.row_sq_norms(m, shift=shift), want, rtol=1e-13)


# ------------------------------------------------------------------ on a GPU

@pytest.mark.cuda
@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_gpu_equals_cpu(name, kw, dtype):
    X, y = class_data(n=2000, d=96, c=7, sep=1.0, seed=7)
    t = torch.from_numpy(X).to(getattr(torch, dtype)).cuda()
    host = t.cpu()
    before = digest(t)
    want = _score(name)(host, y, device="cpu", **kw)
    got = _score(name)(t, y, **kw)  # device="auto": where the bank lives
    assert got == pytest.approx(want, rel=REL_GPU)
    assert digest(t) == before


@pytest.mark.cuda
@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_gpu_on_real_features_host_input_and_back(name, kw):
    X, y = digits_features()
    want = _score(name)(X, y, device="cpu", **kw)
    assert _score(name)(X, y, device="cuda", **kw) == pytest.approx(want, rel=REL_GPU)  # host -> GPU
    assert _score(name)(torch.from_numpy(X).cuda(), y, device="cpu", **kw) == pytest.approx(want, rel=1e-12)


@pytest.mark.cuda
def test_gpu_nce_and_eigensolver_on_device():
    P, y = digits_probs()
    assert tl.nce(torch.from_numpy(P).cuda(), y) == tl.nce(P, y)
    G = np.cov(np.random.default_rng(0).normal(size=(50, 200)))
    w, V = linalg.eigh_desc(G, "cuda")
    w0, V0 = linalg.eigh_desc(G)
    np.testing.assert_allclose(w, w0, rtol=1e-10, atol=1e-12 * w0[0])
    np.testing.assert_allclose(np.abs(V.T @ V0).max(axis=1), 1.0, atol=1e-8)  # same directions up to sign
    A = np.random.default_rng(1).normal(size=(7, 50))
    wp, AV = linalg.eigh_desc_projected(G, A, "cuda")
    np.testing.assert_allclose(wp, w0, rtol=1e-10, atol=1e-12 * w0[0])
    np.testing.assert_allclose(np.abs(AV), np.abs(A @ V0), rtol=1e-7, atol=1e-9)  # columns up to sign
