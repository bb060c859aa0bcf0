"""Errors re-raised by score_pool keep the error (hostile-input issue, defect 9): re-raising as
``type(e)(msg)`` turned a ``json.JSONDecodeError`` into "TypeError: JSONDecodeError.__init__() missing 2
required positional arguments". Now the raised error names the model and the score, is of the same
kind (a ValueError here) and is chained to the original."""
from __future__ import annotations

import json

import numpy as np
import pytest

import transferlab as tl
from transferlab.scores import register, unregister


@pytest.fixture
def decoding_score():
    def broken(features, labels):
        """A score whose model card fails to parse."""
        json.loads("{not json")

    register("_json_fails")(broken)
    yield "_json_fails"
    unregister("_json_fails")


def test_a_decode_error_inside_a_score_is_chained_with_its_names(decoding_score):
    X, y = np.random.default_rng(0).normal(size=(30, 4)), np.arange(30) % 2
    with pytest.raises(ValueError, match=r"score '_json_fails' on dataset 'data', model 'm1'") as info:
        tl.score_pool({"m1": X}, [decoding_score], labels=y)
    assert isinstance(info.value.__cause__, json.JSONDecodeError)
    res = tl.score_pool({"m1": X}, [decoding_score], labels=y, errors="nan")
    assert np.isnan(res.rows[0]["value"]) and res.failures[0]["error"].startswith("JSONDecodeError")


def test_a_decode_error_in_a_loader_names_the_model():
    y = np.arange(30) % 2

    def loader():
        return json.loads("[1, 2")

    with pytest.raises(ValueError, match="loading the arrays of data/m2: JSONDecodeError") as info:
        tl.score_pool({"m2": loader}, ["knn_loo"], labels=y)
    assert isinstance(info.value.__cause__, json.JSONDecodeError)
