"""Type aliases of the public API (annotations only; nothing here is checked at run time).

The scores take many array kinds (numpy arrays and memmaps, torch tensors on any device, anything
``np.asarray`` reads): ``ArrayLike`` says so without importing torch. The string options are ``Literal``s so
that a type checker flags a misspelt value before the run-time check (``core/inputs.py``) does.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Optional, Union

if TYPE_CHECKING:  # torch stays optional: the alias names it only for type checkers
    import numpy as np
    import torch

    ArrayLike = Union[np.ndarray, torch.Tensor, Any]
else:
    ArrayLike = Any

#: features (N, D), probabilities or logits (N, Z): an array, memmap or tensor
Features = ArrayLike
#: labels (N,) of a classification task, or targets (N,) / (N, T) / indicators (N, L) with ``task=``
Targets = ArrayLike
Device = Literal["auto", "cpu", "cuda", "reference"]
NanPolicy = Literal["raise", "omit"]
Task = Literal["classification", "regression", "multilabel"]
#: bytes (int or an integral float), a size such as "512MB", or None for no budget
MemoryBudget = Optional[Union[int, float, str]]
RowOrder = Literal["canonical", "given"]
