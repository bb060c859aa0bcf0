"""The CUDA kernels on a device (marked `cuda`: skipped without one) against their CPU twins (the
test-only module transferlab._cuda_logic_testing, which runs the same decomposition and, for everything
without a transcendental, the same floating-point operations: bitwise equal), the CPU kernels and
float64 numpy; then the public scores with device="cuda" against device="cpu".

    TRANSFERLAB_EXPECT_CUDA=1 python -m pytest -q tests/cuda     # on a machine with a GPU
"""
from __future__ import annotations

import os

import numpy as np
import pytest

import transferlab
from transferlab import kernels

from conftest import class_data, digest

# test-only, built with TRANSFERLAB_BUILD_TESTING=ON (CI sets it, and tests/core/test_build.py fails there
# without it); the library never imports it.
cuda_logic = pytest.importorskip("transferlab._cuda_logic_testing",
                                 reason="test-only module: build with TRANSFERLAB_BUILD_TESTING=ON")

_C = kernels.cpu_module()
FUSED = _C.simd_level() in {"avx2", "avx512"}
DTYPE_CODE = {"float32": 0, "float64": 1, "float16": 2, "bfloat16": 3}


@pytest.mark.skipif(os.environ.get("TRANSFERLAB_EXPECT_CUDA") != "1", reason="TRANSFERLAB_EXPECT_CUDA!=1")
def test_cuda_module_built_and_entry_points_present():
    mod = kernels.cuda_module()
    assert mod is not None, "TRANSFERLAB_EXPECT_CUDA=1 but transferlab._cuda was not built"
    for name in ("knn_loo", "leep_row_stats", "leep_joint", "leep_eep", "lda_class_sums", "lda_gram", "lda_project"):
        assert hasattr(mod, name), name


def test_cuda_entry_points_raise_clearly_without_device():
    mod = kernels.cuda_module()
    if mod is None or mod.device_count() > 0:
        pytest.skip("needs a _cuda build on a machine without a visible device")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        mod.knn_loo(0, 0, 10, 4, 4, 0, 1, 0, 0, 0, 0, 0)
    with pytest.raises(RuntimeError, match="no CUDA device"):
        mod.lda_gram(0, 0, 10, 4, 4, 0, 0, 0, 0)


# ------------------------------------------------------------------ helpers (device only)
def _dev(a, dtype=None):
    import torch

    t = torch.as_tensor(np.ascontiguousarray(a))
    if dtype is not None:
        t = t.to(dtype)
    return t.cuda().contiguous()


def _view(t):
    name = str(t.dtype).replace("torch.", "")
    return int(t.data_ptr()), DTYPE_CODE[name], int(t.shape[0]), int(t.shape[1]), int(t.stride(0))


def _stream():
    import torch

    return torch.cuda.current_stream().cuda_stream


def _sync():
    import torch

    torch.cuda.current_stream().synchronize()


def _host_bits(t):
    """A device matrix as the host array _C takes (bf16 as uint16 bits)."""
    import torch

    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).cpu().numpy().view(np.uint16), True
    return t.cpu().numpy(), False


def _knn_cuda(t, y, k):
    import torch

    mod = kernels.require_cuda()
    n = t.shape[0]
    lab = _dev(y.astype(np.int32)) if y is not None else None
    idx = torch.empty((n, k), dtype=torch.int64, device="cuda")
    dist = torch.empty((n, k), dtype=torch.float32, device="cuda")
    tc = torch.empty(n, dtype=torch.int64, device="cuda")
    ts = torch.zeros(n, dtype=torch.int64, device="cuda")
    mod.knn_loo(*_view(t), lab.data_ptr() if lab is not None else 0, k, idx.data_ptr(), dist.data_ptr(),
                tc.data_ptr(), ts.data_ptr(), _stream())
    _sync()
    return idx.cpu().numpy(), dist.cpu().numpy(), tc.cpu().numpy(), ts.cpu().numpy()


# ------------------------------------------------------------------ k-NN kernel
@pytest.mark.cuda
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("k", [1, 5])
@pytest.mark.parametrize("tile", ["64", "128"])
def test_knn_cuda_equals_twin_bitwise(dtype, k, tile, monkeypatch):
    import torch

    monkeypatch.setenv("TRANSFERLAB_KNN_CUDA_TILE", tile)  # both kernels; the result never depends on it

    X, y = class_data(n=700, d=50, c=4, sep=0.6, seed=k)
    X[100:140] = X[:40]  # exact duplicates across tiles
    t = _dev(X, getattr(torch, dtype))
    host, bf16 = _host_bits(t)
    h = digest(t)
    got = _knn_cuda(t, y, k)
    want = cuda_logic.knn_loo(host, y.astype(np.int32), k, 64, bf16)
    for name, g, w in zip(("index", "dist", "tie_count", "tie_same"), got, want):
        np.testing.assert_array_equal(g, w, err_msg=name)
    assert digest(t) == h


