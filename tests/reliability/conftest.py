"""Hypothesis profiles of the reliability fuzzers (tests/reliability/test_fuzz_bindings.py).

* ``ci`` (default): derandomised (the same examples on every run, so CI never flakes on a new
  random draw), 100 examples per property, no deadline (shared CI machines are slow).
* ``local``: HYPOTHESIS_PROFILE=local, 2,000 random examples per property; run it before a release
  and after touching _arrays.py, a binding or a kernel.

The fuzzers apply the selected profile explicitly (``settings(settings.get_profile(PROFILE))``),
so collecting this directory changes no other module's hypothesis settings.
"""
from __future__ import annotations

from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
               print_blob=True)
settings.register_profile("ci", max_examples=100, derandomize=True, **_COMMON)
settings.register_profile("local", max_examples=2000, derandomize=False, **_COMMON)

