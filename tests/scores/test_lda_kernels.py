"""csrc/lda kernels (class sums, Gram, batched Gram, projection) against numpy float64, their
determinism (thread count, SIMD level, chunking, batching) and the _lda_stats seam on every path."""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from transferlab import kernels
from transferlab.core.arrays import Matrix, as_matrix

from conftest import class_data, digest

_C = kernels.cpu_module()
stats = importlib.import_module("transferlab.kernels.lda")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

REL = 1e-12  # float64 accumulation of exact products: only summation-order rounding differs


def _f64(X):
    return np.asarray(X, dtype=np.float64)


def _ref_gram(X, shift=None, s=None):
    Z = _f64(X) - (0 if shift is None else shift)
    if s is not None:
        Z = Z * s[:, None]
    return Z.T @ Z


def _close(got, want, rel=REL):
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=0, atol=rel * scale * 10)


# ------------------------------------------------------------------ Gram


# Shapes: a single partial tile, several tiles with a partial edge (d not a multiple of any
# micro-tile), n over several KC=256-row slabs, a single row and a single column.
SHAPES = [(5, 3), (300, 37), (777, 300), (600, 401), (1, 9), (50, 1), (513, 64)]


@pytest.mark.parametrize("n,d", SHAPES)
@pytest.mark.parametrize("with_shift", [False, True])
@pytest.mark.parametrize("with_scale", [False, True])
def test_gram_matches_numpy(n, d, with_shift, with_scale):
    rng = np.random.default_rng(n * 1000 + d)
    X = (rng.normal(size=(n, d)) + 3.0).astype(np.float32)
    shift = _f64(X).mean(axis=0) if with_shift else None
    s = rng.random(n) if with_scale else None
    G = _C.lda_gram(X, shift, s, False, 0)
    assert G.shape == (d, d) and G.dtype == np.float64
    np.testing.assert_array_equal(G, G.T)  # mirrored, exactly symmetric
    _close(G, _ref_gram(X, shift, s))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_gram_dtypes(dtype):
    import torch

    rng = np.random.default_rng(1)
    t = torch.from_numpy(rng.normal(size=(300, 70))).to(getattr(torch, dtype))
    m = as_matrix(t)
    exact = t.to(torch.float64).numpy()  # the upcast values the kernel must see exactly
    shift = exact.mean(axis=0)
    _close(_C.lda_gram(m.data, shift, None, m.is_bf16, 0), _ref_gram(exact, shift))


def test_gram_thread_count_bitwise():
    X, _ = class_data(n=1500, d=203, seed=4)
    shift = _f64(X).mean(axis=0)
    s = np.random.default_rng(0).random(X.shape[0])
    runs = [_C.lda_gram(X, shift, s, False, t) for t in (1, 2, 3, 5)]
    for G in runs[1:]:
        np.testing.assert_array_equal(G, runs[0])


def test_gram_chunked_accumulation_bitwise():
    # `out` accumulates: two row chunks give the same multiply-add chain as one pass.
    X, _ = class_data(n=1000, d=150, seed=5)
    shift = _f64(X).mean(axis=0)
    whole = _C.lda_gram(X, shift, None, False, 0)
    out = np.zeros((150, 150))
    for a, b in [(0, 333), (333, 1000)]:
        _C.lda_gram(X[a:b], shift, None, False, 0, out=out)
    np.testing.assert_array_equal(out, whole)


def test_gram_strided_and_reversed_rows():
    X, _ = class_data(n=400, d=33, seed=6)
    big = np.zeros((800, 50), dtype=np.float32)
    big[::2, 5:38] = X
    view = big[::2, 5:38]  # row stride 100 elements, unit inner stride
    np.testing.assert_array_equal(_C.lda_gram(view, None, None, False, 0), _C.lda_gram(X, None, None, False, 0))
    rev = X[::-1]
    _close(_C.lda_gram(rev, None, None, False, 0), _ref_gram(X))


