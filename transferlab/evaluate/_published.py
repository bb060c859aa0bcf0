"""The published tables that ship with transferlab (``transferlab/data/published/``, package data): scores and
fine-tune accuracies from the literature, for evaluating scores and strategies without running any model.

    from transferlab.evaluate import published
    published("tllib_finetune")            # the file's path (".csv" optional)
    published()                            # the names of every shipped table

``transferlab evaluate --scores published:modelspider_baseline_scores --finetune published:tllib_finetune``
reads the same files from any working directory. The sources of each table are in the folder's README.md.
"""
from __future__ import annotations

import os
from importlib import resources
from typing import List, Union

__all__ = ["published", "resolve_published"]

PREFIX = "published:"


def _folder():
    return resources.files("transferlab").joinpath("data", "published")


def published(name: str = None) -> Union[str, List[str]]:
    """The path of the shipped table ``name`` (with or without ``.csv``); without a name, every table's name.

    Raises ValueError naming the tables that exist when ``name`` is not one of them."""
    names = sorted(p.name[:-4] for p in _folder().iterdir() if p.name.endswith(".csv"))
    if name is None:
        return names
    if not isinstance(name, str):
        raise TypeError(f"name must be a table name (str), got {type(name).__name__}")
    stem = name[:-4] if name.endswith(".csv") else name
    if stem not in names:
        raise ValueError(f"no published table {name!r}; shipped: {', '.join(names)}")
    return os.fspath(_folder().joinpath(stem + ".csv"))


def resolve_published(spec):
    """``"published:NAME"`` -> the shipped table's path; anything else unchanged."""
    if isinstance(spec, str) and spec.startswith(PREFIX):
        return published(spec[len(PREFIX):])
    return spec
