"""Input normalisation (transferlab/core/arrays.py, core/inputs.py) and device dispatch (transferlab/core/devices.py)."""
import numpy as np
import pytest
import torch

from transferlab.core import arrays, blocks, inputs
from transferlab.core import devices
from transferlab import kernels
from transferlab.core.arrays import Matrix, as_labels, as_matrix
from transferlab.core.inputs import check_finite


def test_row_major_inputs_are_not_copied():
    base = np.arange(60, dtype=np.float32).reshape(10, 6)
    for view in (base, base[2:7], base[::2], base[::-1], base[:, :4]):
        m = as_matrix(view)
        assert np.shares_memory(m.data, base), "unit-inner-stride views must go zero-copy"
        assert m.dtype == "float32" and m.n == view.shape[0] and m.d == view.shape[1]


def test_other_layouts_are_copied_once_and_values_kept():
    base = np.arange(60, dtype=np.float64).reshape(10, 6)
    fortran = np.asfortranarray(base)
    cols = base[:, ::2]
    for view in (fortran, cols):
        m = as_matrix(view)
        assert m.data.strides[1] == m.data.itemsize
        np.testing.assert_array_equal(m.data, view)


@pytest.mark.parametrize("dtype,expected", [(np.float16, "float16"), (np.float32, "float32"), (np.float64, "float64"),
                                            (np.int64, "float32"), (np.int8, "float32"), (np.bool_, "float32")])
def test_dtypes(dtype, expected):
    x = (np.arange(12).reshape(4, 3) % 2).astype(dtype)
    m = as_matrix(x)
    assert m.dtype == expected
    np.testing.assert_array_equal(m.to_float64_host(), x.astype(np.float64))


@pytest.mark.parametrize("bad", [np.ones((3, 2), dtype=np.complex64), np.array([["a", "b"], ["c", "d"]]),
                                 np.array([[object(), 1]], dtype=object)])
def test_non_real_dtypes_raise_typeerror(bad):
    with pytest.raises(TypeError, match="features"):
        as_matrix(bad)


def test_shape_errors_explain_the_fix():
    with pytest.raises(ValueError, match="reshape\\(-1, 1\\)"):
        as_matrix(np.ones(5))
    with pytest.raises(ValueError, match="pool spatial"):
        as_matrix(np.ones((2, 3, 4, 4)))
    with pytest.raises(ValueError, match="n_samples=0"):
        as_matrix(np.ones((0, 3)))
    with pytest.raises(ValueError, match="n_features=0"):
        as_matrix(np.ones((3, 0)))


def test_torch_cpu_tensors():
    t = torch.arange(12, dtype=torch.float32).reshape(4, 3)
    m = as_matrix(t)
    assert m.device == "cpu" and np.shares_memory(m.data, t.numpy())
    bf = t.to(torch.bfloat16)
    mb = as_matrix(bf)
    assert mb.dtype == "bfloat16" and mb.data.dtype == np.uint16
    np.testing.assert_array_equal(mb.to_float64_host(), bf.to(torch.float64).numpy())
    with pytest.raises(TypeError, match="detach"):
        as_matrix(t.clone().requires_grad_(True))


def test_dlpack_and_array_like_inputs():
    class OnlyDLPack:
        def __init__(self, a):
            self._a = a

        def __dlpack__(self, **kw):
            return self._a.__dlpack__(**kw)

        def __dlpack_device__(self):
            return self._a.__dlpack_device__()

    a = np.ones((3, 2), dtype=np.float32)
    assert as_matrix(OnlyDLPack(a)).n == 3
    assert as_matrix([[1.0, 2.0], [3.0, 4.0]]).dtype == "float64"


def test_readonly_memmap_is_used_in_place(tmp_path):
    path = tmp_path / "bank.npy"
    np.save(path, np.ones((5, 4), dtype=np.float32))
    mm = np.load(path, mmap_mode="r")
    m = as_matrix(mm)
    assert np.shares_memory(m.data, mm) and not m.data.flags.writeable


def test_nonfinite_rows_raise_or_omit():
    x = np.ones((6, 3), dtype=np.float32)
    x[2, 1] = np.nan
    x[4, 0] = np.inf
    with pytest.raises(ValueError, match=r"features contains NaN or inf in 2 row\(s\) \(first at row 2\)"):
        check_finite(as_matrix(x))
    keep = check_finite(as_matrix(x), nan_policy="omit")
    np.testing.assert_array_equal(keep, [0, 1, 3, 5])
    assert check_finite(as_matrix(np.ones((2, 2)))) is None
    with pytest.raises(ValueError, match="nan_policy"):
        check_finite(as_matrix(x), nan_policy="ignore")


