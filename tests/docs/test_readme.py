"""The README's Python example runs as written, and the README names the commands CI runs."""
from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def _block(marker: str) -> str:
    text = README.read_text()
    m = re.search(rf"<!-- {marker} -->\s*```\w*\n(.*?)```\s*<!-- /{marker} -->", text, re.S)
    assert m, f"README.md has no block between <!-- {marker} --> markers"
    return m.group(1)


def test_readme_example_runs(capsys):
    code = _block("example")
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 - the README is ours
    out = capsys.readouterr().out
    # The example prints the ranking and its regret; both must be there and be real numbers.
    assert "regret@1" in out
    assert re.search(r"regret@1[^\n]*\d", out)


def test_readme_has_both_commands():
    assert "python -m pytest" in _block("tests-command")
    assert "transferlab demo" in _block("demo-command")
