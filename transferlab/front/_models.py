"""What :func:`~transferlab.front.rank_models` accepts as ``models``, brought to one form: :class:`Encoder`.

``models`` is a mapping ``{name: model}`` or a list (names derived: a string is its own name, a module its class
name, a function its ``__name__``; repeated names get ``-0``, ``-1``, ... in list order). Each model is one of:

* a ``torch.nn.Module``: run by :func:`transferlab.extract` with ``adapter`` (default ``"auto"``: timm's
  ``forward_head(pre_logits=True)`` when the model has it, else the input of its last ``nn.Linear``, the
  penultimate features, with the model's output as source logits); a module without any ``nn.Linear`` gives its
  output as the features. Floating inputs are copied to the module's dtype before each batch;
* a callable ``f(batch) -> features`` (a tensor batch, or a list of str for text): its output is the features.
  It is cached only when it is a bound method of an ``nn.Module`` (whose weights then fingerprint it);
* ``"timm:<name>"`` / ``"torchvision:<name>"``: the pre-trained model of that package, from its local cache only;
* a Hugging Face model id or local directory, a ``PreTrainedModel``, or a ``(model, tokenizer_or_processor)``
  pair: every hidden state, pooled (see :mod:`transferlab.front._hf`), loaded with ``local_files_only=True``.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np

from transferlab.front import _hf
from transferlab.front._data import Rows

__all__ = ["Encoder", "model_names", "build_encoder"]


@dataclass
class Encoder:
    """One model ready for :func:`transferlab.extract`: the module it runs and hashes, its adapter and
    preprocessing, how many hidden states a bank row holds side by side (1: one block of features), whether a
    bank of it may be cached, the bank's ``model_id`` and the data in the form the model reads."""

    name: str
    module: Any
    adapter: Any
    preprocessing: Optional[Callable]
    n_states: int
    cacheable: bool
    model_id: str
    feed: Any
    device: Optional[str] = None  # overrides rank_models' device (a plain function gets CPU tensors)


def model_names(models: Any) -> List[Tuple[str, Any]]:
    """``[(name, model)]`` of a mapping or a list; raises on an empty pool, bad or repeated names."""
    if isinstance(models, Mapping):
        items = list(models.items())
        for name, _ in items:
            if not isinstance(name, str) or not name:
                raise TypeError(f"models: names must be non-empty strings, got {name!r}")
    elif isinstance(models, (str, bytes)) or not hasattr(models, "__iter__") or _looks_like_one_model(models):
        raise TypeError(f"models must be a mapping {{name: model}} or a list of models, got {type(models).__name__}")
    else:
        items = [(_derived_name(m), m) for m in models]
        counts: Dict[str, int] = {}
        for name, _ in items:
            counts[name] = counts.get(name, 0) + 1
        seen: Dict[str, int] = {}
        for i, (name, m) in enumerate(items):
            if counts[name] > 1:
                items[i] = (f"{name}-{seen.get(name, 0)}", m)
                seen[name] = seen.get(name, 0) + 1
        if len({name for name, _ in items}) < len(items):  # a numbered name met a given one
            raise ValueError(f"models: names {[n for n, _ in items]} repeat; pass a mapping {{name: model}}")
    if len(items) < 2:
        raise ValueError(f"models: need at least 2 models to rank, got {len(items)}")
    return items


def _looks_like_one_model(obj: Any) -> bool:
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module) and not isinstance(obj, (torch.nn.ModuleList,))


def _derived_name(m: Any) -> str:
    if isinstance(m, str):
        p = os.path.normpath(m)
        return os.path.basename(p) if os.path.isdir(p) else m
    if isinstance(m, tuple) and m:
        m = m[0]
    if _hf.is_hf_model(m) and getattr(m, "name_or_path", ""):
        return os.path.basename(os.path.normpath(m.name_or_path))
    return getattr(m, "__name__", None) or type(m).__name__


