"""Property-based fuzzing at the binding boundary: whatever array a user (or a caller of the raw
``_C`` bindings) passes -- any shape, dtype, layout, stride sign, NaN/inf placement -- transferlab
never crashes the interpreter and never fails with anything but a clear ``ValueError`` or
``TypeError``. Profiles: tests/conftest.py (``ci`` by default; HYPOTHESIS_PROFILE=local
for the long run). A segfault here kills the pytest process: that is the failure this file hunts.
"""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import transferlab
from transferlab import _C
from transferlab.core.arrays import as_labels, as_matrix
from transferlab.core.inputs import check_finite

torch = pytest.importorskip("torch")

fuzz = settings(settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci")))

CLEAR = (ValueError, TypeError)
DTYPES = ["float16", "bfloat16", "float32", "float64", "int8", "int64", "uint8", "bool", "complex64", ">f4"]
LAYOUTS = ["C", "F", "col_step", "neg_rows", "neg_cols", "row_slice", "transposed", "torch", "list"]


def _assert_clear(e: BaseException):
    assert isinstance(e, CLEAR), f"unclear failure {type(e).__name__}: {e}"
    assert len(str(e)) >= 10, f"{type(e).__name__} without a useful message: {e!r}"


@st.composite
def arrays(draw, max_n=40, max_d=12, allow_odd_ndim=True):
    """An (array, description) pair over shapes, dtypes, layouts and NaN/inf placements."""
    ndim = draw(st.sampled_from([2] * 8 + ([1, 3, 4] if allow_odd_ndim else [])))
    n = draw(st.integers(0, max_n))
    d = draw(st.integers(0, max_d))
    shape = {1: (n,), 2: (n, d), 3: (n, 2, max(1, d // 2)), 4: (n, 2, 2, max(1, d // 4))}[ndim]
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    base = rng.normal(size=shape) * draw(st.sampled_from([1.0, 1e-3, 1e4, 1e30]))
    if draw(st.booleans()) and n > 1:  # exact duplicate rows
        base[rng.integers(0, n, size=max(1, n // 3))] = base[0]
    n_bad = draw(st.integers(0, 3))
    if base.size and n_bad:
        flat = base.reshape(-1)
        for _ in range(n_bad):
            flat[rng.integers(0, flat.size)] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    dtype = draw(st.sampled_from(DTYPES))
    layout = draw(st.sampled_from(LAYOUTS))
    with np.errstate(all="ignore"):
        if dtype == "bfloat16":
            arr = torch.from_numpy(base.astype(np.float32)).to(torch.bfloat16)
            if layout == "transposed" and arr.dim() == 2:
                arr = arr.t().contiguous().t()
            elif layout == "col_step" and arr.dim() == 2:
                arr = torch.repeat_interleave(arr, 2, dim=1)[:, ::2]
            elif layout == "requires_grad":
                pass
            return arr, (dtype, layout, shape)
        if dtype in ("int8", "int64", "uint8"):
            info = np.iinfo(dtype)
            vals = np.clip(np.nan_to_num(base, nan=0.0, posinf=info.max, neginf=info.min), info.min, info.max)
            a = vals.astype(dtype)
        elif dtype == "bool":
            a = np.nan_to_num(base) > 0
        else:
            a = base.astype(dtype)
    if layout == "F":
        a = np.asfortranarray(a)
    elif layout == "col_step" and a.ndim >= 2:
        a = np.repeat(a, 2, axis=1)[:, ::2]
    elif layout == "neg_rows" and a.ndim >= 1:
        a = np.ascontiguousarray(a[::-1])[::-1]
    elif layout == "neg_cols" and a.ndim >= 2:
        a = np.ascontiguousarray(a[:, ::-1])[:, ::-1]
    elif layout == "row_slice" and a.ndim == 2:
        a = np.concatenate([a, a], axis=1)[:, : a.shape[1]]
    elif layout == "transposed" and a.ndim == 2:
        a = np.ascontiguousarray(a.T).T
    elif layout == "torch" and a.dtype.byteorder not in (">",):
        a = torch.from_numpy(np.ascontiguousarray(a))
    elif layout == "list":
        a = a.tolist()
    return a, (dtype, layout, shape)


@st.composite
def label_vectors(draw, n):
    kind = draw(st.sampled_from(["int", "int", "few", "str", "float_int", "float_frac", "neg", "wrong_len",
                                 "2d", "col", "one_class", "torch"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    c = draw(st.integers(1, 5))
    y = rng.integers(0, c, size=n)
    if kind == "few" and n:
        y[:] = 0
        y[: max(1, n // 10)] = 1
    return {
        "int": y, "few": y, "str": np.array([f"c{v}" for v in y]), "float_int": y.astype(float) * 3,
        "float_frac": y + 0.25, "neg": y - 7, "wrong_len": np.concatenate([y, [0]]),
        "2d": np.stack([y, y], axis=1), "col": y.reshape(-1, 1), "one_class": np.zeros(n, int),
        "torch": torch.from_numpy(y),
    }[kind]


def _implemented():
    """Registered scores that answer a valid input (stubs raising NotImplementedError are left out)."""
    from transferlab import testing

    out = []
    for name in transferlab.scores.available():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                transferlab.scores.get(name).func(*testing.valid_inputs(name))
        except NotImplementedError:
            continue
        except Exception:  # a broken score is the bad-input suite's business; fuzz it anyway
            pass
        out.append(name)
    return out


IMPLEMENTED = _implemented()


# ------------------------------------------------------------------------------ public API


@fuzz
@given(data=st.data())
def test_as_matrix_and_check_finite_never_crash(data):
    x, desc = data.draw(arrays())
    try:
        m = as_matrix(x, "features")
        check_finite(m, data.draw(st.sampled_from(["raise", "omit"])))
    except BaseException as e:  # noqa: BLE001 - the point is to classify every failure
        _assert_clear(e)
        return
    assert m.data.ndim == 2 and (m.d <= 1 or m.data.strides[1] == m.data.itemsize), desc
    assert m.dtype in ("float16", "bfloat16", "float32", "float64"), desc


@fuzz
@given(data=st.data())
def test_every_registered_score_fails_clearly(data):
    if not IMPLEMENTED:
        pytest.skip("no registered score is implemented yet")
    name = data.draw(st.sampled_from(IMPLEMENTED))
    x, desc = data.draw(arrays())
    n = len(x) if hasattr(x, "__len__") else 0
    y = data.draw(label_vectors(n))
    kw = {}
    info = transferlab.scores.get(name)
    import inspect

    params = inspect.signature(info.func).parameters
    if "k" in params:
        kw["k"] = data.draw(st.integers(-1, 6))
    if "nan_policy" in params:
        kw["nan_policy"] = data.draw(st.sampled_from(["raise", "omit"]))
    if "metric" in params:
        kw["metric"] = data.draw(st.sampled_from(["euclidean", "cosine"]))
    if "ties" in params:
        kw["ties"] = data.draw(st.sampled_from(["expected", "lowest_index"]))
    if "device" in params:
        kw["device"] = data.draw(st.sampled_from(["cpu", "reference"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = info.func(x, y, **kw)
        except BaseException as e:  # noqa: BLE001
            _assert_clear(e)
            return
    assert isinstance(out, float), (desc, type(out))
    assert np.isfinite(out), (desc, out)


@fuzz
@given(data=st.data())
def test_knn_loo_matches_reference_whenever_it_answers(data):
    """Not only no crash: whenever the CPU path answers, the float64 oracle answers too, and on
    small-integer banks (int8/uint8/bool: every float32 distance is exact) the two are equal."""
    x, desc = data.draw(arrays(max_n=30, max_d=6, allow_odd_ndim=False))
    n = len(x) if hasattr(x, "__len__") else 0
    y = data.draw(label_vectors(n))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            got = transferlab.knn_loo(x, y, device="cpu")
        except BaseException as e:  # noqa: BLE001
            _assert_clear(e)
            return
        ref = transferlab.knn_loo(x, y, device="reference")
    assert 0.0 <= got <= 1.0 and 0.0 <= ref <= 1.0, desc
    if desc[0] in ("int8", "uint8", "bool"):
        assert got == ref, desc


# ------------------------------------------------------------------------------ raw bindings


def _raw_array(data):
    """Arrays as a binding sees them: numpy of any dtype/layout (no Python normalisation)."""
    x, desc = data.draw(arrays(max_n=30, max_d=8))
    if hasattr(x, "numpy"):
        x = x.view(torch.int16).numpy().view(np.uint16) if x.dtype == torch.bfloat16 else x.numpy()
    return np.asarray(x) if not isinstance(x, np.ndarray) else x, desc


@fuzz
@given(data=st.data())
def test_raw_knn_bindings_never_crash(data):
    x, desc = _raw_array(data)
    n = x.shape[0] if x.ndim else 0
    is_bf16 = data.draw(st.booleans())
    lab_len = data.draw(st.sampled_from([n, n, max(0, n - 1), n + 1]))
    lab_dtype = data.draw(st.sampled_from([np.int32, np.int32, np.int64, np.float32]))
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    labels = rng.integers(0, 3, size=lab_len).astype(lab_dtype)
    k = data.draw(st.integers(-2, 5))
    threads = data.draw(st.sampled_from([0, 1, 2, -3]))
    which = data.draw(st.sampled_from(["knn_loo", "knn_loo_nolabels", "pair", "boundary", "cross", "cross2"]))
    try:
        with np.errstate(all="ignore"):
            if which == "knn_loo":
                _C.knn_loo(x, labels, k, is_bf16, threads)
            elif which == "knn_loo_nolabels":
                _C.knn_loo(x, None, k, is_bf16, threads)
            elif which == "pair":
                _C.knn_pair_dist(x, data.draw(st.integers(-1, n)), data.draw(st.integers(-1, n)), is_bf16)
            elif which == "boundary":
                rows = rng.integers(-1, n + 1, size=data.draw(st.integers(0, 4))).astype(np.int64)
                bound = rng.random(rows.size).astype(np.float32)
                _C.knn_boundary_labels(x, labels, rows, bound, is_bf16, threads)
            else:
                a = data.draw(st.integers(-1, n + 1))
                b = data.draw(st.integers(a, n + 2))
                blk = x[max(a, 0) : b] if x.ndim else x
                if which == "cross":
                    _C.knn_cross(blk, a, x, labels, k, is_bf16, threads)
                else:
                    _C.knn_cross(blk, a, x, labels, k, is_bf16, threads, data.draw(st.integers(-1, 3)),
                                 labels[: blk.shape[0]] if blk.ndim else labels, data.draw(st.booleans()))
    except BaseException as e:  # noqa: BLE001
        _assert_clear(e)
