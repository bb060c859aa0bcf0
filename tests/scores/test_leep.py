"""leep: the CPU passes and the score against the float64 oracle, the classic formula, properties
(permutation, relabelling, threads, chunking, SIMD levels, dtypes, layouts, no mutation) and bad input
(BAD_INPUTS.md)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import transferlab
from transferlab.core import cpu_threads
from transferlab import kernels
from transferlab.core.arrays import as_labels, as_matrix
from transferlab.reference import leep as ref
from transferlab.scores.leep import _stats as leep_stats
from transferlab.scores import leep

from conftest import TOL, digest

_C = kernels.cpu_module()
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REL = TOL["oracle_rel"]


def structured_probs(n=1200, z=13, c=4, seed=0, concentration=0.3, dtype=np.float64):
    """Dirichlet source probabilities whose mean depends on the target class (so LEEP has signal)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, size=n)
    prefs = rng.dirichlet(np.full(z, 0.5), size=c) * z  # per-class preferred source classes
    P = np.stack([rng.dirichlet(concentration + prefs[k]) for k in y])
    return P.astype(dtype), y


def structured_logits(n=1000, z=40, c=5, seed=0, scale=4.0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, size=n)
    centers = rng.normal(size=(c, z)) * scale
    return centers[y] + rng.normal(size=(n, z)), y


def classic_leep(predictions, labels):
    """The classic published implementation (Nguyen et al.; tllib's log_expected_empirical_prediction),
    verbatim up to names: NaN where a source class has zero mass."""
    N, C_s = predictions.shape
    labels = labels.reshape(-1)
    C_t = int(np.max(labels) + 1)
    normalized_prob = predictions / float(N)
    joint = np.zeros((C_t, C_s), dtype=float)
    for i in range(C_t):
        this_class = normalized_prob[labels == i]
        row = np.sum(this_class, axis=0)
        joint[i] = row
    p_target_given_source = (joint / joint.sum(axis=0, keepdims=True)).T
    empirical_prediction = predictions @ p_target_given_source
    empirical_prob = np.array([predict[label] for predict, label in zip(empirical_prediction, labels)])
    return np.mean(np.log(empirical_prob))


