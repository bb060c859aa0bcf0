"""The README's `transferlab race` example runs from a fresh clone as written (the arrays it makes, then the
command) and prints the table, the choice and the guarantee the README shows (the seconds vary by run)."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_race_example_prints_what_it_shows(tmp_path, monkeypatch):
    text = README.read_text()
    m = re.search(r"<!-- race-example -->\s*```python\n(.*?)```\s*```bash\n(.*?)```\s*<!-- /race-example -->\s*"
                  r"```\n(.*?)```", text, re.S)
    assert m, "README.md has no race example between <!-- race-example --> markers"
    code, command, shown = m.groups()
    monkeypatch.chdir(tmp_path)  # the example writes its .npy files into the current directory
    exec(compile(code, str(README), "exec"), {})  # noqa: S102 - the README is ours
    argv = shlex.split(command.strip())
    assert argv[0] == "transferlab"
    out = subprocess.run([sys.executable, "-m", "transferlab", *argv[1:]], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    want = [line for line in shown.splitlines() if line and not line.startswith("seconds:")]
    got = [line for line in out.stdout.splitlines() if line and not line.startswith("seconds:")]
    assert got == want
    assert re.search(r"^seconds: race [0-9.e-]+ s; every row of every model ~[0-9.e-]+ s .*: [0-9.]+x; rows scored "
                     r"1152 of 5391$", out.stdout, re.M), out.stdout
