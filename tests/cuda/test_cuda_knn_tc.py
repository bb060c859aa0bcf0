"""The TF32 tensor-core leave-one-out k-NN (csrc/knn/cuda/knn_tc.cu, TRANSFERLAB_KNN_CUDA_PRECISION=tf32)
on a device (marked `cuda`: skipped without one) against the exact CUDA path, bitwise: neighbours,
distances, tie counts. Banks that need the candidates' re-check (near ties, duplicates), the per-row
fallback (a few crowded rows), the whole-bank fallback (all-equal rows, out-of-range inputs), k > 1,
every dtype, strided rows, no labels; then the public score. The bound and candidate logic itself is
tested without a GPU in test_tensor_core_logic.py.

    TRANSFERLAB_EXPECT_CUDA=1 python -m pytest -q tests/cuda/test_cuda_knn_tc.py   # on a GPU
"""
from __future__ import annotations

import numpy as np
import pytest

import transferlab
from transferlab import _cuda_logic_testing as cuda_logic  # test-only: the library never imports it
from transferlab import kernels

from conftest import class_data, digest

pytestmark = pytest.mark.cuda
DTYPE_CODE = {"float32": 0, "float64": 1, "float16": 2, "bfloat16": 3}
NAMES = ("index", "dist", "tie_count", "tie_same")


def _dev(a, dtype=None):
    import torch

    t = torch.as_tensor(np.ascontiguousarray(a))
    if dtype is not None:
        t = t.to(dtype)
    return t.cuda().contiguous()


def _knn(t, y, k, precision, monkeypatch):
    import torch

    monkeypatch.setenv("TRANSFERLAB_KNN_CUDA_PRECISION", precision)
    mod = kernels.require_cuda()
    n = t.shape[0]
    lab = _dev(y.astype(np.int32)) if y is not None else None
    idx = torch.empty((n, k), dtype=torch.int64, device="cuda")
    dist = torch.empty((n, k), dtype=torch.float32, device="cuda")
    tc = torch.empty(n, dtype=torch.int64, device="cuda")
    ts = torch.zeros(n, dtype=torch.int64, device="cuda")
    name = str(t.dtype).replace("torch.", "")
    mod.knn_loo(int(t.data_ptr()), DTYPE_CODE[name], int(t.shape[0]), int(t.shape[1]), int(t.stride(0)),
                lab.data_ptr() if lab is not None else 0, k, idx.data_ptr(), dist.data_ptr(), tc.data_ptr(),
                ts.data_ptr(), torch.cuda.current_stream().cuda_stream)
    torch.cuda.current_stream().synchronize()
    return idx.cpu().numpy(), dist.cpu().numpy(), tc.cpu().numpy(), ts.cpu().numpy()


def _assert_tf32_is_exact(t, y, k, monkeypatch):
    h = digest(t)
    got = _knn(t, y, k, "tf32", monkeypatch)
    want = _knn(t, y, k, "exact", monkeypatch)
    for name, g, w in zip(NAMES, got, want):
        np.testing.assert_array_equal(g, w, err_msg=f"{name} (k={k})")
    assert digest(t) == h  # input untouched
    return got


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("k", [1, 5, 40])
def test_tf32_equals_exact_path(dtype, k, monkeypatch):
    import torch

    X, y = class_data(n=3000, d=200, c=6, sep=0.6, seed=k)
    X[1000:1020] = X[:20]  # exact duplicates across tiles
    X[2000:2020] = X[:20] + np.float32(2.0**-18)  # near ties below TF32 resolution
    _assert_tf32_is_exact(_dev(X, getattr(torch, dtype)), y, k, monkeypatch)


def test_tf32_equals_twin_and_the_float64_oracle_neighbours(monkeypatch):
    rng = np.random.default_rng(5)
    base = rng.integers(-3, 4, size=(60, 7))
    X = base[rng.integers(0, 60, size=700)].astype(np.float32)  # integer rows: exact float32 distances
    y = rng.integers(0, 3, size=700).astype(np.int32)
    got = _assert_tf32_is_exact(_dev(X), y, 3, monkeypatch)
    want = cuda_logic.knn_loo_tc(X, y, 3, 128)
    for name, g, w in zip(NAMES, got, want[:4]):
        np.testing.assert_array_equal(g, w, err_msg=name)


