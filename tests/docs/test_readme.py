"""The README's Python example runs as written, and the README names the commands CI runs."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

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


def test_readme_rank_models_example_prints_the_ranking_it_shows(capsys):
    """The "Rank your own models" example runs offline (tiny in-code MLPs, scikit-learn's digits) and prints
    the ranking the README shows: every row's model, rank and values (the seconds vary from run to run)."""
    torch = pytest.importorskip("torch")
    code = _block("rank-models-example")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls: one thread is faster (much faster on a loaded shared machine)
    try:
        exec(compile(code, str(README), "exec"), {})  # noqa: S102 - the README is ours
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    shown = re.search(r"<!-- /rank-models-example -->\s*```\n(.*?)```", README.read_text(), flags=re.S).group(1)
    assert out.splitlines()[0] == shown.splitlines()[0] and out.splitlines()[-1] == shown.splitlines()[-1]
    rows = [line for line in shown.splitlines() if line.startswith("| ") and not line.startswith("| model")]
    assert len(rows) == 3
    for row in rows:
        first_cells = row.split("|")[1:5]
        assert any(line.split("|")[1:5] == first_cells for line in out.splitlines()), row


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
