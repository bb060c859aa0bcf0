"""The shape of the house: the import graph of ``transferlab`` read from its sources (imports inside
functions included), checked against the layering of DESIGN (bench/house_metrics.py measures it).

    kernels/   the only modules importing the compiled _C / _cuda
    core/      arrays, inputs, devices, blocks, linear algebra: imports only core/ and kernels/
    scores/    one package per score: never the CLI, the demo, distributed, evaluate or select
    reference/ the float64 oracles: numpy, scipy, scikit-learn and the standard library only
"""
from __future__ import annotations

import ast
import importlib.util
import os
import sys

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
_spec = importlib.util.spec_from_file_location("house_metrics", os.path.join(ROOT, "bench", "house_metrics.py"))
house = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(house)

EDGES = house.imports(ROOT)
UPPER = ("transferlab.cli", "transferlab._cli_pool", "transferlab.demo", "transferlab.distributed",
         "transferlab.evaluate", "transferlab.select")
EXTENSIONS = tuple(f"transferlab.{e}" for e in house.EXTENSIONS)


def _under(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_the_import_graph_is_read():
    # The guard is only as good as the graph: known edges must be there.
    pairs = {(e.source, e.target) for e in EDGES}
    assert ("transferlab.scores.sfda.stream", "transferlab.scores.sfda.one_shot") in pairs
    assert ("transferlab.kernels", "transferlab._C") in pairs
    assert any(e.source == "transferlab.scoring" and e.target == "transferlab._dask" and not e.top_level
               for e in EDGES)  # imports inside functions are seen
    assert len(house.package_modules(ROOT)) > 60


def test_no_import_cycles():
    found = house.cycles(house.graph(EDGES))
    assert found == [], f"import cycles among transferlab modules: {found}"


def test_the_cycle_finder_finds_cycles():
    assert house.cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert house.cycles({"a": {"b"}, "b": set()}) == []


def test_lower_layers_never_import_the_upper_ones():
    bad = [e for e in EDGES
           if _under(e.source, "transferlab.core", "transferlab.kernels", "transferlab.scores")
           and _under(e.target, *UPPER)]
    assert bad == [], "\n".join(f"{e.source}:{e.line} imports {e.target}" for e in bad)


def test_core_and_kernels_sit_below_the_scores():
    bad = [e for e in EDGES
           if _under(e.source, "transferlab.core", "transferlab.kernels")
           and not _under(e.target, "transferlab.core", "transferlab.kernels", "transferlab._version", *EXTENSIONS)]
    assert bad == [], "\n".join(f"{e.source}:{e.line} imports {e.target}" for e in bad)


def test_only_kernels_import_the_compiled_modules():
    bad = [e for e in EDGES if e.target in EXTENSIONS and not _under(e.source, "transferlab.kernels")]
    assert bad == [], "\n".join(f"{e.source}:{e.line} imports {e.target}" for e in bad)
    testing_module = [e for e in EDGES if e.target == "transferlab._cuda_logic_testing"]
    assert testing_module == []  # the test-only bindings are never imported by the library


def test_reference_imports_only_numpy_scipy_sklearn():
    allowed = {"numpy", "scipy", "sklearn", "__future__"} | set(sys.stdlib_module_names)
    ref = os.path.join(ROOT, "transferlab", "reference")
    bad = []
    for f in sorted(os.listdir(ref)):
        if not f.endswith(".py"):
            continue
        tree = ast.parse(house._read(os.path.join(ref, f)))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = ["." if node.level else (node.module or "")]
            bad += [f"{f}:{node.lineno} imports {n}" for n in names if n.split(".")[0] not in allowed]
    assert bad == [], "\n".join(bad)


@pytest.mark.parametrize("bad_source", [
    "from transferlab import select\n",
    "def f():\n    from transferlab.evaluate import Report\n",
    "import transferlab.demo\n",
])
def test_the_guard_catches_an_upward_import(tmp_path, bad_source):
    """A score module that imports upward (even lazily) is seen as an edge to the upper layer."""
    pkg = tmp_path / "transferlab"
    (pkg / "scores").mkdir(parents=True)
    for mod in ("__init__.py", "select.py", "demo.py", "scores/__init__.py"):
        (pkg / mod).write_text("")
    (pkg / "evaluate").mkdir()
    (pkg / "evaluate" / "__init__.py").write_text("")
    (pkg / "scores" / "bad.py").write_text(bad_source)
    edges = house.imports(str(tmp_path))
    assert [e for e in edges if e.source == "transferlab.scores.bad" and _under(e.target, *UPPER)]
