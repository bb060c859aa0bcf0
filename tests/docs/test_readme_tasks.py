"""The README's regression example runs as written and prints the numbers the README shows."""
from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_regression_example_prints_what_it_shows(capsys):
    text = README.read_text()
    m = re.search(r"<!-- regression-example -->\s*```python\n(.*?)```\s*<!-- /regression-example -->\s*```\n(.*?)```",
                  text, re.S)
    assert m, "README.md has no regression example between <!-- regression-example --> markers"
    exec(compile(m.group(1), str(README), "exec"), {})  # noqa: S102 - the README is ours
    assert capsys.readouterr().out == m.group(2)
