"""Every subcommand against a table of bad invocations (hostile-input issue, defect 8): each error is one
line on stderr, in CLI terms (flags, not keyword arguments), with exit status 2 and no traceback. Before,
directories or missing parents where a file is expected, an existing file as --plot directory, a binary
CSV, rank with one model per dataset and --device cuda without a GPU gave raw tracebacks (exit 1) or
library wording."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from transferlab.bank import BankWriter
from transferlab.cli import main
from transferlab.evaluate import published

SCORES, FINETUNE = published("modelspider_baseline_scores"), published("tllib_finetune")


@pytest.fixture
def files(tmp_path):
    (tmp_path / "one.csv").write_text("dataset,model,score,value\nd1,m1,s,0.5\nd2,m2,s,0.4\n")
    (tmp_path / "bin.csv").write_bytes(b"\x00\x01\x02\xff\xfe")
    (tmp_path / "cols.csv").write_text("a,b\n1,2\n")
    (tmp_path / "nan.csv").write_text("dataset,model,score,value\n" + "".join(
        f"caltech101,{m},s,{v}\n" for m, v in [("resnet50", "nan"), ("densenet121", "0.4"), ("googlenet", "0.3")]))
    (tmp_path / "afile").write_text("x")
    rng = np.random.default_rng(1)
    np.save(tmp_path / "x.npy", rng.normal(size=(30, 4)).astype(np.float32))
    np.save(tmp_path / "yfloat.npy", rng.normal(size=30))  # regression targets given to a classification command
    w = BankWriter.create_or_resume(tmp_path / "banks" / "b", n=20, d=3, z=None,
                                    identity={"model_id": "m", "dataset_id": "d"})
    w.write(0, np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32), np.arange(20) % 2)
    w.finalize()
    return tmp_path


def _bad(t):
    """(argv, words the one-line error must contain)."""
    return [
        (["evaluate", "--scores", str(t), "--finetune", FINETUNE], [str(t), "is a directory"]),
        (["evaluate", "--scores", str(t / "nope.csv"), "--finetune", FINETUNE], ["file not found"]),
        (["evaluate", "--scores", SCORES, "--finetune", FINETUNE, "--plot", str(t / "afile")], ["--plot", "give a directory"]),
        (["evaluate", "--scores", SCORES, "--finetune", FINETUNE, "--csv", str(t / "no" / "x.csv")], ["--csv", "does not exist"]),
        (["evaluate", "--scores", SCORES, "--finetune", FINETUNE, "--json", str(t)], ["--json", "is a directory"]),
        (["evaluate", "--scores", str(t / "bin.csv"), "--finetune", FINETUNE], ["bin.csv", "not a UTF-8 text CSV"]),
        (["evaluate", "--scores", str(t / "cols.csv"), "--finetune", FINETUNE], ["cols.csv", "'dataset'"]),
        (["evaluate", "--scores", SCORES, "--finetune", str(t / "cols.csv")], ["cols.csv", "'model'"]),
        (["evaluate", "--scores", str(t / "nan.csv"), "--finetune", FINETUNE, "--pool", "none", "--intersect"], ["--omit-nan"]),
        (["rank", "--scores", str(t / "one.csv"), "--pool", "none"], ["nothing to rank", "at least 2 models"]),
        (["score", str(t / "banks"), "-o", str(t / "no" / "x.csv")], ["-o/--out", "does not exist"]),
        (["score", str(t / "banks"), "-o", str(t)], ["-o/--out", "is a directory"]),
        (["score", str(t / "nowhere"), "-o", str(t / "x.csv")], ["is not a directory"]),
        (["score", str(t / "banks"), "-o", str(t / "x.csv"), "--scores", "nope"], ["unknown score 'nope'"]),
        (["info", "--banks", str(t / "nowhere")], ["is not a directory"]),
        (["score", str(t / "banks"), "-o", str(t / "x.csv"), "--scores", "logme", "--arg", "knn_loo.k=3"],
         ["--arg names 'knn_loo' (not in --scores)"]),
        (["score", str(t / "banks"), "-o", str(t / "x.csv"), "--arg", "nope.k=3"], ["--arg names 'nope' (unknown score)"]),
        (["score", str(t / "banks"), "-o", str(t / "x.csv"), "--arg", "knn_loo"], ["--arg 'knn_loo'", "SCORE.NAME=VALUE"]),
        (["score", str(t / "x.npy"), "--labels", str(t / "yfloat.npy"), "--scores", "logme"],
         ["labels look continuous", "pass --task regression"]),
        (["rank", str(t / "x.npy"), "--labels", str(t / "yfloat.npy"), "--by", "logme"],
         ["labels look continuous", "pass --task regression"]),
        (["race", str(t / "banks")], ["a race needs at least 2 models"]),
        (["race", str(t / "banks"), str(t / "afile")], ["afile: neither a bank directory nor an array file"]),
        (["race", str(t / "banks"), str(t / "banks"), "--delta", "0"], ["--delta must be in (0, 1), got 0"]),
        (["race", str(t / "banks"), str(t / "banks"), "--first-rows", "1"], ["--first-rows must be an int >= 2"]),
        (["race", str(t / "banks"), str(t / "banks"), "--score", "logme"], ["--score must be a per-row-mean score"]),
        (["race", str(t / "banks"), str(t / "banks"), "--json", str(t)], ["--json", "is a directory"]),
    ]


def test_every_bad_invocation_is_one_line_in_cli_terms_with_exit_2(files, capsys):
    for argv, words in _bad(files):
        status = main(argv)
        err = capsys.readouterr().err
        assert status == 2, (argv, err)
        assert err.count("\n") == 1 and err.startswith(f"transferlab {argv[0]}: error: "), (argv, err)
        for w in words:
            assert w in err, (argv, w, err)
        assert "nan_policy" not in err and "on_mismatch" not in err and "device='" not in err, err
        assert "score_kwargs" not in err and "task=" not in err, err


def test_device_cuda_without_a_gpu_names_the_flag(files, capsys):
    from transferlab import kernels

    if kernels.cuda_device_count() > 0:
        pytest.skip("a CUDA device is present")
    status = main(["score", str(files / "banks"), "-o", str(files / "x.csv"), "--device", "cuda", "--scores", "logme"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "--device cpu" in err, err


def test_no_traceback_from_a_real_process(files):
    for argv, _ in _bad(files)[:4]:
        out = subprocess.run([sys.executable, "-m", "transferlab", *argv], capture_output=True, text=True, timeout=300)
        assert out.returncode == 2 and "Traceback" not in out.stderr, (argv, out.stderr)