def _simd_run(level: str) -> list:
    code = (
        "import numpy as np, json; from transferlab import _C\n"
        "rng = np.random.default_rng(3); X = rng.normal(size=(700, 131)).astype(np.float32)\n"
        "G = _C.lda_gram(X, X.astype(np.float64).mean(0), rng.random(700), False, 2)\n"
        "W = rng.normal(size=(7, 131)); P = _C.lda_project(X, W, rng.normal(size=7), False, 2)\n"
        "print(json.dumps([_C.simd_level(), G.tobytes().hex()[:4000], float(G.sum()), P.tobytes().hex()[:4000]]))\n"
    )
    env = dict(os.environ, TRANSFERLAB_SIMD=level, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_simd_levels_agree():
    levels = {lv: _simd_run(lv) for lv in ("generic", "avx2", "avx512")}
    assert levels["generic"][0] == "generic"
    # Every FMA path runs the same fused chain per element: bitwise equal across ISAs (on a CPU
    # without AVX-512 the "avx512" run is capped to avx2 and the check is weaker, not vacuous).
    fused = [v for v in levels.values() if v[0] in ("avx2", "avx512")]
    for v in fused[1:]:
        assert v[1] == fused[0][1] and v[3] == fused[0][3]
    # The generic (unfused) path rounds differently but agrees to float64 precision.
    for v in fused:
        assert v[2] == pytest.approx(levels["generic"][2], rel=1e-12)


def test_gram_batched_equals_unbatched_bitwise():
    import torch

    rng = np.random.default_rng(7)
    n = 500
    xs = [
        rng.normal(size=(n, 64)).astype(np.float32),
        rng.normal(size=(n, 130)),
        as_matrix(torch.from_numpy(rng.normal(size=(n, 17))).to(torch.bfloat16)).data,
    ]
    bf = [False, False, True]
    shifts = [rng.normal(size=64), None, rng.normal(size=17)]
    s = rng.random(n)
    batched = _C.lda_gram_batched(xs, shifts, s, bf, 0)
    for x, sh, b, G in zip(xs, shifts, bf, batched):
        np.testing.assert_array_equal(G, _C.lda_gram(x, sh, s, b, 0))
    assert _C.lda_gram_batched([], None, None, None, 0) == []
    with pytest.raises(ValueError, match="same number of rows"):
        _C.lda_gram_batched([xs[0], xs[1][:10]], None, s, None, 0)


# ------------------------------------------------------------------ class sums


@pytest.mark.parametrize("n,d,c", [(1, 1, 1), (300, 37, 4), (1000, 130, 20), (200, 5, 150)])
@pytest.mark.parametrize("with_shift", [False, True])
@pytest.mark.parametrize("with_weight", [False, True])
def test_class_sums_match_numpy(n, d, c, with_shift, with_weight):
    rng = np.random.default_rng(n + d + c)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = rng.integers(0, c, size=n).astype(np.int32)
    shift = rng.normal(size=d) if with_shift else None
    w = rng.random(n) if with_weight else None
    counts, sums = _C.lda_class_sums(X, y, c, shift, w, False, 0)
    Z = _f64(X) - (0 if shift is None else shift)
    if w is not None:
        Z = Z * w[:, None]
    want = np.zeros((c, d))
    np.add.at(want, y, Z)
    np.testing.assert_array_equal(counts, np.bincount(y, minlength=c))
    _close(sums, want)
    runs = [_C.lda_class_sums(X, y, c, shift, w, False, t)[1] for t in (1, 3)]
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[0], sums)


def test_class_sums_accumulate_and_label_range():
    X = np.ones((4, 3), dtype=np.float32)
    y = np.array([0, 1, 1, 0], dtype=np.int32)
    counts, sums = _C.lda_class_sums(X, y, 2, None, None, False, 0)
    _C.lda_class_sums(X, y, 2, None, None, False, 0, counts=counts, sums=sums)
    np.testing.assert_array_equal(counts, [4, 4])
    np.testing.assert_array_equal(sums, np.full((2, 3), 4.0))
    with pytest.raises(ValueError, match="labels must be in"):
        _C.lda_class_sums(X, np.array([0, 1, 2, 0], dtype=np.int32), 2, None, None, False, 0)
    with pytest.raises(ValueError, match="labels must be 1-D of length 4"):
        _C.lda_class_sums(X, y[:3], 2, None, None, False, 0)