@pytest.mark.cuda
@pytest.mark.parametrize("n", [2, 3, 65, 129, 40_000])  # 40k rows: the 128-row tiles
def test_knn_cuda_equals_cpu_kernel(n):
    rng = np.random.default_rng(n)
    d = 24
    X = rng.integers(-2, 3, size=(n, d)).astype(np.float32) if n < 1000 else rng.normal(size=(n, d)).astype(np.float32)
    y = rng.integers(0, 3, size=n).astype(np.int32)
    for k in sorted({1, min(3, n - 1), n - 1 if n < 200 else 7}):
        got = _knn_cuda(_dev(X), y, k)
        want = _C.knn_loo(X, y, k, False, 0)
        for name, g, w in zip(("index", "dist", "tie_count", "tie_same"), got, want):
            if FUSED or n < 1000:  # the same fma chain (or integer data): bitwise
                np.testing.assert_array_equal(g, w, err_msg=f"{name} k={k}")
            elif name == "dist":
                np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


@pytest.mark.cuda
def test_knn_cuda_tile_knob_is_validated(monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_KNN_CUDA_TILE", "100")
    with pytest.raises(ValueError, match="TRANSFERLAB_KNN_CUDA_TILE"):
        _knn_cuda(_dev(np.zeros((4, 2), dtype=np.float32)), None, 1)


@pytest.mark.cuda
def test_knn_cuda_deterministic_and_without_labels():
    X, y = class_data(n=5000, d=40, c=5, seed=1)
    t = _dev(X)
    a = _knn_cuda(t, y, 4)
    b = _knn_cuda(t, None, 4)
    for u, v in zip(a[:3], b[:3]):
        np.testing.assert_array_equal(u, v)
    c = _knn_cuda(t, y, 4)
    for u, v in zip(a, c):
        np.testing.assert_array_equal(u, v)


@pytest.mark.cuda
def test_knn_cuda_strided_rows():
    X, y = class_data(n=300, d=30, c=3, seed=2)
    big = _dev(np.concatenate([X, np.zeros_like(X)], axis=1))
    t = big[:, :30]  # row stride 60
    got = _knn_cuda(t, y, 2)
    want = cuda_logic.knn_loo(X, y.astype(np.int32), 2, 64)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


# ------------------------------------------------------------------ LEEP kernels
def _probs(n, z, c, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, size=n).astype(np.int32)
    P = rng.dirichlet(np.ones(z) * 0.3, size=n)
    P[np.arange(n), y * (z // c)] += 2.0
    return P / P.sum(axis=1, keepdims=True), y


@pytest.mark.cuda
@pytest.mark.parametrize("from_logits", [False, True])
def test_leep_cuda_kernels_equal_twins(from_logits):
    import torch

    mod = kernels.require_cuda()
    n, z, c = 3000, 130, 7
    P, y = _probs(n, z, c, seed=3)
    P[5, 3] = np.nan
    if from_logits:
        P = np.log(P + 1e-3) * 3.0
        P[5, 3] = np.inf
    P32 = P.astype(np.float32)
    t = _dev(P32)
    lse = torch.zeros(n, dtype=torch.float64, device="cuda")
    stats = mod.leep_row_stats(*_view(t), from_logits, 1e-3, lse.data_ptr() if from_logits else 0, _stream())
    want_stats, want_lse = cuda_logic.leep_row_stats(P32, from_logits, 1e-3)
    assert stats == want_stats  # flags, first rows, and the same tree sums: equal
    assert stats["first_nonfinite_row"] == 5
    keep = np.arange(n) != 5
    Pk, yk = P32[keep], y[keep]
    tk = _dev(Pk)
    lse_k = lse.cpu().numpy()[keep] if from_logits else None
    if from_logits:
        np.testing.assert_allclose(lse_k, want_lse[keep], rtol=1e-14)
    J = torch.zeros((c, z), dtype=torch.float64, device="cuda")
    # Every device input is bound to a name: a temporary's memory could be reused before the kernel runs.
    lse_dev = _dev(lse_k) if from_logits else None
    lse_ptr = lse_dev.data_ptr() if from_logits else 0
    yk_dev = _dev(yk)
    mod.leep_joint(*_view(tk), yk_dev.data_ptr(), c, from_logits, lse_ptr, J.data_ptr(), _stream())
    _sync()
    J = J.cpu().numpy()
    want_J = cuda_logic.leep_joint(Pk, yk, c, from_logits, lse_k)
    if from_logits:
        np.testing.assert_allclose(J, want_J, rtol=1e-13)
    else:
        np.testing.assert_array_equal(J, want_J)
    cond = np.ascontiguousarray(J / J.sum(axis=0, keepdims=True))
    cond_dev = _dev(cond)
    eep = torch.empty(Pk.shape[0], dtype=torch.float64, device="cuda")
    mod.leep_eep(*_view(tk), yk_dev.data_ptr(), c, from_logits, lse_ptr, cond_dev.data_ptr(), eep.data_ptr(),
                 _stream())
    _sync()
    want_eep = cuda_logic.leep_eep(Pk, yk, c, from_logits, lse_k, cond)
    if from_logits:
        np.testing.assert_allclose(eep.cpu().numpy(), want_eep, rtol=1e-13)
    else:
        np.testing.assert_array_equal(eep.cpu().numpy(), want_eep)


# ------------------------------------------------------------------ LDA kernels
@pytest.mark.cuda
@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
def test_lda_cuda_kernels_equal_twins(dtype):
    import torch

    mod = kernels.require_cuda()
    X, y = class_data(n=1500, d=150, c=6, seed=4)
    y = y.astype(np.int32)
    t = _dev(X, getattr(torch, dtype))
    host, bf16 = _host_bits(t)
    rng = np.random.default_rng(4)
    shift = host.astype(np.float64).mean(axis=0) if not bf16 else rng.normal(size=150)
    s = rng.uniform(0.5, 1.5, size=1500)
    shift_dev, s_dev, y_dev = _dev(shift), _dev(s), _dev(y)  # named: temporaries could be reused early
    G = torch.zeros((150, 150), dtype=torch.float64, device="cuda")
    mod.lda_gram(*_view(t), shift_dev.data_ptr(), s_dev.data_ptr(), G.data_ptr(), _stream())
    counts = torch.zeros(7, dtype=torch.int64, device="cuda")
    sums = torch.zeros((7, 150), dtype=torch.float64, device="cuda")
    mod.lda_class_sums(*_view(t), y_dev.data_ptr(), 7, shift_dev.data_ptr(), s_dev.data_ptr(), counts.data_ptr(),
                       sums.data_ptr(), _stream())
    W = rng.normal(size=(70, 150))
    b = rng.normal(size=70)
    W_dev, b_dev = _dev(W), _dev(b)
    out = torch.empty((1500, 70), dtype=torch.float64, device="cuda")
    mod.lda_project(*_view(t), W_dev.data_ptr(), b_dev.data_ptr(), 70, out.data_ptr(), _stream())
    _sync()
    np.testing.assert_array_equal(G.cpu().numpy(), cuda_logic.lda_gram(host, shift, s, 7, None, bf16))
    want_counts, want_sums = cuda_logic.lda_class_sums(host, y, 7, shift, s, 0, bf16)
    np.testing.assert_array_equal(counts.cpu().numpy(), want_counts)
    np.testing.assert_array_equal(sums.cpu().numpy(), want_sums)
    X64 = t.double().cpu().numpy()
    np.testing.assert_allclose(out.cpu().numpy(), X64 @ W.T + b, rtol=1e-12, atol=1e-10)


# ------------------------------------------------------------------ public scores: cuda vs cpu
@pytest.mark.cuda
@pytest.mark.parametrize("k", [1, 3])
def test_knn_loo_score_cuda_equals_cpu(k):
    import torch

    X, y = class_data(n=2000, d=64, c=8, sep=0.5, seed=k)
    X[1000:1100] = X[:100]
    for metric in ("euclidean", "cosine"):
        cpu = transferlab.knn_loo(X, y, k=k, metric=metric, device="cpu", return_details=True)
        gpu = transferlab.knn_loo(torch.from_numpy(X).cuda(), y, k=k, metric=metric, device="auto",
                                  return_details=True)
        assert gpu.score == pytest.approx(cpu.score, abs=2.0 / len(y))
        if FUSED and metric == "euclidean":
            assert gpu.score == cpu.score
            np.testing.assert_array_equal(gpu.neighbors, cpu.neighbors)


def _score_or_skip(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except NotImplementedError:
        pytest.skip(f"{fn.__name__} is not implemented on this branch yet")


@pytest.mark.cuda
def test_leep_score_cuda_equals_cpu():
    P, y = _probs(4000, 100, 10, seed=6)
    cpu = _score_or_skip(transferlab.leep, P, y, device="cpu")
    gpu = transferlab.leep(P, y, device="cuda")
    assert gpu == pytest.approx(cpu, rel=1e-10)
    L = np.log(P) * 2.0
    assert transferlab.leep(L, y, from_logits=True, device="cuda") == pytest.approx(
        transferlab.leep(L, y, from_logits=True, device="cpu"), rel=1e-10)


@pytest.mark.cuda
def test_sfda_score_cuda_equals_cpu():
    X, y = class_data(n=3000, d=96, c=6, sep=0.5, seed=7)
    cpu = _score_or_skip(transferlab.sfda, X, y, device="cpu")
    gpu = transferlab.sfda(X, y, device="cuda")
    assert gpu == pytest.approx(cpu, rel=1e-8)
