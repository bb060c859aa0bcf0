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


def test_readme_evaluate_command_prints_the_rows_it_shows(tmp_path):
    """The README's evaluate example, run from the repository root on the tables a clone has (the
    plots go to a scratch folder), prints every table row the README shows."""
    import shlex
    import subprocess
    import sys

    command = _block("evaluate-command").replace("\\\n", " ").replace("--plot out/", f"--plot {tmp_path}")
    argv = shlex.split(command)
    assert argv[0] == "transferlab"
    out = subprocess.run([sys.executable, "-m", "transferlab", *argv[1:]], capture_output=True, text=True,
                         cwd=README.parent, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    shown = re.search(r"<!-- /evaluate-command -->.*?```\n(.*?)```", README.read_text(), flags=re.S).group(1)
    rows = [line for line in shown.splitlines() if line.startswith("| ") and not line.startswith("| subject")]
    assert len(rows) >= 5
    for row in rows:
        assert row in out.stdout.splitlines(), row
    assert any(p.suffix == ".png" for p in tmp_path.iterdir())