def _digits_source_target():
    """Source model: logistic regression on digits 0-4 (Z = 5 source classes) fitted on one half;
    target task: all ten digits of the other half. Returns (probs, logits, target labels)."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    d = load_digits()
    X, y = d.data / 16.0, d.target
    train = (np.arange(len(y)) % 2 == 0) & (y < 5)
    test = np.arange(len(y)) % 2 == 1
    model = LogisticRegression(max_iter=5000).fit(X[train], y[train])
    return model.predict_proba(X[test]), model.decision_function(X[test]), y[test]


# ------------------------------------------------------------------ kernels vs oracle


@pytest.mark.parametrize("n,z,c", [(1000, 13, 4), (700, 1000, 10), (400, 7, 60), (300, 600, 3), (5, 1, 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_kernels_match_oracle(n, z, c, dtype):
    # z = 1000 / 600: several 256-column joint blocks and several 512-column conversion pieces;
    # c = 60 with z = 7: class groups carry the parallelism; z = 1 and 7: not a multiple of the lanes.
    rng = np.random.default_rng(n + z)
    P = rng.dirichlet(np.ones(z), size=n).astype(dtype)
    y = rng.integers(0, c, size=n).astype(np.int32)
    P64 = P.astype(np.float64)
    stats, lse = _C.leep_row_stats(P, False, 1e-2, False, 0)
    assert lse is None
    assert stats["nonfinite_rows"] == stats["negative_rows"] == stats["bad_sum_rows"] == 0
    assert stats["min_row_sum"] == pytest.approx(P64.sum(1).min(), rel=1e-14)
    assert stats["max_row_sum"] == pytest.approx(P64.sum(1).max(), rel=1e-14)
    S = _C.leep_joint(P, y, c, False, None, False, 0)
    np.testing.assert_allclose(S, ref.joint(P64, y, c) * n, rtol=1e-12, atol=1e-14)
    cond = leep_stats.conditional(S)
    e = _C.leep_eep(P, y, c, False, None, cond, False, 0)
    np.testing.assert_allclose(e, np.einsum("iz,iz->i", P64, cond[y]), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("z", [3, 37, 700])
def test_kernels_logits_match_oracle(z):
    L, y = structured_logits(n=500, z=z, c=4, seed=z)
    y = y.astype(np.int32)
    stats, lse = _C.leep_row_stats(L, True, 1e-3, False, 0)
    assert stats["nonfinite_rows"] == 0 and stats["negative_rows"] == 0 and stats["bad_sum_rows"] == 0
    m = L.max(1)
    np.testing.assert_allclose(lse, m + np.log(np.exp(L - m[:, None]).sum(1)), rtol=1e-14)
    P = ref.softmax_rows(L)
    S = _C.leep_joint(L, y, 4, True, lse, False, 0)
    np.testing.assert_allclose(S, ref.joint(P, y, 4) * len(y), rtol=1e-12)
    cond = leep_stats.conditional(S)
    np.testing.assert_allclose(_C.leep_eep(L, y, 4, True, lse, cond, False, 0),
                               np.einsum("iz,iz->i", P, cond[y]), rtol=1e-12)


def test_logit_probabilities_match_scipy_softmax():
    # One row per class makes S = softmax(L) exactly as the passes compute it (the kernel's own
    # float64 exp, accurate to a few ulp; arguments below -708 give 0, values under 2^-1021).
    from scipy.special import softmax

    rng = np.random.default_rng(30)
    L = np.concatenate([rng.normal(size=(300, 37)) * s for s in (0.1, 3.0, 60.0, 400.0)])
    L[5, :] = 0.0  # uniform row
    L[6, 3] = 1e5  # one dominant entry
    codes = np.arange(len(L), dtype=np.int32)
    _, lse = _C.leep_row_stats(L, True, 1e-3, False, 0)
    S = _C.leep_joint(L, codes, len(L), True, lse, False, 0)
    want = softmax(L, axis=1)
    big = want > 1e-300
    # exp(x - lse) amplifies the last-ulp difference of lse by |x - lse| (up to ~2000 here).
    np.testing.assert_allclose(S[big], want[big], rtol=1e-12)
    assert np.all(S[~big] <= 1e-300)
    np.testing.assert_allclose(S.sum(axis=1), 1.0, rtol=1e-13)
    assert S[5, 0] == pytest.approx(1 / 37, rel=1e-15) and S[6, 3] == 1.0


def test_kernel_argument_errors():
    P, y = structured_probs(n=50, z=6, c=3, seed=31, dtype=np.float32)
    y32 = y.astype(np.int32)
    bad = y32.copy()
    bad[7] = 3
    with pytest.raises(ValueError, match=r"labels\[7\] = 3 is outside \[0, n_classes=3\)"):
        _C.leep_joint(P, bad, 3, False, None, False, 0)
    with pytest.raises(ValueError, match="labels must be a contiguous array of int32"):
        _C.leep_joint(P, y.astype(np.int64), 3, False, None, False, 0)
    with pytest.raises(ValueError, match=r"joint must be a C-contiguous float64 array of shape \(3, 6\)"):
        _C.leep_joint(P, y32, 3, False, None, False, 0, np.zeros((3, 6), dtype=np.float32))
    ro = np.zeros((3, 6))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="joint must be writeable"):
        _C.leep_joint(P, y32, 3, False, None, False, 0, ro)
    with pytest.raises(ValueError, match="row_lse is required"):
        _C.leep_joint(P, y32, 3, True, None, False, 0)
    with pytest.raises(ValueError, match=r"cond must be a C-contiguous float64 array of shape \(3, 6\)"):
        _C.leep_eep(P, y32, 3, False, None, np.zeros((6, 3)), False, 0)
    with pytest.raises(ValueError, match="unsupported dtype"):
        _C.leep_row_stats(P.astype(np.int32), False, 1e-3, False, 0)


def test_row_stats_flags_rows():
    P, _ = structured_probs(n=600, z=9, seed=1)
    P[5, 2] = np.nan
    P[400, 0] = np.inf
    P[17, :2] = [-0.1, P[17, 0] + P[17, 1] + 0.1]  # still sums to 1
    P[300] *= 1.01
    P[599] *= 0.5
    stats, _ = _C.leep_row_stats(P, False, 1e-3, False, 2)
    assert (stats["nonfinite_rows"], stats["first_nonfinite_row"]) == (2, 5)
    assert (stats["negative_rows"], stats["first_negative_row"]) == (1, 17)
    assert (stats["bad_sum_rows"], stats["first_bad_sum_row"]) == (2, 300)
    assert stats["min_row_sum"] == pytest.approx(0.5) and stats["max_row_sum"] == pytest.approx(1.01)
    stats, lse = _C.leep_row_stats(P, True, 1e-3, False, 2)  # logits: only non-finite rows count
    assert (stats["nonfinite_rows"], stats["negative_rows"], stats["bad_sum_rows"]) == (2, 0, 0)
    assert np.isnan(lse[5]) and np.isnan(lse[400]) and np.isfinite(np.delete(lse, [5, 400])).all()


# ------------------------------------------------------------------ score vs oracle


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,z,c", [(1200, 13, 4), (900, 300, 12), (2000, 5, 30)])
def test_score_matches_oracle_structured(dtype, n, z, c):
    P, y = structured_probs(n=n, z=z, c=c, seed=n + c, dtype=dtype)
    want = ref.leep(P.astype(np.float64), y)[0]
    assert leep(P, y) == pytest.approx(want, rel=REL)
    assert leep(P, y, device="reference") == pytest.approx(want, rel=1e-15)
    # Class structure gives a clearly better score than shuffled labels.
    assert leep(P, np.random.default_rng(0).permutation(y)) < want - 0.05


def test_score_from_logits_matches_oracle():
    L, y = structured_logits(n=1500, z=40, c=5, seed=3)
    want = ref.leep(L, y, from_logits=True)[0]
    for arr in (L, L.astype(np.float32)):
        assert leep(arr, y, from_logits=True) == pytest.approx(ref.leep(arr, y, from_logits=True)[0], rel=REL)
    assert leep(L, y, from_logits=True, device="reference") == pytest.approx(want, rel=1e-15)
    # Softmax first, then LEEP: the same number.
    assert leep(ref.softmax_rows(L), y) == pytest.approx(want, rel=1e-12)
    # Huge logits: log-sum-exp keeps them finite where a naive softmax overflows.
    big = L * 200.0
    got = leep(big, y, from_logits=True)
    assert np.isfinite(got) and got == pytest.approx(ref.leep(big, y, from_logits=True)[0], rel=REL)


def test_digits_logistic_regression_source():
    P, logits, y = _digits_source_target()
    want = ref.leep(P, y)[0]
    assert leep(P, y) == pytest.approx(want, rel=REL)
    assert leep(P.astype(np.float32), y) == pytest.approx(want, rel=1e-5)
    assert leep(logits, y, from_logits=True) == pytest.approx(want, rel=1e-9)
    assert leep(P, y) == pytest.approx(classic_leep(P, y), rel=1e-12)
    # The source model carries information on the target task: better than the label prior alone
    # (LEEP of uninformative P equals the negative entropy of the target labels).
    prior = np.bincount(y) / len(y)
    assert leep(P, y) > np.sum(prior * np.log(prior)) + 0.3
    assert leep(np.full_like(P, 1.0 / P.shape[1]), y) == pytest.approx(np.sum(prior * np.log(prior)), rel=1e-12)


# ------------------------------------------------------------------ classic formula parity


def test_classic_formula_parity():
    for seed in range(3):
        P, y = structured_probs(n=800, z=11, c=6, seed=seed)
        assert leep(P, y) == pytest.approx(classic_leep(P, y), rel=1e-12)


def test_zero_mass_source_class_is_skipped_where_classic_gives_nan():
    P, y = structured_probs(n=500, z=8, c=3, seed=4)
    Pz = np.insert(P, 3, 0.0, axis=1)  # source class 3 never predicted
    with np.errstate(invalid="ignore"):
        assert np.isnan(classic_leep(Pz, y))
    got = leep(Pz, y)
    assert got == pytest.approx(classic_leep(P, y), rel=1e-12)
    assert got == pytest.approx(leep(Pz, y, device="reference"), rel=REL)


# ------------------------------------------------------------------ properties


def test_row_permutation_invariance():
    P, y = structured_probs(n=1000, z=20, c=5, seed=5)
    perm = np.random.default_rng(1).permutation(len(y))
    assert leep(P[perm], y[perm]) == pytest.approx(leep(P, y), rel=1e-13)


def test_bijective_relabelling_including_strings():
    P, y = structured_probs(n=600, z=10, c=4, seed=6)
    base = leep(P, y)
    names = np.array(["zebra", "ant", "moose", "cat"])
    assert leep(P, names[y]) == pytest.approx(base, rel=1e-14)
    assert leep(P, y * 7 - 100) == pytest.approx(base, rel=1e-14)  # gaps and negatives
    assert leep(P, y.astype(np.float64)) == base  # integral floats: the same codes
    assert leep(P, list(names[y])) == pytest.approx(base, rel=1e-14)
    assert leep(P, y.reshape(-1, 1)) == base


def test_source_column_permutation():
    P, y = structured_probs(n=600, z=17, c=4, seed=7)
    perm = np.random.default_rng(2).permutation(P.shape[1])
    assert leep(P[:, perm], y) == pytest.approx(leep(P, y), rel=1e-13)


@pytest.mark.parametrize("z,c", [(9, 40), (700, 6)])
def test_thread_count_bitwise(z, c):
    P, y = structured_probs(n=3000, z=z, c=c, seed=z, dtype=np.float32)
    L, yl = structured_logits(n=1000, z=z, c=c, seed=z)
    out = []
    for t in (1, 2, 3, 5):
        with transferlab.threads(t):
            y32 = y.astype(np.int32)
            S = _C.leep_joint(P, y32, c, False, None, False, cpu_threads.num_threads())
            stats, lse = _C.leep_row_stats(L, True, 1e-3, False, cpu_threads.num_threads())
            out.append((S.tobytes(), lse.tobytes(), leep(P, y), leep(L, yl, from_logits=True)))
    for r in out[1:]:
        assert r == out[0]


@pytest.mark.parametrize("c", [2, 7, 300])
def test_thread_count_bitwise_skewed_classes(c):
    # One dominant class: the joint split adds column ranges to the group that holds it.
    P, _ = structured_probs(n=4000, z=700, c=3, seed=c, dtype=np.float32)
    rng = np.random.default_rng(c)
    y = np.where(rng.random(4000) < 0.6, 0, rng.integers(0, c, size=4000)).astype(np.int32)
    ref_S = None
    for t in (1, 2, 3, 4, 7):
        S = _C.leep_joint(P, y, c, False, None, False, t)
        if ref_S is None:
            ref_S = S
            np.testing.assert_allclose(S, ref.joint(P.astype(np.float64), y, c) * len(y), rtol=1e-12)
        assert S.tobytes() == ref_S.tobytes(), t


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("from_logits", [False, True])
def test_chunked_joint_equals_one_shot_bitwise(dtype, from_logits):
    if from_logits:
        X, y = structured_logits(n=1100, z=300, c=7, seed=9)
        X = X.astype(dtype)
    else:
        X, y = structured_probs(n=1100, z=300, c=7, seed=9, dtype=dtype)
    y = y.astype(np.int32)
    _, lse = _C.leep_row_stats(X, from_logits, 1e-2, False, 0)
    one = _C.leep_joint(X, y, 7, from_logits, lse, False, 0)
    for chunk in (1, 7, 256, 333, 1099):
        with transferlab.threads(1 + chunk % 3):
            S = np.zeros((7, 300))
            for s in range(0, len(y), chunk):
                lse_c = None if lse is None else lse[s : s + chunk]
                out = _C.leep_joint(X[s : s + chunk], y[s : s + chunk], 7, from_logits, lse_c, False, 0, S)
                assert out is S  # accumulated in place
        assert S.tobytes() == one.tobytes(), chunk
    # The Python helper's chunked path is the same.
    m = as_matrix(X, "source_probs")
    p = leep_stats.validate_probs(m, as_labels(y, m.n), from_logits=from_logits)
    assert leep_stats.joint_counts(p, chunk_rows=100).tobytes() == leep_stats.joint_counts(p).tobytes()


def test_every_simd_level_gives_the_same_bits(tmp_path):
    # Includes the logit passes: the generic, AVX2 (4-wide) and AVX-512 (8-wide, masked tails) exp
    # perform the same unfused operations, so lse, J and EEP agree to the bit (z = 77, 301: tails).
    P, y = structured_probs(n=900, z=301, c=6, seed=10, dtype=np.float32)
    L, yl = structured_logits(n=400, z=77, c=6, seed=10)
    np.save(tmp_path / "P.npy", P)
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "L.npy", L)
    np.save(tmp_path / "yl.npy", yl)
    script = (
        "import sys, json, hashlib, numpy as np, transferlab as tl\n"
        "from transferlab import kernels\n"
        "d = sys.argv[1]; P = np.load(d + '/P.npy'); y = np.load(d + '/y.npy')\n"
        "L = np.load(d + '/L.npy'); yl = np.load(d + '/yl.npy')\n"
        "C = kernels.cpu_module(); y32 = y.astype(np.int32)\n"
        "S = C.leep_joint(P, y32, 6, False, None, False, 0); c = S / S.sum(0)\n"
        "e = C.leep_eep(P, y32, 6, False, None, c, False, 0)\n"
        "e16 = C.leep_eep(P.astype(np.float16), y32, 6, False, None, c, False, 0)\n"
        "yl32 = yl.astype(np.int32); _, lse = C.leep_row_stats(L, True, 1e-3, False, 0)\n"
        "SL = C.leep_joint(L, yl32, 6, True, lse, False, 0); cL = SL / SL.sum(0)\n"
        "eL = C.leep_eep(L, yl32, 6, True, lse, cL, False, 0)\n"
        "L16 = L.astype(np.float16); _, lse16 = C.leep_row_stats(L16, True, 1e-3, False, 0)\n"
        "S16 = C.leep_joint(L16, yl32, 6, True, lse16, False, 0)\n"
        "h = hashlib.sha256(b''.join(a.tobytes() for a in (S, e, e16, lse, SL, eL, lse16, S16))).hexdigest()\n"
        "print(json.dumps({'level': C.simd_level(), 'h': h, 'a': tl.leep(P, y), "
        "'b': tl.leep(L, yl, from_logits=True)}))\n"
    )
    results = {}
    for level in ("generic", "avx2", "avx512"):
        env = dict(os.environ, TRANSFERLAB_SIMD=level)
        out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, cwd=ROOT,
                             capture_output=True, text=True, check=True)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        results[res.pop("level")] = res
    assert "generic" in results
    first = next(iter(results.values()))
    for level, res in results.items():
        assert res == first, level


# ------------------------------------------------------------------ dtypes, layouts, mutation


def test_dtypes_float16_float32_float64():
    P, y = structured_probs(n=800, z=12, c=4, seed=11)
    P16 = P.astype(np.float16)
    # float16 -> float32 is exact, and both feed the same float32 primitives.
    assert leep(P16, y) == leep(P16.astype(np.float32), y)
    assert leep(P16, y) == pytest.approx(ref.leep(P16.astype(np.float64), y)[0], rel=REL)
    assert leep(P.astype(np.float32), y) == pytest.approx(ref.leep(P.astype(np.float32), y)[0], rel=REL)


def test_torch_bf16_f16_f32_and_requires_grad():
    torch = pytest.importorskip("torch")
    P, y = structured_probs(n=700, z=10, c=4, seed=12)
    for dt in (torch.bfloat16, torch.float16, torch.float32, torch.float64):
        t = torch.from_numpy(P).to(dt)
        up = t.to(torch.float64).numpy()
        assert leep(t, y) == pytest.approx(ref.leep(up, y)[0], rel=REL), dt
        assert leep(t, torch.from_numpy(y)) == leep(t, y)
    tb = torch.from_numpy(P).to(torch.bfloat16)
    # bf16 kernels see exactly the upcast float32 values: identical joint counts.
    bits = tb.view(torch.int16).numpy().view(np.uint16)
    y32 = y.astype(np.int32)
    assert _C.leep_joint(bits, y32, 4, False, None, True, 0).tobytes() == \
        _C.leep_joint(tb.float().numpy(), y32, 4, False, None, False, 0).tobytes()
    with pytest.raises(TypeError, match="detach"):
        leep(torch.from_numpy(P).requires_grad_(True), y)


def test_bf16_rows_pass_the_dtype_aware_sum_check():
    torch = pytest.importorskip("torch")
    # A correct softmax stored in bfloat16: rows miss 1 by up to ~2^-8 (beyond 1e-3) by rounding alone.
    L, y = structured_logits(n=2000, z=5, c=4, seed=13, scale=1.0)
    t = torch.from_numpy(ref.softmax_rows(L)).to(torch.bfloat16)
    sums = t.double().sum(1).numpy()
    assert np.abs(sums - 1).max() > 1e-3
    assert leep(t, y) == pytest.approx(leep(t, y, device="reference"), rel=REL)


def test_layouts_fortran_sliced_negative_stride():
    P, y = structured_probs(n=500, z=14, c=4, seed=14)
    base = leep(P, y)
    assert leep(np.asfortranarray(P), y) == base
    wide = np.zeros((500, 30))
    wide[:, 6:20] = P
    assert leep(wide[:, 6:20], y) == base  # unit inner stride, row stride 30: no copy
    assert leep(np.repeat(P, 2, axis=1)[:, ::2], y) == base  # column stride 2: copied once
    assert leep(P[::-1], y[::-1]) == pytest.approx(base, rel=1e-13)
    assert leep(P[100:400], y[100:400]) == leep(np.ascontiguousarray(P[100:400]), y[100:400])


def test_no_input_mutation_and_readonly_memmap(tmp_path):
    P, y = structured_probs(n=600, z=15, c=5, seed=15, dtype=np.float32)
    L, yl = structured_logits(n=300, z=15, c=3, seed=15)
    h = digest(P, y, L, yl)
    leep(P, y)
    leep(L, yl, from_logits=True)
    leep(P, y, device="reference")
    leep(L, yl, from_logits=True, device="reference")
    assert digest(P, y, L, yl) == h
    np.save(tmp_path / "P.npy", P)
    mm = np.load(tmp_path / "P.npy", mmap_mode="r")
    assert not mm.flags.writeable
    hm = digest(mm)
    assert leep(mm, y) == leep(P, y)
    assert leep(mm, y, device="reference") == leep(P, y, device="reference")
    m = as_matrix(mm, "source_probs")
    p = leep_stats.validate_probs(m, as_labels(y, m.n), from_logits=False)
    assert leep_stats.joint_counts(p, chunk_rows=64).tobytes() == leep_stats.joint_counts(p).tobytes()
    assert digest(mm) == hm


# ------------------------------------------------------------------ bad input (BAD_INPUTS.md)


def test_nan_inf_raise_and_omit():
    P, y = structured_probs(n=300, z=6, c=3, seed=16)
    Pb = P.copy()
    Pb[7, 1] = np.nan
    Pb[50, 0] = -np.inf
    with pytest.raises(ValueError, match=r"source_probs contains NaN or inf in 2 row\(s\) \(first at row 7\)"):
        leep(Pb, y)
    with pytest.raises(ValueError, match="first at row 7"):
        leep(Pb, y, device="reference")
    keep = np.setdiff1d(np.arange(300), [7, 50])
    assert leep(Pb, y, nan_policy="omit") == leep(np.ascontiguousarray(P[keep]), y[keep])
    Lb, yl = structured_logits(n=200, z=5, c=3, seed=16)
    Lb[3, 2] = np.inf
    with pytest.raises(ValueError, match="first at row 3"):
        leep(Lb, yl, from_logits=True)
    k = np.delete(np.arange(200), 3)
    assert leep(Lb, yl, from_logits=True, nan_policy="omit") == leep(Lb[k], yl[k], from_logits=True)
    with pytest.raises(ValueError, match="nan_policy"):
        leep(P, y, nan_policy="ignore")
    allbad = np.full((4, 3), np.nan)
    with pytest.raises(ValueError, match="every row"):
        leep(allbad, [0, 1, 0, 1], nan_policy="omit")


@pytest.mark.parametrize("device", ["cpu", "reference"])
def test_negative_entries_mean_logits(device):
    L, y = structured_logits(n=200, z=6, c=3, seed=17)
    with pytest.raises(ValueError, match=r"negative entries in \d+ row\(s\) \(first at row 0\).*from_logits=True"):
        leep(L, y, device=device)
    P, y = structured_probs(n=200, z=6, c=3, seed=17)
    P[9, 0] = -0.25
    P[9, 1] = 1.25 - P[9, 2:].sum()  # the row still sums to 1; one entry is negative
    with pytest.raises(ValueError, match=r"negative entries in 1 row\(s\) \(first at row 9\)"):
        leep(P, y, device=device)


@pytest.mark.parametrize("device", ["cpu", "reference"])
def test_rows_not_summing_to_one(device):
    P, y = structured_probs(n=300, z=6, c=3, seed=18)
    Pb = P.copy()
    Pb[42] *= 1.5
    Pb[200] *= 0.9
    with pytest.raises(ValueError, match=r"must sum to 1 .*2 row\(s\).*first at row 42, which sums to 1\.5"):
        leep(Pb, y, device=device)
    Pb = P.copy()
    Pb[5] *= 1 + 5e-4  # within 1e-3: accepted
    assert np.isfinite(leep(Pb, y, device=device))
    with pytest.raises(ValueError, match="from_logits=True"):
        leep(np.exp(np.log(P) + 1.0), y, device=device)  # unnormalised exp-scores


def test_swapped_arguments_are_an_error():
    P, y = structured_probs(n=100, z=5, c=3, seed=19)
    with pytest.raises(ValueError, match="swapped"):
        leep(y, P)
    with pytest.raises(ValueError, match="swapped"):
        leep(list(y), P.tolist())
    # Labels that look like probabilities (2-D, several columns) are refused with both shapes.
    with pytest.raises(ValueError, match=r"labels must be 1-D"):
        leep(P, P)


def test_shapes_sizes_and_classes():
    P, y = structured_probs(n=100, z=5, c=3, seed=20)
    with pytest.raises(ValueError, match=r"labels has length 99 but the features have n_samples=100"):
        leep(P, y[:99])
    with pytest.raises(ValueError, match="n_samples=0"):
        leep(np.zeros((0, 5)), np.zeros(0))
    with pytest.raises(ValueError, match="n_features=0"):
        leep(np.zeros((4, 0)), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="at least 2 samples"):
        leep(P[:1], y[:1])
    with pytest.raises(ValueError, match="need at least 2 classes, got 1"):
        leep(P, np.zeros(100, dtype=int))
    with pytest.raises(ValueError, match="need at least 2 classes, got 1"):
        leep(P, np.zeros(100, dtype=int), device="reference")
    with pytest.raises(ValueError, match="2-D"):
        leep(P.reshape(100, 5, 1), y)
    with pytest.raises(ValueError, match="labels look continuous"):
        leep(P, y + 0.5)
    with pytest.raises(TypeError, match="complex"):
        leep(P.astype(np.complex128), y)
    with pytest.raises(ValueError, match="device must be one of"):
        leep(P, y, device="tpu")
    # One source class (Z = 1): P is all ones, EEP_i = n_{y_i} / N, LEEP = -H(Y).
    prior = np.bincount(y) / len(y)
    assert leep(np.ones((100, 1)), y) == pytest.approx(np.sum(prior * np.log(prior)), rel=1e-12)


def test_int_and_bool_probabilities():
    # One-hot integer "probabilities" (hard predictions) are valid probabilities.
    rng = np.random.default_rng(21)
    z = rng.integers(0, 4, size=300)
    y = (z + (rng.random(300) < 0.2)) % 3
    onehot = np.eye(4, dtype=np.int64)[z]
    assert leep(onehot, y) == pytest.approx(ref.leep(onehot.astype(np.float64), y)[0], rel=REL)
    assert leep(onehot.astype(bool), y) == leep(onehot, y)


def test_huge_number_of_target_classes():
    rng = np.random.default_rng(22)
    n, c = 30000, 10000
    y = rng.integers(0, c, size=n)
    P = rng.dirichlet(np.ones(8), size=n).astype(np.float32)
    assert leep(P, y) == pytest.approx(ref.leep(P.astype(np.float64), y)[0], rel=REL)


def test_registered_and_score_by_name():
    assert "leep" in transferlab.scores.available()
    assert transferlab.scores.get("leep").inputs == "probs"
    P, y = structured_probs(n=200, z=5, c=3, seed=23)
    assert transferlab.score("leep", P, y) == transferlab.leep(P, y) == leep(P, y)


def test_device_fixture_agrees(device):
    P, y = structured_probs(n=400, z=9, c=4, seed=24, dtype=np.float32)
    if device == "cuda":
        import torch

        P = torch.from_numpy(P).cuda()
    assert leep(P, y, device=device) == pytest.approx(ref.leep(np.asarray(P.cpu() if hasattr(P, "cpu") else P,
                                                                          dtype=np.float64), y)[0], rel=REL)


def test_cuda_requested_without_cuda_is_actionable():
    if kernels.cuda_module() is not None and kernels.cuda_device_count() > 0:
        pytest.skip("a CUDA device is present")
    P, y = structured_probs(n=50, z=4, c=2, seed=25)
    with pytest.raises(RuntimeError, match="device='cpu'|TRANSFERLAB_CUDA=ON"):
        leep(P, y, device="cuda")


def test_cuda_module_without_leep_kernels_is_actionable(monkeypatch):
    monkeypatch.setattr(kernels, "require_cuda", lambda: object())
    with pytest.raises(RuntimeError, match="no LEEP kernels; pass device='cpu'"):
        leep_stats._cuda_leep()


# ------------------------------------------------------------------ CUDA (skipped without a device)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
@pytest.mark.parametrize("from_logits", [False, True])
def test_cuda_matches_cpu(dtype, from_logits):
    import torch

    if from_logits:
        X, y = structured_logits(n=3000, z=1000, c=10, seed=26)
    else:
        X, y = structured_probs(n=3000, z=1000, c=10, seed=26)
    t = torch.from_numpy(X).to(getattr(torch, dtype))
    got = leep(t.cuda(), y, from_logits=from_logits)
    want = leep(t, y, from_logits=from_logits)
    assert got == pytest.approx(want, rel=1e-12)
    assert leep(t.cuda(), y, from_logits=from_logits, device="cpu") == want
