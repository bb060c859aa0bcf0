"""bench/consensus.py (the README's consensus tables) runs on the shipped published table and on the committed zoo
scores and prints the rows the README shows for them: the table in the README is the command's output, not a copy that can drift."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _readme_rows_are_printed(args, block):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "consensus.py"), *args],
                       capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    section = re.search(rf"<!-- {block} -->(.*?)<!-- /{block} -->", readme, re.S)
    assert section, f"README.md has no {block} block"
    rows = [line for line in section.group(1).splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) >= 6
    for row in rows:
        assert row in out, row


def test_bench_consensus_published_rows_match_the_readme():
    _readme_rows_are_printed(["--no-zoo"], "consensus-published")


def test_bench_consensus_zoo_rows_from_committed_scores_match_the_readme():
    # The zoo part from the committed scores of the zoo table (bench/zoo/results/scores.csv), not re-extracted.
    _readme_rows_are_printed(["--zoo-scores", os.path.join(ROOT, "bench", "zoo", "results", "scores.csv")],
                             "consensus-zoo")
