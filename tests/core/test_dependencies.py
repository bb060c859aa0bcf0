"""Every third-party module the package imports is a declared runtime dependency, or one of the
optional ones the code imports lazily behind a clear message (the demo once failed from a fresh
install because PARC's default PCA needs scikit-learn, which only the test extra installed)."""
import ast
import pathlib
import re
import sys

import pytest

import transferlab

ROOT = pathlib.Path(transferlab.__file__).parent
PYPROJECT = ROOT.parent / "pyproject.toml"
DIST_OF = {"sklearn": "scikit-learn"}  # import name -> distribution name, where they differ
# Imported lazily, only on the paths that need them (a GPU, plots, a cluster, a progress bar, rank_models'
# Hugging Face models and its Ranking.to_frame).
OPTIONAL = {"torch", "matplotlib", "dask", "distributed", "tqdm", "cupy", "transformers", "huggingface_hub", "pandas"}


def _imported_top_level():
    mods = set()
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                mods.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods.add(node.module.split(".")[0])
    return {m for m in mods if m not in sys.stdlib_module_names and m != "transferlab"}


def _runtime_dependencies():
    text = PYPROJECT.read_text()
    block = re.search(r"^dependencies\s*=\s*\[(.*?)\]", text, flags=re.S | re.M).group(1)
    return {re.split(r"[<>=!~ ;\[]", d.strip().strip('"'))[0].lower() for d in block.split(",") if d.strip()}


@pytest.mark.skipif(not PYPROJECT.exists(), reason="needs the source checkout (an editable install)")
def test_every_import_is_a_declared_or_optional_dependency():
    deps = _runtime_dependencies()
    missing = sorted(m for m in _imported_top_level() - OPTIONAL if DIST_OF.get(m, m).lower() not in deps)
    assert not missing, f"imported but not in pyproject's dependencies: {missing}"
