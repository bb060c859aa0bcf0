"""GPU benchmarks (skipped without a CUDA device): the CUDA kernels beside the obvious alternatives.

    python -m pytest bench/bench_cuda.py -q -s                      # N in {20000, 100000}, D = 768
    TL_BENCH_CUDA_N=20000 python -m pytest bench/bench_cuda.py -q -s

* knn_loo (1-NN, ties="lowest_index") on device="cuda" vs torch on the same GPU (chunked
  |x|^2 + |y|^2 - 2 X Y^T with addmm, diagonal masked, topk) vs faiss-cpu IndexFlatL2 (k=2, self
  dropped; only where faiss is installed, and at N <= TL_BENCH_FAISS_MAX_N on the host's threads).
  Each baseline's 1-NN is first checked against knn_loo's (a different neighbour must be a float64
  near-tie), then timed.
* leep (N = 100k, Z = 1000, C = 100) and sfda (N = 50k, D = 2048, C = 100) on device="cuda" vs
  device="cpu" (skipped while those scores are not implemented on this branch).
* the literature scores (LogME, H-score, reg. H-score, GBC, TransRate, PARC with exact PCA; N = 50k,
  D = 1024, C = 20) on device="cuda" (the Gram seam on the GPU) vs device="cpu" (all host cores).
  NLEEP is left out: its time is the host mixture fit, the same on both.
* score_many of 8 models (N = 20k, D = 768; sfda, logme, hscore, knn_loo) with cuda_streams=4 vs 1.
* the tensor-core exact kNN (TRANSFERLAB_KNN_CUDA_PRECISION=tf32) vs the exact path vs faiss-gpu's flat
  index at TL_BENCH_TC_N x TL_BENCH_TC_D (default 1,000,000 x 2,048): `-k knn_tc`. Not yet measured
  (no GPU was lent when it was written; docs/gpu.md).
Times are the minimum over rounds (TL_BENCH_ROUNDS, default 3; the host side of the literature scores
one round), device work synchronised.

Measured on one H100 80GB HBM3 (torch 2.11 cu130, 2026-11-26), D = 768, 1-NN:
  N = 20000:  knn_loo cuda 0.020 s (T=128; T=64 0.025 s), torch addmm+argmin (no TF32) 0.016 s
  N = 100000: knn_loo cuda 0.270 s (T=64 0.348 s),        torch addmm+argmin (no TF32) 0.381 s
(knn_loo also returns the exact tie counts; torch's argmin does not.) faiss-cpu was not installed there.
The other benchmarks' figures on that machine are in docs/gpu.md.
"""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

import transferlab as tl
from transferlab import kernels

NS = [int(v) for v in os.environ.get("TL_BENCH_CUDA_N", "20000,100000").split(",")]  # each N: T=64 and T=128 too
D = int(os.environ.get("TL_BENCH_CUDA_D", "768"))
ROUNDS = int(os.environ.get("TL_BENCH_ROUNDS", "3"))
FAISS_MAX_N = int(os.environ.get("TL_BENCH_FAISS_MAX_N", "20000"))

pytestmark = pytest.mark.skipif(kernels.cuda_device_count() == 0, reason="no CUDA device")

_TIMES: dict = {}


def _data(n: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(10, d)).astype(np.float32) * 0.35
    y = rng.integers(0, 10, size=n)
    return np.ascontiguousarray(centers[y] + rng.normal(size=(n, d)).astype(np.float32)), y


def _sync():
    import torch

    torch.cuda.synchronize()


def _time(benchmark, fn, key, rounds=None, base="transferlab-cuda"):
    def run():
        out = fn()
        _sync()
        return out

    out = benchmark.pedantic(run, rounds=rounds or ROUNDS, iterations=1, warmup_rounds=1)
    _TIMES[key] = benchmark.stats.stats.min
    base = _TIMES.get((key[0], key[1], base))
    ratio = f" ({_TIMES[key] / base:.2f}x transferlab-cuda)" if base else ""
    print(f"\n{key}: {_TIMES[key]:.4f} s{ratio}")
    return out


def _check_nn(X, got, want, rel=1e-5):
    bad = np.flatnonzero(got != want)
    for i in bad[:200]:
        x = X[i].astype(np.float64)
        dg = ((X[got[i]].astype(np.float64) - x) ** 2).sum()
        dw = ((X[want[i]].astype(np.float64) - x) ** 2).sum()
        assert abs(dg - dw) <= rel * max(dg, dw) + 1e-6, f"row {i}: neighbours differ beyond a near-tie"


@pytest.fixture(scope="module", params=NS, ids=lambda n: f"N{n}")
def bank(request):
    import torch

    X, y = _data(request.param, D)
    Xt = torch.from_numpy(X).cuda()
    nn = tl.knn_loo(Xt, y, k=1, ties="lowest_index", device="cuda", return_details=True).neighbors[:, 0]
    return request.param, X, Xt, y, nn


def test_knn_transferlab_cuda(benchmark, bank):
    n, X, Xt, y, nn = bank
    _time(benchmark, lambda: tl.knn_loo(Xt, y, k=1, ties="lowest_index", device="cuda"), ("knn", n, "transferlab-cuda"))


