"""The compiled kernels: the only place in transferlab that imports ``_C`` (CPU, always built) and
``_cuda`` (built with ``TRANSFERLAB_CUDA=ON``).

Every other module reaches the extensions through :func:`cpu_module` / :func:`require_cuda` here, or
through the family wrappers beside this file, named after their ``csrc/`` folders (``lda``: class
sums, Gram matrices and projections). ``_cuda`` is imported lazily, mamba's pattern: a build without
it, or a machine without a GPU, costs nothing until a CUDA path is asked for.
"""
from __future__ import annotations

__all__ = ["cpu_module", "cuda_module", "cuda_device_count", "require_cuda"]


def cpu_module():
    """The compiled CPU extension ``transferlab._C``."""
    try:
        from transferlab import _C
    except ImportError as e:  # pragma: no cover - only on a broken install
        raise ImportError(
            "transferlab._C is not built; install with `pip install .` (or `pip install -e .`) "
            "from the source tree"
        ) from e
    return _C


def cuda_module():
    """``transferlab._cuda`` if it was built, else None."""
    try:
        from transferlab import _cuda
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