def test_tf32_per_row_fallback_on_a_few_crowded_rows(monkeypatch):
    X, y = class_data(n=6000, d=64, c=5, seed=3)
    X[:50] = X[0]  # 50 equal rows: 49 candidates at 0 each, more than the buffer for k = 1 (34)
    got = _assert_tf32_is_exact(_dev(X), y, 1, monkeypatch)
    assert (got[2][:50] == 49).all()


@pytest.mark.parametrize("k", [1, 7])
def test_tf32_whole_fallback_all_equal_rows(k, monkeypatch):
    X = np.full((500, 33), 0.25, dtype=np.float32)
    y = (np.arange(500) % 4).astype(np.int32)
    got = _assert_tf32_is_exact(_dev(X), y, k, monkeypatch)
    assert (got[2] == 499).all()


def test_tf32_out_of_range_input_runs_exact(monkeypatch):
    X, y = class_data(n=400, d=20, c=3, seed=4)
    X[7, 3] = 2.0**55
    _assert_tf32_is_exact(_dev(X), y, 2, monkeypatch)


def test_tf32_strided_rows_and_no_labels(monkeypatch):
    X, y = class_data(n=900, d=30, c=3, seed=2)
    t = _dev(np.concatenate([X, np.zeros_like(X)], axis=1))[:, :30]  # row stride 60
    a = _assert_tf32_is_exact(t, y, 2, monkeypatch)
    b = _knn(t, None, 2, "tf32", monkeypatch)
    for u, v in zip(a[:3], b[:3]):
        np.testing.assert_array_equal(u, v)


def test_precision_knob_is_validated(monkeypatch):
    with pytest.raises(ValueError, match="TRANSFERLAB_KNN_CUDA_PRECISION"):
        _knn(_dev(np.zeros((4, 2), dtype=np.float32)), None, 1, "fp16", monkeypatch)


@pytest.mark.parametrize("k", [1, 3])
def test_knn_loo_score_tf32_equals_exact(k, monkeypatch):
    import torch

    X, y = class_data(n=5000, d=256, c=8, sep=0.5, seed=k)
    t = torch.from_numpy(X).cuda()
    monkeypatch.setenv("TRANSFERLAB_KNN_CUDA_PRECISION", "exact")
    want = transferlab.knn_loo(t, y, k=k, return_details=True)
    monkeypatch.setenv("TRANSFERLAB_KNN_CUDA_PRECISION", "tf32")
    got = transferlab.knn_loo(t, y, k=k, return_details=True)
    assert got.score == want.score
    np.testing.assert_array_equal(got.neighbors, want.neighbors)
    np.testing.assert_array_equal(got.tie_count, want.tie_count)


@pytest.mark.parametrize("bank", ["gaussian", "positive_adversarial"])
def test_device_tf32_products_obey_the_bound_model(bank):
    """The bound's model of a TF32 dot product (knn_tc.h: inputs within 2^-10, exact products, float32
    accumulation within (4D + 64) 2^-23 of the magnitudes) checked on this GPU's TF32 GEMM (cuBLAS through torch)
    against float64: the error never exceeds it, and the model is not vacuous."""
    import torch

    rng = np.random.default_rng(1)
    if bank == "gaussian":
        X = rng.standard_normal((512, 2048)).astype(np.float32)
    else:  # every input just below a TF32 rounding boundary, all products positive
        X = (1 + 2.0**-10 - 2.0**-23) * (1 + rng.integers(0, 4, size=(512, 2048))).astype(np.float32)
    d, t = X.shape[1], 2.0**-10
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        Xt = torch.from_numpy(X).cuda()
        got = (Xt @ Xt.T).double().cpu().numpy()
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old
    X64 = X.astype(np.float64)
    true = X64 @ X64.T
    mag = np.abs(X64) @ np.abs(X64).T
    model = ((2 * t + t * t) + (4 * d + 64) * 2.0**-23 * (1 + t) ** 2) * mag
    ratio = np.abs(got - true) / model
    assert ratio.max() <= 1.0
    assert ratio.max() > 1e-3
