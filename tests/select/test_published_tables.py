"""The published tables ship as package data (transferlab/data/published/) behind one accessor,
transferlab.evaluate.published, and `transferlab evaluate` reads them as 'published:NAME' from any directory."""
from __future__ import annotations

import csv
import fnmatch
import os
import sys

import pytest

from transferlab.cli import main
from transferlab.evaluate import published

TABLES = ["modelspider_baseline_scores", "sfda_finetune_group1_supervised", "sfda_finetune_group2_selfsupervised",
          "tllib_finetune"]


def test_every_table_is_listed_and_readable():
    assert published() == TABLES
    for name in TABLES:
        path = published(name)
        assert path == published(name + ".csv") and os.path.isfile(path)
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        assert len(rows) > 5 and len(rows[0]) >= 3  # a header and data rows


def test_unknown_table_names_the_shipped_ones():
    with pytest.raises(ValueError, match="no published table 'nope'.*tllib_finetune"):
        published("nope")
    with pytest.raises(TypeError, match="name must be"):
        published(3)


def test_package_data_glob_ships_the_folder():
    """pyproject's package-data lists a pattern matching every file of the folder (README included)."""
    if sys.version_info < (3, 11):
        pytest.skip("tomllib needs Python 3.11")
    import tomllib

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "pyproject.toml"), "rb") as f:
        globs = tomllib.load(f)["tool"]["setuptools"]["package-data"]["transferlab"]
    folder = os.path.dirname(published("tllib_finetune"))
    for name in os.listdir(folder):
        rel = f"data/published/{name}"
        assert any(fnmatch.fnmatch(rel, g) for g in globs), rel


def test_evaluate_reads_published_specs_from_any_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "--scores", "published:modelspider_baseline_scores", "--finetune",
                 "published:tllib_finetune", "--summary"]) == 0
    by_name = capsys.readouterr().out
    assert main(["evaluate", "--scores", published("modelspider_baseline_scores"), "--finetune",
                 published("tllib_finetune"), "--summary"]) == 0
    assert capsys.readouterr().out == by_name and "| LogME" in by_name
    assert main(["evaluate", "--scores", "published:nope", "--finetune", "published:tllib_finetune"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no published table 'nope'" in err
