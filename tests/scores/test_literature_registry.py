"""The literature's scores are registered, exported, and callable by name with the shared convention."""
from __future__ import annotations

import numpy as np
import pytest

import transferlab
from transferlab import scores

from _score_checks import class_data

FEATURE_SCORES = ["logme", "nleep", "hscore", "reg_hscore", "gbc", "transrate", "parc"]


@pytest.mark.parametrize("name", FEATURE_SCORES + ["nce"])
def test_registered_and_exported(name):
    info = scores.get(name)
    assert getattr(transferlab, name) is info.func
    assert getattr(scores, name) is info.func
    assert info.inputs == ("probs" if name == "nce" else "features")
    assert info.description  # the docstring's first line


@pytest.mark.parametrize("name", FEATURE_SCORES)
def test_score_by_name_matches_direct_call(name):
    X, y = class_data(n=200, d=6, c=2, sep=1.0, seed=1)
    kw = {"components": 4} if name == "nleep" else {}
    assert transferlab.score(name, X, y, **kw) == getattr(transferlab, name)(X, y, **kw)
    assert np.isfinite(transferlab.score(name, X, y, **kw))
