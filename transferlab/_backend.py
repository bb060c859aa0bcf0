"""Device dispatch: the one place that picks the CPU kernels, the CUDA kernels or the float64
reference oracles, and that owns the thread count.

``device="auto"`` runs where the data lives (CUDA inputs on the GPU, everything else on the CPU);
``"cpu"`` copies CUDA inputs to the host; ``"cuda"`` copies host inputs to the current CUDA device;
``"reference"`` runs the slow float64 numpy oracle of ``transferlab.reference``.
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator, Optional

from ._arrays import Matrix

DEVICES = ("auto", "cpu", "cuda", "reference")

_num_threads: Optional[int] = None


def cpu_module():
    """The compiled CPU extension ``transferlab._C``."""
    try:
        from . import _C
    except ImportError as e:  # pragma: no cover - only on a broken install
        raise ImportError(
            "transferlab._C is not built; install with `pip install .` (or `pip install -e .`) "
            "from the source tree"
        ) from e
    return _C


def cuda_module():
    """``transferlab._cuda`` if it was built, else None (imported lazily, mamba's pattern)."""
    try:
        from . import _cuda
    except ImportError:
        return None
    return _cuda


def cuda_device_count() -> int:
    mod = cuda_module()
    return 0 if mod is None else int(mod.device_count())


def require_cuda() -> object:
    """The CUDA module, or a RuntimeError that says how to get one."""
    mod = cuda_module()
    if mod is None:
        raise RuntimeError(
            "transferlab was built without CUDA: rebuild with TRANSFERLAB_CUDA=ON "
            "(`TRANSFERLAB_CUDA=ON pip install .`) on a machine with nvcc, or pass device='cpu' "
            "to compute on the host"
        )
    if mod.device_count() == 0:
        raise RuntimeError("no CUDA device is visible; pass device='cpu' (or 'auto')")
    try:
        import torch  # noqa: F401
    except ImportError as e:  # pragma: no cover
        raise RuntimeError("the CUDA path needs torch installed (it allocates device memory)") from e
    return mod


def resolve_device(device: str, *inputs: Matrix) -> str:
    """Pick "cpu", "cuda" or "reference" for a call whose array inputs are ``inputs``."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    where = {m.device for m in inputs}
    if len(where) > 1:
        raise RuntimeError(
            "inputs live on two devices (cpu and cuda); move them to one device first, "
            "e.g. tensor.cpu() or tensor.cuda()"
        )
    if device == "reference":
        return "reference"
    if device == "auto":
        return "cuda" if "cuda" in where else "cpu"
    if device == "cuda":
        require_cuda()
    if device == "cpu" and "cuda" in where and cuda_module() is None:
        pass  # copying to the host needs no CUDA build
    return device


def to_host(m: Matrix) -> Matrix:
    """The matrix on the host (a copy for CUDA inputs, the same object otherwise)."""
    if m.device == "cpu":
        return m
    import numpy as np
    import torch

    t = m.data
    if m.dtype == "bfloat16":
        bits = t.contiguous().view(torch.int16).cpu().numpy().view(np.uint16)
        return Matrix(bits, "cpu", "bfloat16", m.name)
    return Matrix(t.contiguous().cpu().numpy(), "cpu", m.dtype, m.name)


def to_cuda(m: Matrix) -> Matrix:
    """The matrix on the current CUDA device (a copy for host inputs; without a CUDA build or device the
    RuntimeError of :func:`require_cuda`, not torch's own)."""
    if m.device == "cuda":
        return m
    require_cuda()
    import torch

    if m.dtype == "bfloat16":
        t = torch.from_numpy(m.data.view("int16")).view(torch.bfloat16)
    else:
        t = torch.from_numpy(m.data)
    return Matrix(t.to("cuda").contiguous(), "cuda", m.dtype, m.name)


def to_cuda_array(x, name: str = "features"):
    """Any accepted 2-D input (numpy, memmap, torch) as a tensor on the current CUDA device: a CUDA tensor
    as it is, a host one copied once (for callers that hand one bank to several scores)."""
    from ._arrays import as_matrix

    return to_cuda(as_matrix(x, name)).data


def place(m: Matrix, device: str) -> Matrix:
    """``m`` on the resolved device ("reference" computes on the host)."""
    return to_cuda(m) if device == "cuda" else to_host(m)


def num_threads() -> int:
    """Thread count passed to CPU kernels (0 = OpenMP's default)."""
    if _num_threads is not None:
        return _num_threads
    env = os.environ.get("TRANSFERLAB_NUM_THREADS")
    if env:
        try:
            value = int(env)
        except ValueError:
            raise ValueError(f"TRANSFERLAB_NUM_THREADS must be an integer, got {env!r}") from None
        if value < 0:
            raise ValueError(f"TRANSFERLAB_NUM_THREADS must be >= 0, got {value}")
        return value
    return 0


def effective_threads() -> int:
    """The thread count the kernels will actually use."""
    n = num_threads()
    return n if n > 0 else int(cpu_module().max_threads())


def set_num_threads(n: Optional[int]) -> None:
    """Set the CPU kernels' thread count for this process (None or 0: OpenMP's default)."""
    global _num_threads
    if n is not None and (not isinstance(n, int) or n < 0):
        raise ValueError(f"num_threads must be a non-negative int or None, got {n!r}")
    _num_threads = n


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """Temporarily run the CPU kernels on ``n`` threads."""
    global _num_threads
    old = _num_threads
    set_num_threads(n)
    try:
        yield
    finally:
        _num_threads = old
