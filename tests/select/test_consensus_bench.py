"""bench/consensus.py (the README's consensus table) runs on the shipped published table and prints the rows the
README shows for it: the table in the README is the command's output, not a copy that can drift."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_bench_consensus_published_rows_match_the_readme():
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "consensus.py"), "--no-zoo"],
                       capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    section = re.search(r"<!-- consensus-published -->(.*?)<!-- /consensus-published -->", readme, re.S)
    assert section, "README.md has no consensus-published block"
    rows = [line for line in section.group(1).splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) >= 6
    for row in rows:
        assert row in out, row
