"""A streaming state of every registered score, pickled mid-pass in this process, loads in a fresh
interpreter that has run nothing but ``import pickle`` and finishes there with the same bits as
an identical run that never left this process (the unpickling imports the state's own module; a
cycle in that import chain, as SFDA's once had, fails here with ImportError)."""
from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest

from transferlab import testing
from transferlab.scores import registry, streaming

# Runs in the child: nothing imported before pickle.load (numpy arrives with the state's own imports).
CHILD = """
import pickle, sys
with open(sys.argv[1], "rb") as f:
    state = pickle.load(f)
loaded = sorted(m for m in sys.modules if m.startswith("transferlab"))
import numpy as np
X, y = np.load(sys.argv[2]), np.load(sys.argv[3])
half = X.shape[0] // 2
state.update(X[half:], y[half:]).end_pass()
while not state.complete:
    state.update(X, y).end_pass()
print(repr(float(state.compute())))
print(" ".join(loaded))
"""


def _fresh_state(name, X, y):
    cls = registry.get(name).stream
    return cls(X, y) if getattr(cls, "over_bank", False) else streaming.stream(name)


def _finish(state, X, y) -> float:
    half = X.shape[0] // 2
    state.update(X[half:], y[half:]).end_pass()
    while not state.complete:
        state.update(X, y).end_pass()
    return float(state.compute())


@pytest.mark.parametrize("name", registry.available_streams())
def test_state_pickled_mid_pass_finishes_in_a_fresh_process(name, tmp_path):
    X, y = testing.valid_inputs(name, n=80, d=6, c=3, seed=3)
    half = X.shape[0] // 2
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    state = _fresh_state(name, X, y).update(X[:half], y[:half])
    with open(tmp_path / "state.pkl", "wb") as f:
        pickle.dump(state, f)
    want = _finish(pickle.loads(pickle.dumps(state)), X, y)  # the same run, never leaving this process

    out = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "state.pkl"), str(tmp_path / "X.npy"),
                          str(tmp_path / "y.npy")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    value, loaded = out.stdout.strip().splitlines()
    assert float(value) == want
    assert np.isfinite(want)
    assert type(state).__module__ in loaded.split()  # unpickling imported the state's own module


def test_every_builtin_score_has_a_stream():
    assert registry.available_streams() == registry.available()
    assert len(registry.available_streams()) == 12
