"""Boolean options are bools (issue: hostile input, defect 6): a truthy string such as "false" used to
mean True silently (``leep(P, y, from_logits="false")``); through the CLI ``--arg
leep.from_logits=false`` stayed the string "false". Now every boolean option of every score and
state takes True/False (numpy bools too) or raises TypeError naming it, and the CLI parses the words."""
from __future__ import annotations

import numpy as np
import pytest

import transferlab as tl
from transferlab import testing
from transferlab._cli_pool import _parse_args_kv
from transferlab.scores import streaming

CASES = [
    ("leep", "from_logits"), ("nce", "from_logits"), ("linear_probe", "standardize"),
    ("linear_probe", "return_details"), ("knn_loo", "return_details"), ("sfda", "log"),
]


@pytest.mark.parametrize("name,option", CASES)
@pytest.mark.parametrize("bad", ["false", "True", 1, 0, None, [True]])
def test_a_non_bool_raises_type_error_naming_the_option(name, option, bad):
    X, y = testing.valid_inputs(name, n=40, d=4, c=2)
    with pytest.raises(TypeError, match=option):
        tl.score(name, X, y, **{option: bad})


@pytest.mark.parametrize("name,option", CASES)
def test_numpy_bools_are_bools(name, option):
    X, y = testing.valid_inputs(name, n=40, d=4, c=2)
    for flag in (False, True):
        got, want = tl.score(name, X, y, **{option: np.bool_(flag)}), tl.score(name, X, y, **{option: flag})
        assert (got == want) if isinstance(want, float) else (got.score == want.score)


@pytest.mark.parametrize("name,option", [("leep", "from_logits"), ("nce", "from_logits"),
                                         ("linear_probe", "standardize"), ("sfda", "log")])
def test_streaming_states_check_their_bool_options(name, option):
    with pytest.raises(TypeError, match=option):
        streaming.stream(name, **{option: "false"})


def test_cli_parses_true_and_false():
    parsed = _parse_args_kv(["leep.from_logits=false", "nce.from_logits=TRUE", "knn_loo.k=3", "knn_loo.metric=cosine"])
    assert parsed == {"leep": {"from_logits": False}, "nce": {"from_logits": True},
                      "knn_loo": {"k": 3, "metric": "cosine"}}
    assert parsed["leep"]["from_logits"] is False
