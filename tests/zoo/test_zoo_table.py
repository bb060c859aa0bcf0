"""The README's zoo table is what ``bench/zoo/regret_ci.py`` computes from the committed scores (issue 18).

Recomputes every row from ``bench/zoo/results/scores.csv`` (the scores of the extracted banks, committed by the
one command; no feature is re-extracted here) and the shipped ground truth, then compares with the committed
JSON and with the README. The run on features perturbed by 1e-6 relative noise (``--perturb 1e-6``, a stand-in
for a second machine, ``bench/zoo/results/perturbed/``) is recomputed the same way, and its task-aware and
hybrid rows must agree with the first run's within their intervals.
"""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from transferlab.evaluate import read_scores

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "zoo" / "results"
README = ROOT / "README.md"


def _regret_ci():
    spec = importlib.util.spec_from_file_location("regret_ci", ROOT / "bench" / "zoo" / "regret_ci.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def rc():
    return _regret_ci()


def _recompute(rc, where: Path):
    rec = json.loads((where / "regret_ci.json").read_text())
    scores = read_scores(str(where / "scores.csv"))
    table = rc.regret_table(scores, rec["tasks"], rec["models"], ties=rec["ties"])
    return rec, table


@pytest.fixture(scope="module")
def base(rc):
    return _recompute(rc, RESULTS)


@pytest.fixture(scope="module")
def perturbed(rc):
    return _recompute(rc, RESULTS / "perturbed")


def _same(rec_table, table):
    assert set(rec_table) == set(table)
    for strat, row in table.items():
        for b in ("regret@1", "regret@2"):
            assert rec_table[strat][b] == pytest.approx(list(row[b]), rel=1e-12, abs=1e-12), (strat, b)
        assert rec_table[strat]["units"] == row["units"] == 24


def test_committed_json_is_recomputed_from_committed_scores(base, perturbed):
    for rec, table in (base, perturbed):
        _same(rec["strategies"], table)
        assert rec["ties"] == "expected"
        for key in ("platform", "python", "numpy", "torch", "transferlab", "cpu_count"):
            assert key in rec["machine"]
    assert base[0]["perturb"] == 0 and perturbed[0]["perturb"] == 1e-6


def test_readme_table_is_the_recomputed_table(rc, base):
    text = README.read_text()
    m = re.search(r"<!-- zoo-table -->\s*\n(.*?)<!-- /zoo-table -->", text, re.S)
    assert m, "README.md has no table between <!-- zoo-table --> markers"
    assert m.group(1).strip() == rc.markdown(base[1]).strip()
    assert "expected regret over uniformly random tie-breaks" in text


def test_perturbed_run_gives_the_same_task_aware_and_hybrid_rows_within_their_intervals(base, perturbed):
    a, b = base[1], perturbed[1]
    checked = 0
    for strat in a:
        if not strat.startswith(("task-aware:", "hybrid:")):
            continue
        for k in ("regret@1", "regret@2"):
            (ma, la, ha), (mb, lb, hb) = a[strat][k], b[strat][k]
            assert lb <= ma <= hb and la <= mb <= ha, (strat, k, a[strat][k], b[strat][k])
            checked += 1
    assert checked >= 28  # 8 scores x (task-aware, hybrid) x 2 budgets, minus none