def cache_dirname(name: str) -> str:
    """A directory name for ``name``: readable, and distinct for distinct names (``a/b`` vs ``a_b``)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:60] or "model"
    return f"{safe}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


# --- data in the form each kind of model reads ----------------------------------------------------------------

class _Texts(list):
    """A batch of strings that extract can "move to the device" (a no-op), for callables reading text."""

    def to(self, *args: Any, **kwargs: Any) -> "_Texts":
        return self


def _image_tensor(torch, im: Any):
    """A PIL image or HWC/HW array as a float32 CHW tensor, uint8 scaled to [0, 1]."""
    a = np.asarray(im)
    t = torch.as_tensor(a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32))
    if t.dim() == 2:
        return t.unsqueeze(0)
    return t.permute(2, 0, 1) if t.dim() == 3 and t.shape[2] in (1, 3, 4) else t


def _row_dataset(rows: Rows, convert: Optional[Callable]):
    from torch.utils.data import Dataset

    class RowDataset(Dataset):
        """(input, bank label) of each row; ``convert`` applied to the input (images to tensors)."""

        def __len__(self) -> int:
            return rows.n

        def __getitem__(self, i: int):
            x = rows.inputs[i]
            return (convert(x) if convert else x), int(rows.bank_labels[i])

    return RowDataset()


def _loader(dataset, batch_size: int, collate: Optional[Callable] = None):
    from torch.utils.data import DataLoader

    return DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)


def _feed_tensors(name: str, rows: Rows, batch_size: int):
    """The data of a model that reads tensors (modules, callables on arrays/images, HF vision on pixels)."""
    import torch

    if rows.kind == "arrays":
        return (rows.inputs, rows.bank_labels)
    if rows.kind == "torch":
        return rows.inputs
    if rows.kind == "images":
        return _loader(_row_dataset(rows, lambda im: _image_tensor(torch, im)), batch_size)
    raise ValueError(f"models[{name!r}] reads tensors but data is text; rank text with a Hugging Face text "
                     "model or a callable taking a list of str")


def _copy_as(dtype) -> Callable:
    """extract preprocessing: a copy of the batch (the caller's array is never touched, even by an in-place
    first layer), floating batches cast to the model's dtype (numpy float64 into a float32 module)."""

    def copy_as(x):
        return x.to(dtype=dtype, copy=True) if x.is_floating_point() else x.clone()

    copy_as.__qualname__ = f"copy_as_{str(dtype).replace('torch.', '')}"
    return copy_as


def _float_dtype(module) -> Any:
    import torch

    for p in module.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


# --- one encoder per kind of model ----------------------------------------------------------------------------

def _module_encoder(name: str, model, rows: Rows, batch_size: int, adapter: Any) -> Encoder:
    import torch

    if adapter == "auto":
        timm_like = all(callable(getattr(model, a, None)) for a in ("forward_head", "forward_features"))
        has_linear = any(isinstance(m, torch.nn.Linear) for m in model.modules())
        if not (timm_like or has_linear):
            adapter = _output_adapter()
    return Encoder(name, model, adapter, _copy_as(_float_dtype(model)), 1, True, name,
                   _feed_tensors(name, rows, batch_size))


def _output_adapter() -> Callable:
    def output(model, x):
        return model(x), None

    output.__qualname__ = "output"
    return output


def _callable_encoder(name: str, fn: Callable, rows: Rows, batch_size: int) -> Encoder:
    import torch

    class Function(torch.nn.Module):
        """``fn`` as a module, so extract can run it; a bound method's module is a submodule (its weights are
        then in the state dict extract hashes, which makes the bank cacheable)."""

        def __init__(self):
            super().__init__()
            owner = getattr(fn, "__self__", None)
            self.owner = owner if isinstance(owner, torch.nn.Module) else None
            # extract restores the mode it found on this wrapper, recursively: make it the owner's.
            self.training = self.owner.training if self.owner is not None else False

        def forward(self, x):
            out = fn(list(x) if isinstance(x, _Texts) else x)
            return out if isinstance(out, torch.Tensor) else torch.as_tensor(np.asarray(out))

    module = Function()
    if rows.kind == "text":
        feed = _loader(_row_dataset(rows, None), batch_size,
                       lambda items: (_Texts(t for t, _ in items), torch.as_tensor([y for _, y in items])))
    else:
        feed = _feed_tensors(name, rows, batch_size)
    prep = None if module.owner is None or rows.kind == "text" else _copy_as(_float_dtype(module.owner))
    owned = module.owner is not None
    return Encoder(name, module, _output_adapter(), prep, 1, owned, name, feed, None if owned else "cpu")


