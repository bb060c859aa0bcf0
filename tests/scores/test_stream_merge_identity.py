"""A part's rows enter a streaming state once (issue: hostile input, defect 1). Merging a state into
itself used to hang the linear probe (its merge appended to the list it iterated) and silently
double-count every other state; merging the same part twice, or a part that already holds a merged
one, double-counted too. All of them raise now, for every registered state."""
from __future__ import annotations

import pickle
import threading

import numpy as np
import pytest

from transferlab import testing
from transferlab.scores import registry, streaming


def _state(name, X, y):
    cls = registry.get(name).stream
    return cls(X, y) if getattr(cls, "over_bank", False) else streaming.stream(name)


def _part(state, name, X, y, a, b):
    part = state.fork()
    if getattr(type(state), "over_bank", False):
        return part.update(X[a:b], y[a:b], start=a)
    return part.update(X[a:b], y[a:b])


def _raises_within(seconds, fn):
    """fn() must raise ValueError within ``seconds`` (a hang fails instead of blocking the run)."""
    out = {}

    def run():
        try:
            fn()
        except ValueError as e:
            out["error"] = e
        except Exception as e:  # noqa: BLE001
            out["other"] = e
        else:
            out["none"] = True

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "the merge did not return"
    assert "error" in out, out
    return out["error"]


@pytest.mark.parametrize("name", registry.available_streams())
def test_self_merge_raises(name):
    X, y = testing.valid_inputs(name, n=60, d=5, c=3, seed=1)
    st = _part(_state(name, X, y), name, X, y, 0, 30)
    err = _raises_within(60, lambda: st.merge(st))
    assert "itself" in str(err)


@pytest.mark.parametrize("name", registry.available_streams())
def test_a_part_merged_twice_raises_and_the_state_is_unchanged(name):
    X, y = testing.valid_inputs(name, n=60, d=5, c=3, seed=2)
    st = _state(name, X, y)
    a, b = _part(st, name, X, y, 0, 30), _part(st, name, X, y, 30, 60)
    st.merge(a)
    n = st.n
    with pytest.raises(ValueError, match="already merged"):
        st.merge(a)
    with pytest.raises(ValueError, match="already merged"):
        st.merge(pickle.loads(pickle.dumps(a)))  # the same part, sent to a worker and back
    assert st.n == n
    st.merge(b)  # the other part still merges
    assert st.n == 60


@pytest.mark.parametrize("name", registry.available_streams())
def test_a_part_holding_a_merged_part_raises(name):
    X, y = testing.valid_inputs(name, n=60, d=5, c=3, seed=3)
    st = _state(name, X, y)
    a, b = _part(st, name, X, y, 0, 20), _part(st, name, X, y, 20, 40)
    st.merge(a)
    b.merge(a)  # a worker combined a into b as well
    with pytest.raises(ValueError, match="already merged"):
        st.merge(b)


def test_forks_of_a_later_pass_merge_normally():
    X, y = testing.valid_inputs("sfda", n=90, d=5, c=3, seed=4)
    want = streaming.run("sfda", X, y)
    st = streaming.stream("sfda")
    while not st.complete:
        parts = [st.fork().update(X[a:a + 30], y[a:a + 30]) for a in (0, 30, 60)]
        for p in parts:
            st.merge(p)
        st.end_pass()
    assert st.compute() == pytest.approx(want, rel=1e-12)
