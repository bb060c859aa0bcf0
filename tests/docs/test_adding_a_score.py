"""docs/adding_a_score.md works as written: its files are written from the page into a scratch tree,
imported as real submodules of ``transferlab.scores`` / ``transferlab.reference`` (their package
``__path__`` extended for the test), and run through ``check_score`` and ``check_stream``; the page's
own test file then runs against them. The page lists every file the example touches: at most six."""
from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import transferlab
import transferlab.reference
import transferlab.scores
from transferlab.scores import registry, streaming
from transferlab.testing import check_score, check_stream

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs" / "adding_a_score.md").read_text(encoding="utf-8")
FILES = dict(re.findall(r"<!-- file: (\S+) -->\n```python\n(.*?)```", PAGE, flags=re.S))
LINES = dict(re.findall(r"<!-- file-line: (\S+) -->\n```python\n(.*?)```", PAGE, flags=re.S))


@pytest.fixture(scope="module")
def fisher(tmp_path_factory):
    """The page's score, imported from a scratch copy of its files; unregistered afterwards."""
    tree = tmp_path_factory.mktemp("added_score")
    for rel, text in FILES.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(text, encoding="utf-8")
    paths = [(transferlab.scores, tree / "transferlab" / "scores"), (transferlab.reference, tree / "transferlab" / "reference")]
    for pkg, extra in paths:
        pkg.__path__.append(str(extra))
    try:
        for line in LINES.values():  # the one import line the page adds to transferlab/scores/__init__.py
            exec(line, {})
        yield importlib.import_module("transferlab.scores.fisher_ratio"), tree
    finally:
        registry.unregister("fisher_ratio")
        for pkg, extra in paths:
            pkg.__path__.remove(str(extra))
        for name in [m for m in sys.modules if "fisher_ratio" in m]:
            del sys.modules[name]


def test_the_page_lists_at_most_six_files_and_writes_each_of_them():
    table = re.search(r"## Every file touched\n\n(.*?)\n\n", PAGE, flags=re.S).group(1)
    listed = re.findall(r"^\| `([^`]+)` \|", table, flags=re.M)
    assert len(listed) <= 6
    assert sorted(listed) == sorted(list(FILES) + list(LINES))
    assert all(not (ROOT / f).exists() for f in FILES)  # an example, not shipped


def test_the_example_is_registered_everywhere(fisher):
    pkg, _ = fisher
    assert "fisher_ratio" in transferlab.available()
    assert "fisher_ratio" in streaming.available_streams()
    assert streaming.FisherRatioStream is pkg.FisherRatioStream
    spec = registry.get("fisher_ratio")
    assert spec.fn is pkg.fisher_ratio and spec.reference.__module__ == "transferlab.reference.fisher_ratio"


def test_the_example_passes_check_score_and_check_stream(fisher):
    report = check_score("fisher_ratio")
    assert report.ok and len(report.passed) > 20
    stream_report = check_stream("fisher_ratio", rtol=1e-9)
    assert stream_report.ok and {r.check for r in stream_report.passed} >= {"chunk_sizes", "merge_orders", "memmap"}


def test_the_example_agrees_with_its_oracle_and_the_formula(fisher):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, size=300)
    X = rng.normal(size=(3, 5))[y] * 2.0 + rng.normal(size=(300, 5))
    between = sum((y == c).sum() * ((X[y == c].mean(0) - X.mean(0)) ** 2).sum() for c in range(3))
    within = sum(((X[y == c] - X[y == c].mean(0)) ** 2).sum() for c in range(3))
    assert transferlab.score("fisher_ratio", X, y) == pytest.approx(between / within, rel=1e-12)
    # A budget changes the blocks Chan's merge combines: equal to rounding, not bitwise (unlike the kernels' sums).
    assert transferlab.score("fisher_ratio", X, y, max_memory="20KB") == pytest.approx(
        transferlab.score("fisher_ratio", X, y), rel=1e-13)
    with pytest.raises(ValueError, match="single point"):
        transferlab.score("fisher_ratio", np.array([[0.0], [0.0], [1.0], [1.0]]), [0, 0, 1, 1])


def test_the_pages_own_test_file_passes(fisher):
    _, tree = fisher
    test_file = tree / "tests" / "scores" / "test_fisher_ratio.py"
    namespace = {"__name__": "page_tests"}
    exec(compile(test_file.read_text(), str(test_file), "exec"), namespace)
    tests = [f for n, f in namespace.items() if n.startswith("test_")]
    assert len(tests) == 2
    for t in tests:
        t()