def _hf_encoder(name: str, spec: Any, rows: Rows, batch_size: int, pooling: str,
                max_length: Optional[int]) -> Encoder:
    model, kind, proc = _hf.load(spec, name)
    n_states = _hf.n_hidden_states(model, name)
    encoder_only = bool(getattr(model.config, "is_encoder_decoder", False))
    adapter = _hf.hidden_states_adapter(pooling, n_states, encoder_only)
    prep = None
    if kind == "text":
        if rows.kind != "text":
            raise ValueError(f"models[{name!r}] is a text model but data holds {rows.description}; give texts")
        length = _hf.max_length_of(model, proc, max_length)
        adapter.__qualname__ = adapter.__qualname__[:-1] + f",max_length={length})"
        feed = _loader(_row_dataset(rows, None), batch_size, _hf.text_collate(proc, length))
    elif rows.kind == "images":
        feed = _loader(_row_dataset(rows, None), batch_size, _hf.image_collate(proc))
    else:  # arrays / torch data are taken as the model's pixel values
        feed, prep = _feed_tensors(name, rows, batch_size), _copy_as(_float_dtype(model))
    return Encoder(name, model, adapter, prep, n_states, True, f"{name}@{pooling}", feed)


def _zoo_model(name: str, spec: str):
    """``"timm:<name>"`` or ``"torchvision:<name>"``, pre-trained weights from the local cache only."""
    package, _, arch = spec.partition(":")
    try:
        lib = __import__(package)
    except ImportError:
        raise ImportError(f"models[{name!r}] = {spec!r} needs {package}, which is not installed: "
                          f"pip install {package}") from None
    if package == "torchvision":
        import torch

        weights = lib.models.get_model_weights(arch).DEFAULT
        cached = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights.url))
        if not os.path.exists(cached):
            raise ValueError(f"models[{name!r}]: the weights of {spec!r} are not in the local cache ({cached}); "
                             "transferlab never downloads")
        return lib.models.get_model(arch, weights=weights)
    from huggingface_hub import try_to_load_from_cache

    cfg = lib.models.get_pretrained_cfg(arch)
    hub_id = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    path = try_to_load_from_cache(hub_id, "model.safetensors") if hub_id else None
    if not isinstance(path, str):
        raise ValueError(f"models[{name!r}]: the weights of {spec!r} are not in the local Hugging Face cache; "
                         "transferlab never downloads")
    return lib.create_model(arch, pretrained=True, pretrained_cfg_overlay={"file": path})


def build_encoder(name: str, spec: Any, rows: Rows, *, batch_size: int, pooling: str, adapter: Any,
                  max_length: Optional[int]) -> Encoder:
    """The :class:`Encoder` of model ``spec`` named ``name`` on ``rows`` (loads Hugging Face / zoo models)."""
    import torch

    if isinstance(spec, str) and spec.split(":", 1)[0] in ("timm", "torchvision"):
        spec = _zoo_model(name, spec)
    if isinstance(spec, str) or _hf.is_hf_model(spec) or (isinstance(spec, tuple) and len(spec) == 2
                                                         and _hf.is_hf_model(spec[0])):
        return _hf_encoder(name, spec, rows, batch_size, pooling, max_length)
    if isinstance(spec, torch.nn.Module):
        if rows.kind == "text":
            raise ValueError(f"models[{name!r}] is a torch module but data is text; rank text with a Hugging Face "
                             "text model or a callable taking a list of str")
        return _module_encoder(name, spec, rows, batch_size, adapter)
    if callable(spec):
        return _callable_encoder(name, spec, rows, batch_size)
    raise TypeError(f"models[{name!r}] must be a torch.nn.Module, a callable returning features, a Hugging Face "
                    f"model id or path, or 'timm:<name>' / 'torchvision:<name>', got {type(spec).__name__}")