def test_nonfinite_bf16_rows_detected():
    t = torch.ones(4, 3, dtype=torch.bfloat16)
    t[1, 2] = float("nan")
    t[3, 0] = float("-inf")
    np.testing.assert_array_equal(inputs.nonfinite_rows(as_matrix(t)), [False, True, False, True])


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("budget", [None, 7])
def test_scan_rows_matches_a_row_by_row_oracle(dtype, budget):
    # scan_rows reduces whole blocks and scans a block row by row only when it is not finite: with a budget of
    # 7 rows per block, clean blocks, blocks with NaN / +inf / -inf rows, and a block that is all NaN.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5)) * 3.0
    x[3, 1], x[9, 0], x[10, 4] = np.nan, np.inf, -np.inf
    x[21:28] = np.nan
    x[30] = -250.0  # the largest |x| of the finite rows, negative
    if dtype == "bfloat16":
        arr = torch.tensor(x).to(torch.bfloat16)
        ref = arr.float().numpy().astype(np.float64)
    else:
        arr = x.astype(dtype)
        ref = arr.astype(np.float64)
    m = as_matrix(arr)
    if budget is not None:
        m = m.with_budget(blocks.Budget(budget))
    bad, top = inputs.scan_rows(m)
    want_bad = ~np.isfinite(ref).all(axis=1)
    np.testing.assert_array_equal(bad, want_bad)
    assert top == float(np.abs(ref[~want_bad]).max()) == 250.0
    clean = inputs.scan_rows(as_matrix(np.ones((3, 2), dtype=np.float32) * -0.5))
    assert not clean[0].any() and clean[1] == 0.5
    assert inputs.scan_rows(as_matrix(np.full((2, 2), np.nan)))[1] == 0.0  # no finite row


def test_labels_are_remapped():
    lab = as_labels(np.array(["cat", "dog", "cat", "emu"]))
    np.testing.assert_array_equal(lab.codes, [0, 1, 0, 2])
    assert list(lab.classes) == ["cat", "dog", "emu"] and lab.codes.dtype == np.int32
    np.testing.assert_array_equal(as_labels([-5, 10, 10, 3]).codes, [0, 2, 2, 1])
    np.testing.assert_array_equal(as_labels(np.array([[2.0], [7.0], [2.0]])).codes, [0, 1, 0])
    np.testing.assert_array_equal(as_labels(torch.tensor([3, 1, 3])).codes, [1, 0, 1])
    np.testing.assert_array_equal(as_labels(np.array([True, False, True])).codes, [1, 0, 1])


def test_label_errors():
    with pytest.raises(ValueError, match="look continuous"):
        as_labels([0.5, 1.0, 2.0])
    with pytest.raises(ValueError, match="length 3 but the features have n_samples=4"):
        as_labels([0, 1, 0], 4)
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        as_labels(np.zeros((2, 2)), 2)
    with pytest.raises(ValueError, match="need at least 2 classes, got 1"):
        as_labels([1, 1, 1])
    with pytest.raises(ValueError, match="NaN"):
        as_labels([0.0, np.nan])


def test_labels_are_not_mutated():
    y = np.array([5, 3, 5, 9])
    before = y.copy()
    as_labels(y)
    np.testing.assert_array_equal(y, before)


def test_resolve_device_rules():
    host = as_matrix(np.ones((3, 2), dtype=np.float32))
    fake_gpu = Matrix(host.data, "cuda", "float32", "probs")
    assert devices.resolve_device("auto", host) == "cpu"
    assert devices.resolve_device("reference", host) == "reference"
    assert devices.resolve_device("auto", fake_gpu) == "cuda"
    with pytest.raises(ValueError, match="device must be one of"):
        devices.resolve_device("gpu", host)
    with pytest.raises(RuntimeError, match="two devices"):
        devices.resolve_device("auto", host, fake_gpu)


@pytest.mark.skipif(kernels.cuda_device_count() > 0, reason="a CUDA device is present")
def test_cuda_requested_without_device_says_how_to_fix():
    host = as_matrix(np.ones((3, 2), dtype=np.float32))
    with pytest.raises(RuntimeError, match="device='cpu'"):
        devices.resolve_device("cuda", host)
