"""knn_loo: the fused CPU kernel and the score against the float64 oracle, tie rules, properties,
bad input (BAD_INPUTS.md)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import transferlab
from transferlab import kernels
from transferlab.reference import knn as ref
from transferlab.scores import KnnLooResult, knn_loo

from conftest import class_data, digest

_C = kernels.cpu_module()
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data, d.target  # float64 integer-valued pixels: every distance is an exact integer


def _assert_neighbors_tie_aware(X, got_idx, want_idx, rel=1e-5):
    """Neighbour lists equal, except where the oracle's float64 distances of the two candidates are
    within `rel` (a near-tie that float32 may order either way)."""
    X = np.asarray(X, dtype=np.float64)
    for i in np.flatnonzero((got_idx != want_idx).any(axis=1)):
        d = ((X - X[i]) ** 2).sum(axis=1)
        a, b = np.sort(d[got_idx[i]]), np.sort(d[want_idx[i]])
        np.testing.assert_allclose(a, b, rtol=rel, atol=1e-6, err_msg=f"row {i}: neighbours differ beyond a near-tie")


# ------------------------------------------------------------------ kernel vs oracle


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("ties", ["expected", "lowest_index"])
@pytest.mark.parametrize("n,d", [(300, 16), (1100, 37), (530, 300)])
def test_kernel_matches_oracle_random(k, ties, n, d):
    # (1100, 37): several tiles, a partial edge tile, d not a multiple of any SIMD width;
    # (530, 300): d > KC, so the dot products run over two K blocks.
    X, y = class_data(n=n, d=d, c=5, sep=0.6, seed=n + d)
    got = knn_loo(X, y, k=k, ties=ties, device="cpu", return_details=True)
    want = knn_loo(X, y, k=k, ties=ties, device="reference", return_details=True)
    _assert_neighbors_tie_aware(X, got.neighbors, want.neighbors)
    assert (got.neighbors == want.neighbors).mean() > 0.99
    np.testing.assert_allclose(got.distances, want.distances, rtol=1e-4, atol=1e-3)
    # Tie-free data: the accuracy is exact.
    assert got.score == want.score
    np.testing.assert_array_equal(got.correct, want.correct)
    np.testing.assert_array_equal(got.tie_count, np.ones(n, dtype=np.int64) if k == 1 else want.tie_count)


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("ties", ["expected", "lowest_index"])
def test_kernel_matches_oracle_digits(k, ties):
    X, y = _digits()
    got = knn_loo(X, y, k=k, ties=ties, device="cpu", return_details=True)
    want = ref.knn_loo(X, y, k=k, ties=ties)
    # Integer pixels: float32 and float64 distances are the same exact integers, ties included.
    np.testing.assert_array_equal(got.neighbors, want[1])
    np.testing.assert_array_equal(got.distances.astype(np.float64), want[2])
    np.testing.assert_array_equal(got.tie_count, want[4])
    np.testing.assert_allclose(got.correct, want[3], rtol=0, atol=1e-15)
    assert got.score == pytest.approx(want[0], rel=1e-15)
    assert 0.97 < got.score <= 1.0  # the classic digits 1-NN accuracy is ~0.98


@pytest.mark.parametrize("k", [1, 3, 5])
def test_kernel_matches_oracle_cosine(k):
    X, y = class_data(n=400, d=24, c=4, sep=0.8, seed=3)
    got = knn_loo(X, y, k=k, metric="cosine", device="cpu", return_details=True)
    want = knn_loo(X, y, k=k, metric="cosine", device="reference", return_details=True)
    _assert_neighbors_tie_aware(X / np.linalg.norm(X.astype(np.float64), axis=1, keepdims=True), got.neighbors,
                                want.neighbors)
    assert got.score == want.score
    Xn = X / np.linalg.norm(X.astype(np.float64), axis=1, keepdims=True)
    i, j = 7, got.neighbors[7, 0]
    assert got.distances[7, 0] == pytest.approx(2 - 2 * float(Xn[i] @ Xn[j]), abs=1e-5)


def _duplicate_bank(seed=0, n=240, uniq=25, d=6, c=3):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(uniq, d)).astype(np.float32)
    X = base[rng.integers(0, uniq, size=n)]
    y = rng.integers(0, c, size=n)
    return X, y


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("ties", ["expected", "lowest_index"])
def test_duplicate_rows_match_oracle(k, ties):
    X, y = _duplicate_bank(seed=k)
    got = knn_loo(X, y, k=k, ties=ties, device="cpu", return_details=True)
    want = ref.knn_loo(X, y, k=k, ties=ties)
    np.testing.assert_array_equal(got.neighbors, want[1])
    np.testing.assert_array_equal(got.tie_count, want[4])
    assert (got.tie_count > k).any()  # the test really exercises boundary groups larger than the slots
    np.testing.assert_allclose(got.correct, want[3], rtol=0, atol=1e-12)
    assert got.score == pytest.approx(want[0], rel=1e-12)


def test_duplicates_hand_computed_k1():
    X = np.array([[0, 0], [0, 0], [0, 0], [10, 0], [10, 0]], dtype=np.float32)
    y = np.array([0, 0, 1, 1, 0])
    # Rows 0 and 1: two others at distance 0, one of each label -> 1/2 each; row 2: both others
    # are label 0 -> 0; rows 3 and 4: the single other has the other label -> 0.
    for device in ("cpu", "reference"):
        r = knn_loo(X, y, device=device, return_details=True)
        np.testing.assert_array_equal(r.correct, [0.5, 0.5, 0.0, 0.0, 0.0])
        np.testing.assert_array_equal(r.tie_count, [2, 2, 2, 1, 1])
        assert r.score == pytest.approx(0.2)
        # argmin (lowest index among ties): 0->1 right, 1->0 right, 2->0 wrong, 3->4, 4->3 wrong.
        assert knn_loo(X, y, ties="lowest_index", device=device) == pytest.approx(0.4)


def test_duplicates_hand_computed_k3_and_k2():
    # 1-D: row 0 at 0 (label 0); row 1 at 1 (label 1, the one strictly closer neighbour);
    # rows 2..5 at 2 (labels 0, 0, 1, 1: a boundary group of 4 filling 2 slots for k=3).
    X = np.array([[0.0], [1.0], [2.0], [2.0], [2.0], [2.0]], dtype=np.float32)
    y = np.array([0, 1, 0, 0, 1, 1])
    for device in ("cpu", "reference"):
        r3 = knn_loo(X, y, k=3, device=device, return_details=True)
        # Draw 2 of {0,0,1,1}: (0,0) w.p. 1/6 -> votes 0:2 vs 1:1 -> right; otherwise label 1 wins.
        assert r3.correct[0] == pytest.approx(1 / 6, abs=1e-15)
        assert r3.tie_count[0] == 4
        # lowest_index takes rows 1, 2, 3 -> labels 1, 0, 0 -> label 0 wins -> right.
        r3l = knn_loo(X, y, k=3, ties="lowest_index", device=device, return_details=True)
        assert r3l.correct[0] == 1.0
        # k=2: row 1 (label 1, d=1) plus one of the group (d=4): a 1-1 vote is won by the smaller
        # summed distance, i.e. by label 1 whatever is drawn -> 0 for row 0.
        r2 = knn_loo(X, y, k=2, device=device, return_details=True)
        assert r2.correct[0] == 0.0
        # Row 1 (label 1), k=2: distances 1 to row 0 and all four group rows: group of 5 at d=1,
        # labels {0:3, 1:2}, 2 slots: right iff both drawn are 1 (1/10), or one of each (6/10) and
        # the tie on count and summed distance goes to the smaller label 0 -> wrong. Credit 1/10.
        assert r2.correct[1] == pytest.approx(1 / 10, abs=1e-15)


def test_classic_argmin_formula_equals_lowest_index():
    for X, y in (class_data(n=500, d=20, c=6, sep=0.5, seed=11), _digits(), _duplicate_bank(seed=4)):
        X64 = np.asarray(X, dtype=np.float64)
        D = ((X64[:, None, :] - X64[None, :, :]) ** 2).sum(axis=2)
        np.fill_diagonal(D, np.inf)
        classic = float(np.mean(y[np.argmin(D, axis=1)] == y))
        assert knn_loo(X, y, ties="lowest_index", device="cpu") == classic


# ------------------------------------------------------------------ distance determinism (the twin)


@pytest.mark.parametrize("simd", ["default", "generic"])
def test_pair_dist_twin_is_bitwise_the_kernel_distance(simd):
    script = r"""
