"""A writer killed between writing ``meta.json.tmp.<pid>`` and its atomic rename left that file behind
forever (hostile-input issue, defect 3b). The next open of the bank (reader or resuming writer) now
removes such files of dead processes, and never a live writer's."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from transferlab.bank import BankWriter, FeatureBank


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _bank(path, complete=True):
    w = BankWriter.create_or_resume(path, n=6, d=3, z=None, identity={"model_id": "m", "dataset_id": "d"})
    w.write(0, np.ones((3, 3), np.float32), np.arange(3))
    if complete:
        w.write(3, np.ones((3, 3), np.float32), np.arange(3))
        return w.finalize()
    w.close()


def test_open_removes_a_dead_writers_tmp_and_keeps_a_live_ones(tmp_path):
    path = tmp_path / "bank"
    _bank(path)
    dead = path / f"meta.json.tmp.{_dead_pid()}"
    live_proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = path / f"meta.json.tmp.{live_proc.pid}"
        for f in (dead, live):
            f.write_text("{\"torn\": ")
        bank = FeatureBank.open(path)
        assert bank.n == 6
        assert not dead.exists() and live.exists()
    finally:
        live_proc.kill()
        live_proc.wait()


def test_resuming_writer_removes_a_dead_writers_tmp(tmp_path):
    path = tmp_path / "bank"
    _bank(path, complete=False)
    dead = path / f"meta.json.tmp.{_dead_pid()}"
    dead.write_text("{")
    w = BankWriter.create_or_resume(path, n=6, d=3, z=None, identity={"model_id": "m", "dataset_id": "d"})
    assert w.rows_written == 3 and not dead.exists()
    w.write(3, np.ones((3, 3), np.float32), np.arange(3))
    assert w.finalize().n == 6
    assert sorted(os.listdir(path)) == sorted(f for f in os.listdir(path) if ".tmp." not in f)
