"""Benchmark plumbing: collect per-benchmark figures and print the ratio table at the end."""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

_RESULTS: dict = {}


def pytest_collect_file(file_path, parent):
    # bench_*.py are not test_*.py: collect them when named or when the directory is given.
    # (Files named on the command line are collected by pytest itself.)
    if file_path.suffix == ".py" and file_path.name.startswith("bench_") and not parent.session.isinitpath(file_path):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


@pytest.fixture(scope="session")
def knn_results():
    return _RESULTS


def pytest_terminal_summary(terminalreporter):
    if not _RESULTS:
        return
    tr = terminalreporter
    tr.section("knn_loo vs baselines (min time over rounds; ratio = baseline / transferlab)")
    for d in sorted(k for k in _RESULTS if isinstance(k, int)):
        row = _RESULTS[d]
        base = row.get("transferlab", {}).get("min_s")
        parts = []
        for lib in ("transferlab", "faiss", "sklearn", "numpy"):
            if lib in row:
                t = row[lib]["min_s"]
                ratio = f" ({t / base:.2f}x)" if base else ""
                parts.append(f"{lib} {t:.3f}s{ratio}")
        tr.write_line(f"D={d}: " + ", ".join(parts))
    mem = _RESULTS.get("memory")
    if mem:
        parts = [f"{lib} +{v['delta_mb']:.0f} MB" for lib, v in mem.items() if lib != "D"]
        data_mb = next((v["data_mb"] for lib, v in mem.items() if lib != "D"), 0.0)
        tr.write_line(f"peak RSS over the loaded data (D={mem['D']}, data {data_mb:.0f} MB): " + ", ".join(parts))