@pytest.mark.parametrize("tile", ["64", "128"])
def test_knn_transferlab_cuda_forced_tile(benchmark, bank, tile, monkeypatch):
    """The two tile kernels at every N (the automatic choice is the plain benchmark above)."""
    n, X, Xt, y, nn = bank
    monkeypatch.setenv("TRANSFERLAB_KNN_CUDA_TILE", tile)
    _time(benchmark, lambda: tl.knn_loo(Xt, y, k=1, ties="lowest_index", device="cuda"), ("knn", n, f"transferlab-cuda-T{tile}"))


def _torch_nn(Xt, chunk=4096):
    import torch

    n = Xt.shape[0]
    norms = (Xt * Xt).sum(dim=1)
    out = torch.empty(n, dtype=torch.int64, device=Xt.device)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        d = torch.addmm(norms[None, :], Xt[s:e], Xt.T, beta=1.0, alpha=-2.0) + norms[s:e, None]
        d[torch.arange(e - s, device=Xt.device), torch.arange(s, e, device=Xt.device)] = float("inf")
        out[s:e] = torch.argmin(d, dim=1)
    return out


def test_knn_torch_cuda(benchmark, bank):
    import torch

    n, X, Xt, y, nn = bank
    torch.backends.cuda.matmul.allow_tf32 = False  # a float32 product, as knn_loo computes
    _check_nn(X, _torch_nn(Xt).cpu().numpy(), nn)
    _time(benchmark, lambda: _torch_nn(Xt), ("knn", n, "torch-cuda-addmm"))


def test_knn_faiss_cpu(benchmark, bank):
    faiss = pytest.importorskip("faiss")
    n, X, Xt, y, nn = bank
    if n > FAISS_MAX_N:
        pytest.skip(f"faiss-cpu only up to N={FAISS_MAX_N} (TL_BENCH_FAISS_MAX_N)")

    def run():
        index = faiss.IndexFlatL2(X.shape[1])
        index.add(X)
        _, I = index.search(X, 2)
        return np.where(I[:, 0] == np.arange(n), I[:, 1], I[:, 0])

    _check_nn(X, run(), nn)
    _time(benchmark, run, ("knn", n, "faiss-cpu"))