# ------------------------------------------------------------------ projection


@pytest.mark.parametrize("n,d,k", [(1, 1, 1), (100, 37, 3), (1000, 300, 25), (97, 513, 2)])
def test_project_matches_numpy(n, d, k):
    rng = np.random.default_rng(n + d + k)
    X = rng.normal(size=(n, d)).astype(np.float32)
    W = rng.normal(size=(k, d))
    b = rng.normal(size=k)
    _close(_C.lda_project(X, W, b, False, 0), _f64(X) @ W.T + b)
    _close(_C.lda_project(X, W, None, False, 0), _f64(X) @ W.T)
    np.testing.assert_array_equal(_C.lda_project(X, W, b, False, 1), _C.lda_project(X, W, b, False, 3))
    with pytest.raises(ValueError, match="W must be"):
        _C.lda_project(X, W[:, :-1] if d > 1 else np.zeros((k, 2)), None, False, 0)


# ------------------------------------------------------------------ bad arguments, no mutation


def test_kernel_argument_checks():
    X = np.ones((5, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="shift must be 1-D of length 3"):
        _C.lda_gram(X, np.zeros(4), None, False, 0)
    with pytest.raises(ValueError, match="row_scale must be 1-D of length 5"):
        _C.lda_gram(X, None, np.zeros(4), False, 0)
    with pytest.raises(ValueError, match="must be 2-D"):
        _C.lda_gram(np.ones(3, dtype=np.float32), None, None, False, 0)
    with pytest.raises(ValueError, match="unsupported dtype"):
        _C.lda_gram(np.ones((3, 3), dtype=np.int32), None, None, False, 0)
    with pytest.raises(ValueError, match="out must be a writable"):
        _C.lda_gram(X, None, None, False, 0, out=np.zeros((2, 2)))
    np.testing.assert_array_equal(_C.lda_gram(X[:0], None, None, False, 0), np.zeros((3, 3)))


def test_kernels_do_not_mutate_and_read_memmaps(tmp_path):
    X, y = class_data(n=300, d=20, seed=8)
    path = tmp_path / "x.npy"
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")
    shift, s = _f64(X).mean(axis=0), np.random.default_rng(0).random(300)
    W = np.ones((3, 20))
    before = digest(mm, shift, s, W, y)
    G = _C.lda_gram(mm, shift, s, False, 0)
    _C.lda_class_sums(mm, y.astype(np.int32), int(y.max()) + 1, shift, s, False, 0)
    _C.lda_project(mm, W, None, False, 0)
    assert digest(mm, shift, s, W, y) == before
    np.testing.assert_array_equal(G, _C.lda_gram(X, shift, s, False, 0))


# ------------------------------------------------------------------ the _lda_stats seam


def _torch_matrix(X):
    """A Matrix that runs the "cuda" (torch) code path on CPU tensors: the GPU path's logic,
    unit-tested without a device."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(X))
    return Matrix(t, "cuda", str(t.dtype).replace("torch.", ""), "features")


def _paths(X):
    m = as_matrix(X)
    return [("cpu", m), ("reference", m), ("torch", _torch_matrix(m.data))]


def _dev(name):
    return "cuda" if name == "torch" else name


def _host(a):
    return a.numpy() if hasattr(a, "numpy") else a


@pytest.mark.parametrize("path", ["cpu", "reference", "torch"])
def test_scatter_stats_match_numpy(path):
    X, y = class_data(n=700, d=30, c=6, seed=9)
    X = X + 50.0  # a large common offset: the centred Gram must not lose digits to it
    m = dict(_paths(X))[path]
    st = stats.scatter_stats(m, y, 6, _dev(path))
    X64 = _f64(X)
    mu = X64.mean(axis=0)
    means = np.stack([X64[y == c].mean(axis=0) for c in range(6)])
    T = (X64 - mu).T @ (X64 - mu)
    Wn = sum((X64[y == c] - means[c]).T @ (X64[y == c] - means[c]) for c in range(6))
    np.testing.assert_array_equal(st.counts, np.bincount(y))
    _close(_host(st.means), means, 1e-13)
    _close(_host(st.mean), mu, 1e-13)
    _close(_host(st.total), T)
    _close(_host(st.within), Wn)
    _close(_host(st.between), T - Wn)
    _close(_host(st.within_cov()), Wn / 700)
    np.testing.assert_allclose(st.priors, np.bincount(y) / 700)


@pytest.mark.parametrize("path", ["cpu", "reference", "torch"])
def test_scatter_stats_mixed_rows_match_materialised(path):
    rng = np.random.default_rng(10)
    X, y = class_data(n=600, d=25, c=5, seed=10)
    p = rng.random(600)
    p[:50] = 1.0  # ConfMix weights at the boundaries
    p[50:60] = 0.0
    A = rng.normal(size=(5, 25))
    m = dict(_paths(X))[path]
    shift = _f64(X).mean(axis=0) + 0.3
    st = stats.scatter_stats(m, y, 5, _dev(path), shift=shift, mix_weight=p, mix_anchors=A)
    Xm = p[:, None] * _f64(X) + (1 - p)[:, None] * A[y]
    want = stats.scatter_stats(as_matrix(Xm), y, 5, "reference")
    for name in ("means", "mean", "total", "between", "within"):
        _close(_host(getattr(st, name)), getattr(want, name))
    for name in ("total", "between", "within"):  # exactly symmetric (eigh/Cholesky read one triangle)
        a = _host(getattr(st, name))
        np.testing.assert_array_equal(a, a.T)


def test_lda_stats_low_level_paths_agree():
    X, y = class_data(n=400, d=19, c=3, seed=11)
    rng = np.random.default_rng(11)
    shift, w, W, b = rng.normal(size=19), rng.random(400), rng.normal(size=(4, 19)), rng.normal(size=4)
    res = {}
    for name, m in _paths(X):
        dev = _dev(name)
        res[name] = [
            _host(stats.class_sums(m, y, 3, dev, shift=shift, row_weight=w)[1]),
            _host(stats.gram(m, dev, shift=shift, row_scale=w)),
            _host(stats.project(m, W, dev, b=b)),
            [_host(g) for g in stats.gram_batched([m, m], dev, shifts=[shift, None], row_scale=w)],
        ]
    for name in ("reference", "torch"):
        for got, want in zip(res[name][:3], res["cpu"][:3]):
            _close(got, want)
        for got, want in zip(res[name][3], res["cpu"][3]):
            _close(got, want)
    np.testing.assert_array_equal(res["cpu"][3][0], res["cpu"][1])


def test_lda_stats_errors():
    X, y = class_data(n=50, d=4, c=3, seed=12)
    m = as_matrix(X)
    with pytest.raises(ValueError, match="at least one sample"):
        stats.scatter_stats(m, y, 5, "cpu")
    with pytest.raises(ValueError, match="mix_anchors"):
        stats.scatter_stats(m, y, 3, "cpu", mix_weight=np.ones(50))
    with pytest.raises(ValueError, match="labels have length 49"):
        stats.class_sums(m, y[:49], 3, "cpu")
    with pytest.raises(ValueError, match="shifts must list one entry per model"):
        stats.gram_batched([m], "cpu", shifts=[None, None])


@pytest.mark.cuda
def test_lda_stats_on_cuda_match_cpu():
    import torch

    X, y = class_data(n=3000, d=200, c=7, seed=13)
    mc = as_matrix(X)
    mg = as_matrix(torch.from_numpy(X).cuda())
    a, b = stats.scatter_stats(mc, y, 7, "cpu"), stats.scatter_stats(mg, y, 7, "cuda")
    for name in ("means", "total", "within"):
        _close(getattr(b, name).cpu().numpy(), getattr(a, name), 1e-11)


# ------------------------------------------------------------------ the _cuda kernel plumbing


class _PointerLda:
    """A stand-in for transferlab._cuda's lda kernels that works on CPU tensors: it reads the raw
    pointers, shapes, strides and dtype codes exactly as the CUDA bindings receive them (x, dtype_code,
    rows, cols, row_stride, ..., stream), wraps them as numpy views and runs the _C kernels. It checks
    the argument plumbing of _lda_stats's kernel path without a device."""

    _DT = {0: np.float32, 1: np.float64, 2: np.float16, 3: np.uint16}

    def __init__(self):
        self.calls = []

    @staticmethod
    def _buf(ptr, nbytes):
        import ctypes

        return (ctypes.c_char * max(nbytes, 1)).from_address(ptr)

    def _mat(self, ptr, code, rows, cols, stride):
        dt = np.dtype(self._DT[code])
        nbytes = ((rows - 1) * stride + cols) * dt.itemsize
        return np.ndarray((rows, cols), dtype=dt, buffer=self._buf(ptr, nbytes),
                          strides=(stride * dt.itemsize, dt.itemsize)), code == 3

    def _vec(self, ptr, shape, dt):
        if ptr == 0:
            return None
        dt = np.dtype(dt)
        return np.ndarray(shape, dtype=dt, buffer=self._buf(ptr, int(np.prod(shape)) * dt.itemsize))

    def lda_class_sums(self, x, code, rows, cols, stride, labels, n_classes, shift, w, counts, sums, stream):
        self.calls.append("lda_class_sums")
        a, bf = self._mat(x, code, rows, cols, stride)
        _C.lda_class_sums(a, self._vec(labels, (rows,), np.int32), n_classes, self._vec(shift, (cols,), np.float64),
                          self._vec(w, (rows,), np.float64), bf, 0, counts=self._vec(counts, (n_classes,), np.int64),
                          sums=self._vec(sums, (n_classes, cols), np.float64))

    def lda_gram(self, x, code, rows, cols, stride, shift, scale, gram, stream):
        self.calls.append("lda_gram")
        a, bf = self._mat(x, code, rows, cols, stride)
        _C.lda_gram(a, self._vec(shift, (cols,), np.float64), self._vec(scale, (rows,), np.float64), bf, 0,
                    out=self._vec(gram, (cols, cols), np.float64))

    def lda_project(self, x, code, rows, cols, stride, w, b, n_out, out, stream):
        self.calls.append("lda_project")
        a, bf = self._mat(x, code, rows, cols, stride)
        res = _C.lda_project(a, self._vec(w, (n_out, cols), np.float64), self._vec(b, (n_out,), np.float64), bf, 0)
        self._vec(out, (rows, n_out), np.float64)[...] = res


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float64"])
def test_cuda_kernel_plumbing_with_pointer_standin(monkeypatch, dtype):
    import torch

    fake = _PointerLda()
    monkeypatch.setattr(stats, "_cuda_kernels", lambda m: fake)
    monkeypatch.setattr(stats, "CUDA_GRAM", "kernel")  # the kernel's plumbing (the scores default to cuBLAS)
    X, y = class_data(n=500, d=23, c=4, seed=14)
    big = torch.zeros((1000, 30), dtype=getattr(torch, dtype))
    big[::2, 4:27] = torch.from_numpy(X).to(big.dtype)
    t = big[::2, 4:27]  # row stride 60 elements, offset data pointer
    m = Matrix(t, "cuda", dtype, "features")
    exact = t.to(torch.float64).numpy()
    rng = np.random.default_rng(14)
    shift, w, W, b = rng.normal(size=23), rng.random(500), rng.normal(size=(3, 23)), rng.normal(size=3)
    _close(_host(stats.gram(m, "cuda", shift=shift, row_scale=w)), _ref_gram(exact, shift, w))
    _close(_host(stats.project(m, W, "cuda", b=b)), exact @ W.T + b)
    _close(_host(stats.project(m.rows(100, 250), W, "cuda")), exact[100:250] @ W.T)
    counts, sums = stats.class_sums(m, y, 4, "cuda", shift=shift, row_weight=w)
    want = np.zeros((4, 23))
    np.add.at(want, y, (exact - shift) * w[:, None])
    _close(_host(sums), want)
    np.testing.assert_array_equal(counts, np.bincount(y))
    st = stats.scatter_stats(m, y, 4, "cuda")
    ref_st = stats.scatter_stats(as_matrix(exact), y, 4, "reference")
    _close(_host(st.within), ref_st.within)
    assert set(fake.calls) == {"lda_class_sums", "lda_gram", "lda_project"}


def test_cuda_gram_defaults_to_cublas_blocks(monkeypatch):
    # CUDA_GRAM="cublas": the Gram is float64 row blocks through torch's matmul (no lda_gram call),
    # with shift and row scale applied per block; the other passes keep the kernels.
    import torch

    fake = _PointerLda()
    monkeypatch.setattr(stats, "_cuda_kernels", lambda m: fake)
    monkeypatch.setattr(stats, "block_rows", lambda d, *a, **k: 64)  # several blocks and a ragged tail
    assert stats.CUDA_GRAM == "cublas"
    X, _ = class_data(n=300, d=17, seed=18)
    m = Matrix(torch.from_numpy(X), "cuda", "float32", "features")
    rng = np.random.default_rng(18)
    shift, w = rng.normal(size=17), rng.random(300)
    _close(_host(stats.gram(m, "cuda", shift=shift, row_scale=w)), _ref_gram(X.astype(np.float64), shift, w))
    assert "lda_gram" not in fake.calls


def test_sfda_through_the_kernel_path_with_pointer_standin(monkeypatch):
    import torch

    from transferlab.core.arrays import as_labels
    from transferlab.reference import sfda as ref

    sfda_mod = importlib.import_module("transferlab.scores.sfda.one_shot")
    fake = _PointerLda()
    monkeypatch.setattr(stats, "_cuda_kernels", lambda m: fake)
    monkeypatch.setattr(stats, "CUDA_GRAM", "kernel")  # the kernel's plumbing (the scores default to cuBLAS)
    X, y = class_data(n=900, d=31, c=5, sep=0.5, seed=15)
    m = Matrix(torch.from_numpy(X), "cuda", "float32", "features")
    lab = as_labels(y)
    got = sfda_mod._sfda(m, lab.codes, lab.n_classes, 5.0, False, "cuda", "eigh")
    assert got == pytest.approx(ref.sfda(X, y)[0], rel=1e-9)
    assert set(fake.calls) == {"lda_class_sums", "lda_gram", "lda_project"}


@pytest.mark.cuda
def test_cuda_kernels_and_torch_fallback_agree(monkeypatch):
    import torch

    X, y = class_data(n=4000, d=300, c=9, seed=16)
    m = as_matrix(torch.from_numpy(X).cuda())
    with_kernels = stats.scatter_stats(m, y, 9, "cuda")
    monkeypatch.setattr(stats, "USE_CUDA_KERNELS", False)
    with_torch = stats.scatter_stats(m, y, 9, "cuda")
    for name in ("means", "total", "within"):
        _close(getattr(with_kernels, name).cpu().numpy(), getattr(with_torch, name).cpu().numpy(), 1e-11)


@pytest.mark.parametrize("path", ["cpu", "reference", "torch"])
def test_lda_stats_chunked_accumulation(path):
    # Streaming over row chunks with out= / sums=: equal to one pass (bitwise on the CPU).
    X, y = class_data(n=900, d=27, c=4, seed=17)
    m = dict(_paths(X))[path]
    dev = _dev(path)
    shift = _f64(X).mean(axis=0)
    G = stats.gram(m, dev, shift=shift)
    _, S = stats.class_sums(m, y, 4, dev, shift=shift)
    Gc, Sc = None, None
    for a, b in [(0, 1), (1, 8), (8, 500), (500, 900)]:
        Gc = stats.gram(m.rows(a, b), dev, shift=shift, out=Gc)
        Sc = stats.class_sums(m.rows(a, b), y[a:b], 4, dev, shift=shift, sums=Sc)[1]
    if path == "cpu":
        np.testing.assert_array_equal(Gc, G)
        np.testing.assert_array_equal(Sc, S)
    _close(_host(Gc), _host(G))
    _close(_host(Sc), _host(S))
