"""The command line on the user's own arrays and banks (issue 16): `transferlab score features.npy --labels
labels.npy`, .npz and CSV inputs, `transferlab rank` with no pool by default, `--model file.py:fn` without
PYTHONPATH. Values are compared with the float64 oracles in transferlab/reference; bad invocations are one line in
CLI terms with exit 2."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from transferlab.bank import FeatureBank
from transferlab.cli import main
from transferlab.evaluate import read_scores
from transferlab.reference import knn as ref_knn
from transferlab.reference import leep as ref_leep


@pytest.fixture
def arrays(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 150)
    centres = rng.normal(size=(3, 8))
    good = (2 * centres[y] + rng.normal(size=(150, 8))).astype(np.float32)
    weak = (0.3 * centres[y] + rng.normal(size=(150, 8))).astype(np.float32)
    probs = rng.dirichlet(np.ones(4), 150)
    np.save(tmp_path / "good.npy", good)
    np.save(tmp_path / "weak.npy", weak)
    np.save(tmp_path / "labels.npy", y)
    np.save(tmp_path / "probs.npy", probs)
    np.savez(tmp_path / "packed.npz", features=weak, labels=y, probs=probs)
    with open(tmp_path / "table.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"f{j}" for j in range(8)] + ["label"])
        for row, label in zip(good.tolist(), y):
            w.writerow([repr(v) for v in row] + [f"class-{label}"])
    (tmp_path / "labels.txt").write_text("".join(f"{v}\n" for v in y))
    return tmp_path, good, weak, y, probs


def _knn(x, y):
    return ref_knn.knn_loo(np.asarray(x, dtype=np.float64), y)[0]


def test_score_one_npy_with_labels_prints_every_features_score(arrays, capsys):
    t, good, _, y, _ = arrays
    assert main(["score", str(t / "good.npy"), "--labels", str(t / "labels.npy")]) == 0
    out = capsys.readouterr().out
    for s in ("knn_loo", "logme", "sfda", "hscore", "| data    |"):
        assert s in out, s
    assert "leep: skipped for data/good (the bank has no logits)" in out


def test_score_values_equal_the_oracles(arrays, capsys):
    t, good, weak, y, probs = arrays
    csv_out = t / "s.csv"
    assert main(["score", str(t / "good.npy"), "--labels", str(t / "labels.txt"), "--probs", str(t / "probs.npy"),
                 "--scores", "knn_loo", "leep", "-o", str(csv_out), "--dataset", "mine"]) == 0
    tab = read_scores(str(csv_out))
    assert tab["knn_loo"]["mine"]["good"] == pytest.approx(_knn(good, y), abs=1e-12)
    assert tab["leep"]["mine"]["good"] == pytest.approx(ref_leep.leep(probs, y)[0], rel=1e-6)
    # .npz (features, labels, probs inside) and CSV (a label column of strings) give the same numbers
    assert main(["score", str(t / "packed.npz"), str(t / "table.csv"), "--scores", "knn_loo", "leep",
                 "-o", str(csv_out), "--keep-going"]) == 0
    assert "leep: skipped for data/table" in capsys.readouterr().out
    tab = read_scores(str(csv_out))
    assert tab["knn_loo"]["data"]["packed"] == pytest.approx(_knn(weak, y), abs=1e-12)
    assert tab["knn_loo"]["data"]["table"] == pytest.approx(_knn(good, y), abs=1e-12)
    assert tab["leep"]["data"]["packed"] == pytest.approx(ref_leep.leep(probs, y)[0], rel=1e-6)


def _order(out: str, column: int):
    rows = [ln for ln in out.splitlines() if ln.startswith("| ") and ln.split("|")[1].strip().isdigit()]
    return [r.split("|")[column + 1].strip() for r in rows]


def test_rank_two_npy_files_without_a_pool(arrays, capsys):
    t, good, weak, y, _ = arrays
    assert main(["rank", str(t / "weak.npy"), str(t / "good.npy"), "--labels", str(t / "labels.npy"),
                 "--by", "knn_loo"]) == 0
    out = capsys.readouterr().out
    assert "task-agnostic" not in out and "hybrid" not in out  # no pool unless asked for
    want = sorted(["good", "weak"], key=lambda m: -_knn({"good": good, "weak": weak}[m], y))
    assert _order(out, 1) == want == ["good", "weak"]


def test_rank_two_banks_and_a_score_csv(arrays, capsys):
    t, good, weak, y, _ = arrays
    FeatureBank.from_arrays(good, y, path=t / "banks" / "good", model_id="good", dataset_id="d")
    FeatureBank.from_arrays(weak, y, path=t / "banks" / "weak", model_id="weak", dataset_id="d")
    assert main(["rank", str(t / "banks" / "weak"), str(t / "banks" / "good")]) == 0  # default: knn_loo logme
    out = capsys.readouterr().out
    assert "## d: fine-tune order" in out and "task-aware:logme" in out
    assert _order(out, 1) == ["good", "weak"]
    assert main(["score", str(t / "banks"), "--scores", "knn_loo", "-o", str(t / "s.csv")]) == 0
    capsys.readouterr()
    assert main(["rank", "--scores", str(t / "s.csv")]) == 0
    assert _order(capsys.readouterr().out, 1) == ["good", "weak"]


def test_bad_array_invocations_are_one_line_with_exit_2(arrays, capsys):
    t = arrays[0]
    np.save(t / "nan.npy", np.full((150, 3), np.nan))
    np.save(t / "short.npy", np.arange(10))
    (t / "noheader.csv").write_text("1,2,3\n4,5,6\n")
    cases = [
        (["score", str(t / "good.npy")], ["good.npy", "no labels", "--labels"]),
        (["score", str(t / "nope.npy"), "--labels", str(t / "labels.npy")], ["nope.npy", "no such file"]),
        (["score", str(t / "good.npy"), "--labels", str(t / "short.npy")], ["good.npy", "labels", "10", "150"]),
        (["score", str(t / "nan.npy"), "--labels", str(t / "labels.npy")], ["nan.npy", "NaN"]),
        (["score", str(t / "table.csv"), "--label-column", "y"], ["table.csv", "no column 'y'", "--label-column"]),
        (["score", str(t / "noheader.csv")], ["noheader.csv", "no header", "--labels"]),
        (["score", str(t / "good.npy"), str(t / "weak.npy"), "--labels", str(t / "labels.npy"), "--probs",
          str(t / "probs.npy")], ["--probs/--logits", "single"]),
        (["score", str(t / "packed.npz"), "--labels", str(t / "labels.npy")], ["packed.npz", "labels", "once"]),
        (["score", str(t / "good.npy"), "--labels", str(t / "labels.npy"), "--probs", str(t / "good.npy")],
         ["probs", "negative", "from_logits"]),
        (["rank", str(t / "good.npy"), "--labels", str(t / "labels.npy")], ["nothing to rank", "at least 2 models"]),
        (["rank"], ["INPUTs", "--scores"]),
        (["rank", str(t / "good.npy"), "--scores", str(t / "x.csv")], ["INPUTs", "--scores"]),
    ]
    for argv, words in cases:
        status = main(argv)
        err = capsys.readouterr().err
        assert status == 2, (argv, err)
        assert err.count("\n") == 1 and err.startswith(f"transferlab {argv[0]}: error: "), (argv, err)
        for w in words:
            assert w in err, (argv, w, err)


_NET = textwrap.dedent("""
    import torch

    def make_net():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 12), torch.nn.ReLU(),
                                   torch.nn.Linear(12, 10))
