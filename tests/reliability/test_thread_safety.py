"""Concurrent calls (hostile-input issue, defect 7): PARC and the linear probe set a process-wide BLAS
thread limit; run from several threads, their restores interleaved and left the process pinned to one
BLAS thread, and NLEEP running alongside changed its value. Now the limit is shared (first in applies
it, last out restores it): concurrent results equal serial ones and the process's BLAS threads are
what they were."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import transferlab as tl
from transferlab.core import cpu_threads


def _blas_threads():
    return sorted((i["internal_api"], i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas")


def _data(seed):
    rng = np.random.default_rng(seed)
    y = np.arange(300) % 4
    return (rng.normal(size=(4, 40))[y] + rng.normal(size=(300, 40))).astype(np.float32), y


CALLS = [("parc", {}), ("linear_probe", {}), ("nleep", {}), ("parc", {"pca": "exact"}), ("linear_probe", {"C": 0.5})]


def test_concurrent_calls_equal_serial_and_restore_blas_threads():
    before = _blas_threads()
    inputs = [_data(i) for i in range(len(CALLS))]
    serial = [tl.score(name, X, y, **kw) for (name, kw), (X, y) in zip(CALLS, inputs)]
    for _ in range(3):
        results = [None] * len(CALLS)
        start = threading.Barrier(len(CALLS))

        def run(i):
            start.wait()
            (name, kw), (X, y) = CALLS[i], inputs[i]
            results[i] = tl.score(name, X, y, **kw)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(CALLS))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert results == serial
        assert _blas_threads() == before


def test_the_shared_limit_nests_and_restores():
    before = _blas_threads()
    with cpu_threads.blas_single_threaded():
        with cpu_threads.blas_single_threaded():
            assert all(n == 1 for _, n in _blas_threads())
        assert all(n == 1 for _, n in _blas_threads())  # an inner exit does not restore under the outer
    assert _blas_threads() == before


def test_an_error_inside_still_restores():
    before = _blas_threads()
    with pytest.raises(RuntimeError):
        with cpu_threads.blas_single_threaded():
            raise RuntimeError("boom")
    assert _blas_threads() == before
