"""The kNN package's layering: every kNN module imports only modules above it (no cycle, not even through
function-level imports), nothing in it imports ``transferlab.distributed``, and the re-exports stay put."""
from __future__ import annotations

import ast
from pathlib import Path

import transferlab
from transferlab.scores import knn

PACKAGE = Path(knn.__file__).resolve().parent
ORDER = ["rules", "partial", "out_of_core", "credit", "targets", "one_shot", "accuracy", "stream"]


def _imports(path: Path):
    """(module imported, line, at module level?) for every import statement of a file."""
    tree = ast.parse(path.read_text(), str(path))
    top = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            yield names, node.lineno, id(node) in top
        elif isinstance(node, ast.Import):
            yield [a.name for a in node.names], node.lineno, id(node) in top


def test_every_module_is_listed_and_documented():
    found = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    assert found == sorted(ORDER)
    for name in ORDER:
        doc = ast.get_docstring(ast.parse((PACKAGE / f"{name}.py").read_text()))
        assert doc and "Contract:" in doc, f"{name}.py: its docstring states no contract"


def test_knn_modules_import_only_modules_above_them():
    for pos, name in enumerate(ORDER):
        allowed = {f"transferlab.scores.knn.{m}" for m in ORDER[:pos]}
        for names, line, at_top in _imports(PACKAGE / f"{name}.py"):
            for mod in names:
                assert not mod.startswith("transferlab.distributed"), f"{name}.py:{line} imports {mod}"
                if mod.startswith("transferlab.scores.knn.") and mod.count(".") == 3:
                    assert mod in allowed, f"{name}.py:{line} imports {mod} (allowed: {sorted(allowed)})"
                    assert at_top, f"{name}.py:{line}: a function-level import of {mod}"
                if mod == "transferlab.scores.knn":
                    raise AssertionError(f"{name}.py:{line} imports the package itself")


def test_public_paths():
    from transferlab import scores
    from transferlab.scores import streaming
    from transferlab.scores.knn.stream import KnnLooStream

    assert scores.knn_loo is transferlab.knn_loo is knn.knn_loo
    assert streaming.KnnLooStream is KnnLooStream is knn.KnnLooStream
    assert KnnLooStream.__module__ == "transferlab.scores.knn.stream"  # pickles of states made before stay loadable
    assert scores.KnnLooResult is knn.KnnLooResult