""")


def test_model_file_py_and_module_in_the_current_directory_without_pythonpath(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    (tmp_path / "mynets.py").write_text(_NET)
    (tmp_path / "sub").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # The package is found where this test imported it from; the user's module is not on that path, and -P keeps
    # python from putting the current directory first (as the installed `transferlab` script does not).
    import transferlab

    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(transferlab.__file__))
    for spec, cwd in (("mynets:make_net", tmp_path), (str(tmp_path / "mynets.py") + ":make_net", tmp_path / "sub")):
        out = tmp_path / f"banks-{cwd.name}"
        r = subprocess.run([sys.executable, "-P", "-m", "transferlab", "extract", "--model", spec, "--model-id", "net",
                            "--adapter", "hook:2", "--task", "digits-10", "--n", "30", "--out", str(out), "--quiet"],
                           cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        b = FeatureBank.open(out / "digits-10" / "net")
        assert (b.n, b.d) == (30, 12)
    r = subprocess.run([sys.executable, "-P", "-m", "transferlab", "extract", "--model", "missing.py:make_net",
                        "--task", "digits-10", "--out", str(tmp_path / "x")], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "cannot load 'make_net' from file 'missing.py'" in r.stderr


def test_evaluate_the_users_own_models_needs_no_pool(arrays, capsys):
    """`evaluate` on scores of the user's arrays and their fine-tune accuracies: the default pool ('auto', the
    shipped ImageNet cards) does not cover them, so the task-agnostic and hybrid strategies are left out with a
    note instead of an error; regret@1 of knn_loo is 0 (it ranks 'good' first, the better fine-tuned model)."""
    t = arrays[0]
    assert main(["score", str(t / "good.npy"), str(t / "weak.npy"), "--labels", str(t / "labels.npy"),
                 "--scores", "knn_loo", "-o", str(t / "s.csv"), "--dataset", "mine"]) == 0
    (t / "ft.csv").write_text("model,mine\ngood,0.95\nweak,0.70\n")
    capsys.readouterr()
    assert main(["evaluate", "--scores", str(t / "s.csv"), "--finetune", str(t / "ft.csv"), "--summary"]) == 0
    out = capsys.readouterr().out
    assert "task-agnostic and hybrid strategies left out" in out and "hybrid:" not in out
    def regret_at_1(subject):  # the summary's regret@1 column (% of the best fine-tune accuracy)
        row = [ln for ln in out.splitlines() if ln.startswith(f"| {subject} ")][0]
        return [c.strip() for c in row.split("|")[1:-1]][6]

    assert regret_at_1("knn_loo") == "0.00"
    assert regret_at_1("random") == f"{100 * (0.95 - 0.70) / 0.95 / 2:.2f}"  # by hand: half the time 'weak'
