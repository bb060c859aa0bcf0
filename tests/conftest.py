"""Shared fixtures: the `device` fixture, the tolerance table, input hashing."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from transferlab import kernels

# One table of tolerances for the whole suite (relative unless stated).
TOL = {
    "oracle_rel": 1e-6,  # every score vs its float64 oracle
    "published_rel": 1e-6,  # vs the published algorithm re-implemented from SCORES.md
}


def _cuda_ready() -> bool:
    try:
        return kernels.cuda_device_count() > 0
    except Exception:
        return False


CUDA_READY = _cuda_ready()


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="no CUDA device (transferlab._cuda built: %s)" % (kernels.cuda_module() is not None))
    for item in items:
        # The marker, not the keywords: pytest puts folder names (tests/cuda) in the keywords too.
        if item.get_closest_marker("cuda") is not None and not CUDA_READY:
            item.add_marker(skip)


@pytest.fixture(params=["reference", "cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def device(request):
    return request.param


def digest(*arrays) -> str:
    """SHA-256 of the bytes (and shapes/dtypes/strides) of arrays: proves inputs were not mutated."""
    h = hashlib.sha256()
    for a in arrays:
        if hasattr(a, "detach"):
            a = a.detach().cpu().numpy() if str(a.dtype) != "torch.bfloat16" else a.detach().cpu().float().numpy()
        a = np.asarray(a)
        h.update(str((a.shape, a.dtype.str, a.strides)).encode())
        h.update(np.ascontiguousarray(a).tobytes() if a.dtype != object else repr(a.tolist()).encode())
    return h.hexdigest()


def class_data(n=600, d=32, c=5, sep=3.0, seed=0, dtype=np.float32):
    """Gaussian blobs with class structure (well separated enough to be interesting)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(c, d)) * sep
    y = rng.integers(0, c, size=n)
    X = centers[y] + rng.normal(size=(n, d))
    return X.astype(dtype), y


# Hypothesis profiles of the reliability fuzzers (tests/reliability/test_fuzz_bindings.py), which
# apply the one named by HYPOTHESIS_PROFILE explicitly (other modules keep their own settings):
#   ci (default): derandomised -- the same examples every run, CI never flakes on a new draw --,
#       100 examples per property, no deadline (shared CI machines are slow);
#   local: HYPOTHESIS_PROFILE=local, 2,000 random examples per property; run it after touching
#       _arrays.py, a binding or a kernel.
from hypothesis import HealthCheck, settings as _hyp_settings  # noqa: E402

_HYP_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                   print_blob=True)
_hyp_settings.register_profile("ci", max_examples=100, derandomize=True, **_HYP_COMMON)
_hyp_settings.register_profile("local", max_examples=2000, derandomize=False, **_HYP_COMMON)