def _score(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except NotImplementedError:
        pytest.skip(f"{fn.__name__} is not implemented on this branch yet")


@pytest.mark.parametrize("device", ["cuda", "cpu"])
def test_leep(benchmark, device):
    import torch

    rng = np.random.default_rng(1)
    n, z, c = 100_000, 1000, 100
    L = rng.normal(size=(n, z)).astype(np.float32) * 3
    y = rng.integers(0, c, size=n)
    data = torch.from_numpy(L).cuda() if device == "cuda" else L
    _score(tl.leep, data, y, from_logits=True, device=device)
    _time(benchmark, lambda: tl.leep(data, y, from_logits=True, device=device), ("leep", n, f"transferlab-{device}"))


@pytest.mark.parametrize("device", ["cuda", "cpu"])
def test_sfda(benchmark, device):
    import torch

    n, d, c = 50_000, 2048, 100
    rng = np.random.default_rng(2)
    centers = rng.normal(size=(c, d)).astype(np.float32) * 0.3
    y = rng.integers(0, c, size=n)
    X = centers[y] + rng.normal(size=(n, d)).astype(np.float32)
    data = torch.from_numpy(X).cuda() if device == "cuda" else X
    _score(tl.sfda, data, y, device=device)
    _time(benchmark, lambda: tl.sfda(data, y, device=device), ("sfda", n, f"transferlab-{device}"))


LIT_N, LIT_D, LIT_C = 50_000, 1024, 20
LITERATURE = [("logme", {}), ("hscore", {}), ("reg_hscore", {}), ("gbc", {}), ("transrate", {}),
              ("parc", {"pca": "exact"})]


@pytest.fixture(scope="module")
def lit_bank():
    import torch

    X, y = _data(LIT_N, LIT_D)
    y = np.random.default_rng(3).integers(0, LIT_C, size=LIT_N)
    X = np.maximum(X + 0.5 * (y[:, None] % 7 == np.arange(LIT_D)[None, :] % 7), 0.0).astype(np.float32)
    return X, torch.from_numpy(X).cuda(), y


@pytest.mark.parametrize("device", ["cuda", "cpu"])
@pytest.mark.parametrize("name,kw", LITERATURE, ids=[n for n, _ in LITERATURE])
def test_literature(benchmark, lit_bank, name, kw, device):
    X, Xt, y = lit_bank
    fn = getattr(tl, name)
    data = Xt if device == "cuda" else X
    value = fn(data, y, device=device, **kw)
    _TIMES[("value", name, device)] = value
    other = _TIMES.get(("value", name, "cuda"))
    if device == "cpu" and other is not None:
        assert value == pytest.approx(other, rel=1e-6), f"{name}: cpu {value} vs cuda {other}"
    _time(benchmark, lambda: fn(data, y, device=device, **kw), (name, LIT_N, f"transferlab-{device}"),
          rounds=1 if device == "cpu" else None)


@pytest.mark.parametrize("streams", [4, 1])
def test_score_many_streams(benchmark, streams):
    import torch

    X, y = _data(20_000, 768, seed=4)
    rng = np.random.default_rng(4)
    feats = [torch.from_numpy(X @ rng.normal(size=(768, 768)).astype(np.float32) / 28.0).cuda() for _ in range(8)]
    scores = ["sfda", "logme", "hscore", "knn_loo"]
    got = tl.score_many(feats, y, scores=scores, cuda_streams=streams)
    _TIMES[("many-values", streams)] = got
    if streams == 1 and ("many-values", 4) in _TIMES:
        for name in scores:
            assert got[name] == pytest.approx(_TIMES[("many-values", 4)][name], rel=1e-10), name
    _time(benchmark, lambda: tl.score_many(feats, y, scores=scores, cuda_streams=streams),
          ("score_many", 8, f"streams-{streams}"), base="streams-4")


# ------------------------------------------------------------------ tensor-core exact kNN (issue 17 part 2)
# TRANSFERLAB_KNN_CUDA_PRECISION=tf32 (csrc/knn/cuda/knn_tc.cu) vs the exact path (the float32 CUDA-core
# tiles) vs faiss-gpu's flat index, on one bank of TL_BENCH_TC_N x TL_BENCH_TC_D (default 1,000,000 x 2,048,
# 8 GB of float32 generated on the device), 1-NN. The TF32 result is checked equal to the exact path's
# (neighbours and tie counts, bitwise) before it is timed; faiss's 1-NN is checked up to float64 near-ties.
# One round each (the exact path is about a minute at the default size).
TC_N = int(os.environ.get("TL_BENCH_TC_N", "1000000"))
TC_D = int(os.environ.get("TL_BENCH_TC_D", "2048"))


@pytest.fixture(scope="module")
def tc_bank():
    import torch

    g = torch.Generator(device="cuda").manual_seed(17)
    centers = torch.randn(10, TC_D, device="cuda", generator=g) * 0.35
    y = torch.randint(0, 10, (TC_N,), device="cuda", generator=g)
    Xt = (centers[y] + torch.randn(TC_N, TC_D, device="cuda", generator=g)).contiguous()
    return Xt, y.cpu().numpy()


def _knn_tc(Xt, y, precision, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_KNN_CUDA_PRECISION", precision)
    return tl.knn_loo(Xt, y, k=1, ties="lowest_index", device="cuda", return_details=True)


def _tc_ratio(name, base):
    if (("knn-tc", TC_N, name) in _TIMES) and (("knn-tc", TC_N, base) in _TIMES):
        r = _TIMES[("knn-tc", TC_N, base)] / _TIMES[("knn-tc", TC_N, name)]
        print(f"  {base} / {name} = {r:.2f}x")


def _once(fn, name):
    """One synchronised call, timed (the baselines at this size take a minute or more)."""
    _sync()
    t0 = time.perf_counter()
    out = fn()
    _sync()
    _TIMES[("knn-tc", TC_N, name)] = time.perf_counter() - t0
    print(f"\n('knn-tc', {TC_N}, '{name}'): {_TIMES[('knn-tc', TC_N, name)]:.3f} s (one call)")
    return out


def test_knn_tc_exact_path(tc_bank, monkeypatch):
    Xt, y = tc_bank
    _knn_tc(Xt[:20_000], y[:20_000], "exact", monkeypatch)  # warm up (module load, allocator)
    _TIMES["tc-exact"] = _once(lambda: _knn_tc(Xt, y, "exact", monkeypatch), "exact")


def test_knn_tc_tf32(benchmark, tc_bank, monkeypatch):
    Xt, y = tc_bank
    got = _knn_tc(Xt, y, "tf32", monkeypatch)
    want = _TIMES.get("tc-exact")
    if want is not None:
        np.testing.assert_array_equal(got.neighbors, want.neighbors)
        np.testing.assert_array_equal(got.tie_count, want.tie_count)
        assert got.score == want.score
    _time(benchmark, lambda: _knn_tc(Xt, y, "tf32", monkeypatch), ("knn-tc", TC_N, "tf32"), rounds=1, base="-")
    _tc_ratio("tf32", "exact")


def test_knn_tc_faiss_gpu(tc_bank):
    faiss = pytest.importorskip("faiss")
    if not hasattr(faiss, "StandardGpuResources"):
        pytest.skip("faiss without GPU support")
    Xt, y = tc_bank
    X = Xt.cpu().numpy()
    res = faiss.StandardGpuResources()

    def run():
        index = faiss.GpuIndexFlatL2(res, TC_D)
        index.add(X)
        _, I = index.search(X, 2)
        return np.where(I[:, 0] == np.arange(TC_N), I[:, 1], I[:, 0])

    nn = _once(run, "faiss-gpu")
    want = _TIMES.get("tc-exact")
    if want is not None:
        _check_nn(X, nn, want.neighbors[:, 0])
    _tc_ratio("tf32", "faiss-gpu")
