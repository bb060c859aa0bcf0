"""tests/cuda: undo the root conftest's device skip for tests that are not marked `cuda`.

The root hook skips items whose *keywords* contain "cuda", and pytest puts directory and file names
in the keywords, so every test in this folder would be skipped without a GPU, the CPU logic tests
included. Only the `cuda` marker should decide (the lead may fold this into tests/conftest.py).
"""
import importlib.util
import os

import pytest

# This file shadows tests/conftest.py for `from conftest import ...` in this folder: re-export its helpers.
_spec = importlib.util.spec_from_file_location(
    "_tl_root_conftest", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conftest.py")
)
_root = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_root)
TOL, class_data, digest, CUDA_READY = _root.TOL, _root.class_data, _root.digest, _root.CUDA_READY


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("cuda") is None:
            item.own_markers[:] = [
                m for m in item.own_markers
                if not (m.name == "skip" and str(m.kwargs.get("reason", "")).startswith("no CUDA device"))
            ]
