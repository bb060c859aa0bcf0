"""Input normalisation and validation: the one place where user arrays become kernel inputs.

Accepted feature / probability inputs: numpy arrays (read-only memory maps included), torch CPU
and CUDA tensors, cupy arrays, anything with ``__dlpack__`` or ``__array__``. Rules (DESIGN.md):

* inputs are never mutated and never copied when they are row-major with unit inner stride
  (row slices and negative row strides included); any other layout is copied once;
* float16 / bfloat16 / float32 / float64 stay as they are (kernels upcast per tile); int and bool
  are converted once to float32; complex, object and string arrays raise ``TypeError``;
* labels are remapped with ``np.unique(..., return_inverse=True)``; the class list is kept.

Every error names the argument and says how to fix the input (BAD_INPUTS.md).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np


# Kernel dtype codes; must match tl::DType in csrc/common/tl_common.h.
DTYPE_CODES = {"float32": 0, "float64": 1, "float16": 2, "bfloat16": 3}


@dataclass(frozen=True)
class Budget:
    """How a score reads its bank: ``rows`` per block (None: no budget, every chunked path keeps its own
    default). A score called with ``max_memory=`` plans one (``core.blocks.plan``) and attaches it to its
    matrix (:meth:`Matrix.with_budget`); every block reader reads ``m.budget``, so the plan travels with
    the data it applies to and ends with the call (a nested score builds its own matrix, unbudgeted)."""

    rows: Optional[int] = None

    def __post_init__(self) -> None:
        if self.rows is not None and (isinstance(self.rows, bool) or int(self.rows) < 1):
            raise ValueError(f"Budget rows must be None or >= 1, got {self.rows!r}")
        if self.rows is not None:
            object.__setattr__(self, "rows", int(self.rows))


UNBUDGETED = Budget()


@dataclass(frozen=True)
class Matrix:
    """A validated 2-D input on one device.

    ``data`` is a numpy array (host; unit inner stride, possibly a read-only memmap, possibly
    holding bfloat16 bit patterns as uint16) or a torch tensor on a CUDA device.
    """

    data: Any
    device: str  # "cpu" or "cuda"
    dtype: str  # one of DTYPE_CODES
    name: str
    budget: Budget = field(default=UNBUDGETED, compare=False)

    def with_budget(self, budget: Budget) -> "Matrix":
        """The same matrix read under ``budget`` (see :class:`Budget`)."""
        return dataclasses.replace(self, budget=budget)

    @property
    def n(self) -> int:
        return int(self.data.shape[0])

    @property
    def d(self) -> int:
        return int(self.data.shape[1])

    @property
    def dtype_code(self) -> int:
        return DTYPE_CODES[self.dtype]

    @property
    def is_bf16(self) -> bool:
        return self.dtype == "bfloat16"

    def rows(self, start: int, stop: int) -> "Matrix":
        """Zero-copy row slice."""
        return dataclasses.replace(self, data=self.data[start:stop])

    def take(self, index: np.ndarray) -> "Matrix":
        """Rows at ``index`` (a copy)."""
        if self.device == "cpu":
            return dataclasses.replace(self, data=np.ascontiguousarray(self.data[index]))
        import torch

        idx = torch.as_tensor(index, device=self.data.device)
        return dataclasses.replace(self, data=self.data.index_select(0, idx).contiguous())

    def to_float64_host(self, start: int = 0, stop: Optional[int] = None) -> np.ndarray:
        """Rows [start, stop) as a float64 numpy array (a copy; for oracles and small tails)."""
        block = self.data[start:stop]
        if self.device == "cuda":
            import torch

            return block.to(torch.float64).cpu().numpy()
        if self.is_bf16:
            bits = np.asarray(block, dtype=np.uint16).astype(np.uint32) << 16
            return bits.view(np.float32).astype(np.float64)
        return np.asarray(block, dtype=np.float64)

    def device_view(self):
        """(pointer, dtype code, rows, cols, row stride in elements) of a CUDA matrix."""
        t = self.data
        return int(t.data_ptr()), self.dtype_code, int(t.shape[0]), int(t.shape[1]), int(t.stride(0))


@dataclass(frozen=True)
class Labels:
    """Labels remapped to ``0..C-1`` (int32 ``codes``); ``classes[c]`` is the original value."""

    codes: np.ndarray
    classes: np.ndarray
    counts: np.ndarray

    @property
    def n_classes(self) -> int:
        return int(self.classes.shape[0])

    @property
    def n(self) -> int:
        return int(self.codes.shape[0])


def _is_torch_tensor(x: Any) -> bool:
    t = type(x)
    return t.__module__.startswith("torch") and hasattr(x, "requires_grad") and hasattr(x, "data_ptr")


def _torch_dtype_name(t) -> str:
    return str(t.dtype).replace("torch.", "")


def _on_cuda_dlpack(x: Any) -> bool:
    """True for non-torch arrays that live on a CUDA device (cupy, jax, ...)."""
    if hasattr(x, "__cuda_array_interface__"):
        return True
    dev = getattr(x, "__dlpack_device__", None)
    if dev is not None:
        try:
            return int(dev()[0]) in (2, 3, 13)  # kDLCUDA, kDLCUDAHost, kDLCUDAManaged
        except Exception:  # pragma: no cover - exotic producers
            return False
    return False


def _check_shape(shape, name: str) -> None:
    ndim = len(shape)
    if ndim == 1:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features), got a 1-D array of shape {tuple(shape)}; "
            f"for a single feature use {name}.reshape(-1, 1)"
        )
    if ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features), got shape {tuple(shape)}; pool spatial "
            f"maps first, e.g. {name}.mean(axis=(2, 3)) for (N, C, H, W) or reshape(N, -1) to flatten"
        )
    if shape[0] == 0:
        raise ValueError(f"empty feature bank: n_samples=0 in {name}")
    if shape[1] == 0:
        raise ValueError(f"empty feature bank: n_features=0 in {name}")


def _host_from_numpy(a: np.ndarray, name: str) -> Matrix:
    kind = a.dtype.kind
    if kind in "cOUSVMm":
        raise TypeError(
            f"{name} has dtype {a.dtype}; transferlab takes real-valued features "
            "(float16/bfloat16/float32/float64, or int/bool which are converted to float32)"
        )
    _check_shape(a.shape, name)
    if kind in "iub":
        # One conversion copy, row-major whatever the input layout (np.asarray(..., dtype) would
        # keep Fortran order, which the kernels refuse); the caller's array is untouched.
        a = np.ascontiguousarray(a, dtype=np.float32)
        return Matrix(a, "cpu", "float32", name)
    if kind != "f" or a.dtype.itemsize not in (2, 4, 8):
        raise TypeError(f"{name} has unsupported floating dtype {a.dtype} (use float16/32/64)")
    if a.dtype.byteorder == ">" or (a.dtype.byteorder == "=" and not np.little_endian):
        a = a.astype(a.dtype.newbyteorder("="))
    dtype = {2: "float16", 4: "float32", 8: "float64"}[a.dtype.itemsize]
    if a.shape[1] > 1 and a.strides[1] != a.dtype.itemsize:
        a = np.ascontiguousarray(a)  # Fortran order or column-strided: copied once
    elif a.strides[0] % a.dtype.itemsize != 0:
        a = np.ascontiguousarray(a)
    return Matrix(a, "cpu", dtype, name)


def _from_torch(t, name: str) -> Matrix:
    if t.requires_grad:
        raise TypeError(f"{name} is a torch tensor that requires grad; pass {name}.detach()")
    if t.is_complex():
        raise TypeError(f"{name} has dtype {t.dtype}; transferlab takes real-valued features")
    _check_shape(tuple(t.shape), name)
    if t.is_floating_point() and _torch_dtype_name(t) not in DTYPE_CODES:
        raise TypeError(f"{name} has unsupported dtype {t.dtype}; use float16, bfloat16, float32 or float64 "
                        f"(e.g. {name}.float())")
    if t.is_conj() or t.is_neg():  # lazy views (x.conj().imag): materialised once, the caller's tensor untouched
        t = t.resolve_conj().resolve_neg()
    if t.device.type == "cpu":
        if t.dtype.__str__() == "torch.bfloat16":
            import torch

            if t.dim() == 2 and t.shape[1] > 1 and t.stride(1) != 1:
                t = t.contiguous()
            bits = t.view(torch.int16).numpy().view(np.uint16)
            return Matrix(bits, "cpu", "bfloat16", name)
        return _host_from_numpy(t.numpy(), name)
    if t.device.type != "cuda":
        raise TypeError(f"{name} is on torch device {t.device}; move it to 'cpu' or 'cuda'")
    import torch

    dtype = _torch_dtype_name(t)
    if dtype not in DTYPE_CODES:
        if t.is_floating_point():
            raise TypeError(f"{name} has unsupported dtype {t.dtype}")
        t = t.to(torch.float32)
        dtype = "float32"
    if t.shape[1] > 1 and t.stride(1) != 1:
        t = t.contiguous()
    return Matrix(t, "cuda", dtype, name)


def as_matrix(x: Any, name: str = "features") -> Matrix:
    """Normalise a 2-D feature / probability input without mutating or (when avoidable) copying it."""
    if isinstance(x, Matrix):
        return x
    if isinstance(x, np.ndarray):
        return _host_from_numpy(x, name)
    if _is_torch_tensor(x):
        return _from_torch(x, name)
    if _on_cuda_dlpack(x):
        try:
            import torch
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise TypeError(f"{name} lives on a CUDA device; transferlab's GPU path needs torch installed") from e
        return _from_torch(torch.from_dlpack(x), name)
    if hasattr(x, "__dlpack__") and not hasattr(x, "__array__"):
        return _host_from_numpy(np.from_dlpack(x), name)
    try:
        a = np.asarray(x)
    except Exception as e:
        raise TypeError(f"{name} of type {type(x).__name__} cannot be read as an array") from e
    return _host_from_numpy(a, name)


def as_labels(y: Any, n_expected: Optional[int] = None, name: str = "labels", *, min_classes: int = 2) -> Labels:
    """Remap labels to ``0..C-1`` with ``np.unique``; validate length, shape and kind."""
    if _is_torch_tensor(y):
        y = y.detach().cpu().numpy()
    elif _on_cuda_dlpack(y):
        import torch

        y = torch.from_dlpack(y).cpu().numpy()
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D (n_samples,) or (n_samples, 1), got shape {y.shape}"
            + (f" (features have n_samples={n_expected})" if n_expected is not None else "")
        )
    if n_expected is not None and y.shape[0] != n_expected:
        raise ValueError(f"{name} has length {y.shape[0]} but the features have n_samples={n_expected}")
    if y.shape[0] == 0:
        raise ValueError(f"empty {name}: n_samples=0")
    kind = y.dtype.kind
    if kind == "c":
        raise TypeError(f"{name} are complex; class labels must be integers or strings")
    if kind == "f":
        if not np.all(np.isfinite(y)):
            raise ValueError(f"{name} contain NaN or inf")
        if not np.all(y == np.round(y)):
            raise ValueError(f"{name} look continuous (non-integral floats); class labels must be discrete "
                             "(for float targets pass task='regression')")
    try:
        classes, codes, counts = np.unique(y, return_inverse=True, return_counts=True)
    except TypeError as e:
        raise TypeError(f"{name} mix types that cannot be sorted ({e}); use one label type") from e
    if classes.shape[0] < min_classes:
        raise ValueError(f"need at least {min_classes} classes, got {classes.shape[0]}")
    return Labels(codes.astype(np.int32).reshape(-1), classes, counts.astype(np.int64))


def check_labels_omit(labels: Labels, keep: Optional[np.ndarray], min_classes: int = 2) -> Labels:
    """Labels restricted to the kept rows (after nan_policy='omit'), remapped again."""
    if keep is None:
        return labels
    return as_labels(labels.classes[labels.codes[keep]], name="labels", min_classes=min_classes)


# ---------------------------------------------------------------------------- targets beyond classes

TASKS = ("classification", "regression", "multilabel")


@dataclass(frozen=True)
class Targets:
    """Regression targets or multilabel indicators as float64 ``values`` (N, T); ``task`` says which.

    ``n_classes`` is the number of target columns, so that budget models written for class sums
    (T x D) count target sums the same way."""

    values: np.ndarray
    task: str

    @property
    def n(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_targets(self) -> int:
        return int(self.values.shape[1])

    @property
    def n_classes(self) -> int:
        return self.n_targets

    def take(self, index: np.ndarray) -> "Targets":
        """Rows at ``index`` (checked again: a multilabel column may lose all its positives)."""
        return as_targets(self.values[index], self.task, name="labels")


def check_task(task: Any) -> str:
    """``task`` as one of :data:`TASKS`, else ValueError naming the choices."""
    if not isinstance(task, str) or task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    return task


def as_targets(y: Any, task: str, n_expected: Optional[int] = None, name: str = "labels") -> Targets:
    """Validate regression targets ((N,) or (N, T) real, finite) or multilabel indicators ((N, L) of
    0/1, each column with at least one 0 and one 1) into float64 (N, T); (N,) is read as (N, 1).
    The caller's array is copied, never modified."""
    if check_task(task) == "classification":
        raise ValueError("as_targets is for task='regression' or 'multilabel'; class labels go through as_labels")
    if _is_torch_tensor(y):
        y = y.detach().cpu().numpy()
    elif _on_cuda_dlpack(y):
        import torch

        y = torch.from_dlpack(y).cpu().numpy()
    y = np.asarray(y)
    if y.dtype.kind not in "iufb":
        raise TypeError(f"{name} for task={task!r} must be real numbers, got dtype {y.dtype}")
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2:
        raise ValueError(f"{name} for task={task!r} must be (n_samples,) or (n_samples, n_targets), got shape {y.shape}")
    if n_expected is not None and y.shape[0] != n_expected:
        raise ValueError(f"{name} has length {y.shape[0]} but the features have n_samples={n_expected}")
    if y.shape[0] == 0 or y.shape[1] == 0:
        raise ValueError(f"empty {name}: shape {y.shape}")
    v = np.array(y, dtype=np.float64, order="C")  # a copy: the caller's array is never touched
    bad = ~np.isfinite(v).all(axis=1)
    if bad.any():
        raise ValueError(f"{name} contain NaN or inf in {int(bad.sum())} row(s) (first at row "
                         f"{int(np.flatnonzero(bad)[0])}); targets must be finite")
    if task == "multilabel":
        if not np.all((v == 0.0) | (v == 1.0)):
            raise ValueError(f"{name} for task='multilabel' must be a 0/1 indicator matrix (n_samples, n_labels)")
        pos = v.sum(axis=0)
        one_sided = np.flatnonzero((pos == 0) | (pos == v.shape[0]))
        if one_sided.size:
            raise ValueError(f"{name} for task='multilabel': column {int(one_sided[0])} holds only "
                             f"{'zeros' if pos[one_sided[0]] == 0 else 'ones'} ({one_sided.size} such column(s)); "
                             "every label needs at least one positive and one negative sample")
    return Targets(v, task)