import json, sys, numpy as np
from transferlab import _C
rng = np.random.default_rng(5)
X = rng.normal(size=(700, 300)).astype(np.float32)
X[650:] = X[:50]  # exact duplicates
idx, dist, tc, ts = _C.knn_loo(X, None, 4, False, 2)
bad = 0
for i in range(0, 700, 3):
    for p in range(4):
        j = int(idx[i, p])
        a, b = _C.knn_pair_dist(X, i, j, False), _C.knn_pair_dist(X, j, i, False)
        bad += (a != dist[i, p]) + (a != b)
dup = [_C.knn_pair_dist(X, i, 650 + i, False) for i in range(50)]
print(json.dumps({"level": _C.simd_level(), "bad": int(bad), "dup_zero": all(v == 0.0 for v in dup)}))
"""
    env = dict(os.environ)
    if simd == "generic":
        env["TRANSFERLAB_SIMD"] = "generic"
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if simd == "generic":
        assert res["level"] == "generic"
    assert res["bad"] == 0
    assert res["dup_zero"]


def test_every_simd_level_gives_the_same_accuracy(tmp_path):
    X, y = class_data(n=900, d=40, c=5, sep=0.5, seed=21)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    script = r"""
import json, sys, numpy as np, transferlab as tl
X = np.load(sys.argv[1]); y = np.load(sys.argv[2])
r = tl.knn_loo(X, y, k=3, return_details=True)
print(json.dumps({"level": tl.config()["simd_level"], "score": r.score, "nbrs": r.neighbors[:, 0].tolist()}))
"""
    results = {}
    for level in ("generic", "avx2", "avx512"):
        env = dict(os.environ, TRANSFERLAB_SIMD=level)
        out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "X.npy"), str(tmp_path / "y.npy")],
                             env=env, cwd=ROOT, capture_output=True, text=True, check=True)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        results[res["level"]] = res
    assert "generic" in results
    want = knn_loo(X, y, k=3, device="reference", return_details=True)
    for level, res in results.items():
        assert res["score"] == want.score, level
        _assert_neighbors_tie_aware(X, np.array(res["nbrs"])[:, None], want.neighbors[:, :1])


def test_thread_count_bitwise():
    X, y = class_data(n=1300, d=50, c=4, sep=0.4, seed=8)
    X[1000:1100] = X[:100]  # duplicates: tie bookkeeping crosses thread states
    out = []
    for t in (1, 2, 3):
        with transferlab.threads(t):
            out.append(knn_loo(X, y, k=3, return_details=True))
    for r in out[1:]:
        np.testing.assert_array_equal(r.neighbors, out[0].neighbors)
        assert r.distances.tobytes() == out[0].distances.tobytes()
        np.testing.assert_array_equal(r.tie_count, out[0].tie_count)
        assert r.correct.tobytes() == out[0].correct.tobytes()
        assert r.score == out[0].score


# ------------------------------------------------------------------ properties


def test_row_permutation_invariance_expected():
    X, y = _duplicate_bank(seed=9)
    perm = np.random.default_rng(2).permutation(len(y))
    for k in (1, 3):
        a = knn_loo(X, y, k=k, return_details=True)
        b = knn_loo(X[perm], y[perm], k=k, return_details=True)
        np.testing.assert_allclose(b.correct, a.correct[perm], rtol=0, atol=1e-15)
        assert b.score == pytest.approx(a.score, rel=1e-12)


def test_bijective_relabelling_including_strings():
    X, y = class_data(n=300, d=10, c=4, sep=0.5, seed=4)
    names = np.array(["zebra", "ant", "moose", "cat"])
    base = knn_loo(X, y, k=3)
    assert knn_loo(X, names[y], k=3) == base
    assert knn_loo(X, (y * 7 - 100), k=3) == base  # gaps and negatives
    assert knn_loo(X, y.astype(np.float64), k=3) == base  # integral floats
    r = knn_loo(X, names[y], k=3, return_details=True)
    assert list(r.classes) == sorted(names)


def test_feature_column_permutation():
    X, y = _digits()
    perm = np.random.default_rng(0).permutation(X.shape[1])
    for k in (1, 3):
        assert knn_loo(X[:, perm], y, k=k) == knn_loo(X, y, k=k)


# ------------------------------------------------------------------ dtypes and layouts


def test_dtypes_float16_float64_int_bool():
    X, y = class_data(n=300, d=12, c=3, sep=0.6, seed=5)
    X16 = X.astype(np.float16)
    assert knn_loo(X16, y) == knn_loo(X16.astype(np.float32), y)  # half -> float32 is exact
    got = knn_loo(X16, y, k=3, return_details=True)
    assert got.distances.tobytes() == knn_loo(X16.astype(np.float32), y, k=3, return_details=True).distances.tobytes()
    assert knn_loo(X.astype(np.float64), y) == knn_loo(X.astype(np.float64), y, device="reference")
    Xi = np.rint(X * 4).astype(np.int32)
    assert knn_loo(Xi, y) == knn_loo(Xi.astype(np.float64), y, device="reference")
    Xb = X > 0
    assert knn_loo(Xb, y) == knn_loo(Xb.astype(np.float64), y, device="reference")


def test_torch_bf16_and_f16():
    torch = pytest.importorskip("torch")
    X, y = class_data(n=260, d=9, c=3, sep=0.6, seed=6)
    for dt in (torch.bfloat16, torch.float16):
        t = torch.from_numpy(X).to(dt)
        up = t.to(torch.float32).numpy()
        a = knn_loo(t, y, k=3, return_details=True)
        b = knn_loo(up, y, k=3, return_details=True)
        np.testing.assert_array_equal(a.neighbors, b.neighbors)
        assert a.distances.tobytes() == b.distances.tobytes()
        assert a.score == b.score == knn_loo(up, y, k=3, device="reference")
    with pytest.raises(TypeError, match="detach"):
        knn_loo(torch.from_numpy(X).requires_grad_(True), y)


def test_layouts_fortran_sliced_negative_stride():
    X, y = class_data(n=400, d=20, c=4, sep=0.5, seed=7)
    base = knn_loo(X, y, k=3, return_details=True)
    F = np.asfortranarray(X)
    assert knn_loo(F, y, k=3) == base.score
    rev = knn_loo(X[::-1], y[::-1], k=3, return_details=True)
    np.testing.assert_allclose(rev.correct, base.correct[::-1], atol=1e-15)
    wide = np.zeros((400, 45), dtype=np.float32)
    wide[:, 5:25] = X
    sl = wide[:, 5:25]  # row slice view: unit inner stride, row stride 45
    assert knn_loo(sl, y, k=3) == base.score
    cols = np.repeat(X, 2, axis=1)[:, ::2]  # column stride 2: copied once
    assert knn_loo(cols, y, k=3) == base.score
    sub = knn_loo(X[50:350], y[50:350], k=3)
    assert sub == knn_loo(np.ascontiguousarray(X[50:350]), y[50:350], k=3)


def test_no_input_mutation_and_readonly_memmap(tmp_path):
    X, y = class_data(n=300, d=16, c=3, sep=0.5, seed=8)
    X[10] = X[20]
    h = digest(X, y)
    knn_loo(X, y, k=3, metric="cosine")
    knn_loo(X, y, k=3)
    assert digest(X, y) == h
    path = tmp_path / "bank.npy"
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")
    assert not mm.flags.writeable
    hm = digest(mm)
    assert knn_loo(mm, y, k=3) == knn_loo(X, y, k=3)
    assert knn_loo(mm, y, metric="cosine") == knn_loo(X, y, metric="cosine")
    assert digest(mm) == hm


# ------------------------------------------------------------------ bad input (BAD_INPUTS.md)


def test_nan_inf_raise_and_omit():
    X, y = class_data(n=200, d=8, c=3, sep=0.5, seed=9)
    Xb = X.copy()
    Xb[[5, 17], 2] = np.nan
    Xb[30, 0] = np.inf
    with pytest.raises(ValueError, match=r"features.*3 row\(s\).*row 5"):
        knn_loo(Xb, y)
    keep = np.setdiff1d(np.arange(200), [5, 17, 30])
    r = knn_loo(Xb, y, k=3, nan_policy="omit", return_details=True)
    clean = knn_loo(X[keep], y[keep], k=3, return_details=True)
    assert r.score == clean.score
    np.testing.assert_array_equal(r.neighbors, keep[clean.neighbors])  # original row numbers
    with pytest.raises(ValueError, match="nan_policy"):
        knn_loo(X, y, nan_policy="ignore")


def test_empty_and_too_few_samples_and_k_range():
    with pytest.raises(ValueError, match="n_samples=0"):
        knn_loo(np.zeros((0, 3)), np.zeros(0))
    with pytest.raises(ValueError, match="n_features=0"):
        knn_loo(np.zeros((4, 0)), np.array([0, 1, 0, 1]))
    X, y = class_data(n=6, d=3, c=2, seed=1)
    y = np.array([0, 1, 0, 1, 0, 1])
    for k in (0, -1, 6, 7):
        with pytest.raises(ValueError, match=r"k must be in \[1, n_samples-1\]"):
            knn_loo(X, y, k=k)
    with pytest.raises(ValueError, match="at least 2 samples"):
        knn_loo(X[:1], y[:1])  # N = 1 (also one class, but N is checked... by either message)
    with pytest.raises(ValueError, match=r"at least 4 samples"):
        knn_loo(X[:3], y[:3], k=3)
    with pytest.raises(TypeError, match="k must be an int"):
        knn_loo(X, y, k=1.5)
    with pytest.raises(ValueError, match=r"k must be in \[1, n_samples-1\]"):
        _C.knn_loo(X, None, 6, False, 1)


def test_one_class_and_singleton_class():
    X, y = class_data(n=50, d=4, c=2, seed=2)
    with pytest.raises(ValueError, match="need at least 2 classes, got 1"):
        knn_loo(X, np.zeros(50))
    y = np.array([0, 1] * 24 + [2, 0])  # class 2 has one sample (row 48)
    with pytest.warns(UserWarning, match="single sample") as rec:
        r = knn_loo(X, y, return_details=True)
    assert len([w for w in rec if issubclass(w.category, UserWarning)]) == 1
    assert r.correct[48] == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert r.score == knn_loo(X, y, device="reference")


def test_labels_bad():
    X, y = class_data(n=40, d=4, c=2, seed=3)
    with pytest.raises(ValueError, match="continuous"):
        knn_loo(X, y + 0.5)
    with pytest.raises(ValueError, match=r"length 39.*n_samples=40"):
        knn_loo(X, y[:39])
    assert knn_loo(X, y[:, None]) == knn_loo(X, y)
    with pytest.raises(ValueError, match="1-D"):
        knn_loo(X, np.stack([y, y], axis=1))


def test_feature_shapes_and_types():
    X, y = class_data(n=40, d=4, c=2, seed=3)
    with pytest.raises(ValueError, match=r"reshape\(-1, 1\)"):
        knn_loo(X[:, 0], y)
    with pytest.raises(ValueError, match="pool"):
        knn_loo(X.reshape(40, 2, 2), y)
    with pytest.raises(ValueError, match="pool"):
        knn_loo(X.reshape(40, 1, 2, 2), y)
    with pytest.raises(TypeError, match="complex"):
        knn_loo(X.astype(np.complex64), y)
    with pytest.raises(TypeError):
        knn_loo(X.astype(object), y)
    with pytest.raises(ValueError, match="metric"):
        knn_loo(X, y, metric="manhattan")
    with pytest.raises(ValueError, match="ties"):
        knn_loo(X, y, ties="random")
    with pytest.raises(ValueError, match="device"):
        knn_loo(X, y, device="tpu")


def test_cosine_zero_rows_named():
    X, y = class_data(n=40, d=4, c=2, seed=3)
    X[[3, 11]] = 0
    for device in ("cpu", "reference"):
        with pytest.raises(ValueError, match=r"zero.*rows 3, 11"):
            knn_loo(X, y, metric="cosine", device=device)


def test_registered_and_result_type():
    assert "knn_loo" in transferlab.scores.available()
    X, y = class_data(n=60, d=4, c=2, seed=3)
    assert transferlab.score("knn_loo", X, y) == knn_loo(X, y)
    r = knn_loo(X, y, return_details=True)
    assert isinstance(r, KnnLooResult)
    assert r.neighbors.dtype == np.int64 and r.distances.dtype == np.float32 and r.correct.dtype == np.float64


def test_device_fixture_agrees(device):
    X, y = class_data(n=300, d=16, c=4, sep=0.5, seed=12)
    got = knn_loo(X, y, k=3, device=device, return_details=True)
    want = knn_loo(X, y, k=3, device="reference", return_details=True)
    assert got.score == want.score
    _assert_neighbors_tie_aware(X, got.neighbors, want.neighbors)


@pytest.mark.cuda
def test_cuda_matches_cpu_with_duplicates():
    torch = pytest.importorskip("torch")
    X, y = _duplicate_bank(seed=13, n=600)
    for k in (1, 3):
        a = knn_loo(torch.from_numpy(X).cuda(), y, k=k, return_details=True)
        b = knn_loo(X, y, k=k, device="cpu", return_details=True)
        np.testing.assert_array_equal(a.neighbors, b.neighbors)
        np.testing.assert_array_equal(a.tie_count, b.tie_count)
        np.testing.assert_allclose(a.correct, b.correct, atol=1e-12)


def test_cuda_requested_without_cuda_is_actionable():
    if kernels.cuda_device_count() > 0:
        pytest.skip("a CUDA device is present")
    X, y = class_data(n=30, d=4, c=2, seed=3)
    with pytest.raises(RuntimeError, match="CUDA|cuda"):
        knn_loo(X, y, device="cuda")


def test_boundary_labels_rescan_matches_pair_dist():
    # The k > 1 "expected" rule rescans rows with the kernel's own distances: check that helper
    # against the scalar twin on a multi-tile bank with d > KC and duplicates.
    rng = np.random.default_rng(17)
    base = rng.normal(size=(40, 270)).astype(np.float32)
    X = base[rng.integers(0, 40, size=520)]
    y = rng.integers(0, 4, size=520).astype(np.int32)
    idx, dist, tc, ts = _C.knn_loo(X, y, 3, False, 2)
    rows = np.array([0, 1, 250, 519], dtype=np.int64)
    bd = np.ascontiguousarray(dist[rows, -1])
    off, labs, cnts = _C.knn_boundary_labels(X, y, rows, bd, False, 2)
    for r, i in enumerate(rows):
        want = {}
        for j in range(520):
            if j != i and _C.knn_pair_dist(X, int(i), j, False) == bd[r]:
                want[int(y[j])] = want.get(int(y[j]), 0) + 1
        got = {int(a): int(b) for a, b in zip(labs[off[r]:off[r + 1]], cnts[off[r]:off[r + 1]])}
        assert got == want
        assert sum(got.values()) == tc[i]


def test_duplicates_multi_tile_k3_matches_oracle():
    X, y = _duplicate_bank(seed=23, n=700, uniq=60, d=5, c=4)
    got = knn_loo(X, y, k=3, return_details=True)
    want = ref.knn_loo(X, y, k=3)
    np.testing.assert_array_equal(got.neighbors, want[1])
    np.testing.assert_allclose(got.correct, want[3], rtol=0, atol=1e-12)


def test_property_random_duplicate_banks_match_oracle():
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=30, deadline=None, derandomize=True)
    @given(seed=st.integers(0, 10_000), n=st.integers(8, 60), uniq=st.integers(2, 12), k=st.integers(1, 6),
           ties=st.sampled_from(["expected", "lowest_index"]))
    def check(seed, n, uniq, k, ties):
        rng = np.random.default_rng(seed)
        base = rng.integers(-3, 4, size=(uniq, 3)).astype(np.float32)  # small integers: exact distances
        X = base[rng.integers(0, uniq, size=n)]
        y = rng.integers(0, 3, size=n)
        y[:2] = [0, 1]
        if k > n - 1:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            got = knn_loo(X, y, k=k, ties=ties, return_details=True)
        want = ref.knn_loo(X, np.unique(y, return_inverse=True)[1], k=k, ties=ties)
        np.testing.assert_array_equal(got.neighbors, want[1])
        np.testing.assert_array_equal(got.tie_count, want[4])
        np.testing.assert_allclose(got.correct, want[3], rtol=0, atol=1e-12)

    check()
