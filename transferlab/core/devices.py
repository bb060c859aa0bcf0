"""Device dispatch: the one place that resolves where a score runs and moves a matrix there.

``device="auto"`` runs where the data lives (CUDA inputs on the GPU, everything else on the CPU);
``"cpu"`` copies CUDA inputs to the host; ``"cuda"`` copies host inputs to the current CUDA device;
``"reference"`` runs the slow float64 numpy oracle of ``transferlab.reference`` (on the host).
Scores call :func:`resolve_device` once, then :func:`place`.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

from transferlab import kernels
from transferlab.core.arrays import Matrix, as_matrix

DEVICES = ("auto", "cpu", "cuda", "reference")


def on_cuda(device: str) -> bool:
    """True when a resolved device (or a Matrix's ``.device``) is the GPU."""
    return device == "cuda"


def is_reference(device: str) -> bool:
    """True when a resolved device asks for the float64 reference oracle."""
    return device == "reference"


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
        kernels.require_cuda()
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
        return Matrix(bits, "cpu", "bfloat16", m.name, m.budget)
    return Matrix(t.contiguous().cpu().numpy(), "cpu", m.dtype, m.name, m.budget)


def to_cuda(m: Matrix) -> Matrix:
    """The matrix on the current CUDA device (a copy for host inputs; without a CUDA build or device the
    RuntimeError of :func:`transferlab.kernels.require_cuda`, not torch's own)."""
    if m.device == "cuda":
        return m
    kernels.require_cuda()
    import torch

    if m.dtype == "bfloat16":
        t = torch.from_numpy(m.data.view("int16")).view(torch.bfloat16)
    else:
        t = torch.from_numpy(m.data)
    return Matrix(t.to("cuda").contiguous(), "cuda", m.dtype, m.name, m.budget)


def to_cuda_array(x, name: str = "features"):
    """Any accepted 2-D input (numpy, memmap, torch) as a tensor on the current CUDA device: a CUDA tensor
    as it is, a host one copied once (for callers that hand one bank to several scores)."""
    return to_cuda(as_matrix(x, name)).data


def place(m: Matrix, device: str) -> Matrix:
    """``m`` on the resolved device ("reference" computes on the host)."""
    return to_cuda(m) if device == "cuda" else to_host(m)


@contextlib.contextmanager
def cuda_launch(t, synchronize: bool = False) -> Iterator[int]:
    """The one way a kernel of ``transferlab._cuda`` is queued: on the current stream of tensor ``t``'s
    device, with that device current. Yields the stream handle to pass to the kernel; with
    ``synchronize`` waits for the stream when the block ends (before results are read on the host).
    A CPU tensor yields 0 (the tests' pointer-level stand-in of ``_cuda`` runs on the host)."""
    if not getattr(t, "is_cuda", False):
        yield 0
        return
    import torch

    with torch.cuda.device(t.device):
        stream = torch.cuda.current_stream(t.device)
        yield int(stream.cuda_stream)
        if synchronize:
            stream.synchronize()


def data_ptr(t) -> int:
    """A tensor's device pointer for a kernel argument (0 for an absent optional tensor)."""
    return 0 if t is None else int(t.data_ptr())
