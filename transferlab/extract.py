"""Feature extraction: a torch model and a labelled dataset become a :class:`~transferlab.bank.FeatureBank`.

    bank = tl.extract(model, (images, labels), "banks/mnist-10/my-cnn", model_id="my-cnn", dataset_id="mnist-10")

The model runs in eval mode under ``torch.inference_mode`` (optionally autocast), batch by batch, on CPU or
CUDA. An *adapter* says where the embedding is:

* ``"timm"``: ``model.forward_head(model.forward_features(x), pre_logits=True)``; the logits are
  ``model.forward_head(...)`` of the same features;
* ``"hook"`` or ``"hook:<module name>"``: the input of the classifier module (torchvision-style models: ``fc``,
  ``classifier``, ...; ``"hook"`` alone takes the last ``nn.Linear``), captured by a forward hook; the logits are
  the model's output;
* ``"auto"``: ``"timm"`` when the model has ``forward_head`` and ``forward_features``, else ``"hook"``;
* a callable ``adapter(model, batch) -> (features, logits or None)``.

With ``out`` a directory the bank is written as memory maps and the run is resumable: rows are committed one
batch at a time behind a watermark, and calling ``extract`` again with the same arguments after a kill continues
from it. Batches after a resume are the same row ranges as in an uninterrupted run, so the bank is byte-identical
(given a deterministic model).
"""
from __future__ import annotations

import hashlib
import logging
import time
from typing import Any, Callable, Dict, Iterator, Optional, Tuple, Union

import numpy as np

from transferlab.bank import BankWriter, FeatureBank, PathLike, library_versions
from transferlab.core.progress import bar

__all__ = ["extract", "weights_hash"]

logger = logging.getLogger("transferlab")

Adapter = Union[str, Callable[..., Tuple[Any, Any]]]


def _torch():
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("transferlab.extract needs torch: pip install 'transferlab[torch]'") from e
    return torch


def weights_hash(model) -> str:
    """SHA-256 of a model's state dict (names, dtypes, shapes and bytes, in name order)."""
    torch = _torch()
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.dtype == torch.bfloat16:
            t = t.view(torch.int16)
        h.update(t.numpy().tobytes())
    return h.hexdigest()


# --- adapters ------------------------------------------------------------------------------------------------

def _last_linear(model) -> str:
    torch = _torch()
    names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    if not names:
        raise ValueError("adapter='hook' found no nn.Linear classifier in the model; name the module "
                         "(adapter='hook:<module name>') or pass adapter=callable(model, batch) -> (features, logits)")
    return names[-1]


def _resolve_adapter(model, adapter: Adapter) -> Tuple[str, Callable[[Any], Tuple[Any, Any]], Callable[[], None]]:
    """(description for meta.json, run(batch) -> (features, logits), cleanup())."""
    if callable(adapter) and not isinstance(adapter, str):
        name = getattr(adapter, "__qualname__", type(adapter).__name__)
        return f"callable:{name}", lambda x: adapter(model, x), lambda: None
    if not isinstance(adapter, str):
        raise TypeError(f"adapter must be 'auto', 'timm', 'hook', 'hook:<module>' or a callable, got "
                        f"{type(adapter).__name__}")
    if adapter == "auto":
        timm_like = callable(getattr(model, "forward_head", None)) and callable(getattr(model, "forward_features", None))
        adapter = "timm" if timm_like else "hook"
    if adapter == "timm":
        if not callable(getattr(model, "forward_head", None)):
            raise ValueError("adapter='timm' needs a model with forward_features() and forward_head(pre_logits=)")

        def run_timm(x):
            fx = model.forward_features(x)
            return model.forward_head(fx, pre_logits=True), model.forward_head(fx)

        return "timm", run_timm, lambda: None
    if adapter == "hook" or adapter.startswith("hook:"):
        name = adapter[5:] if adapter.startswith("hook:") else _last_linear(model)
        try:
            module = model.get_submodule(name)
        except AttributeError:
            raise ValueError(f"adapter={adapter!r}: the model has no module named {name!r}") from None
        captured = []
        handle = module.register_forward_hook(lambda mod, inp, out: captured.append(inp[0]))

        def run_hook(x):
            captured.clear()
            logits = model(x)
            if not captured:
                raise RuntimeError(f"adapter 'hook:{name}': the module was not called in forward()")
            # The classifier's input of the *last* call (a module may be reused inside forward).
            return captured[-1], logits

        return f"hook:{name}", run_hook, handle.remove
    raise ValueError(f"adapter must be 'auto', 'timm', 'hook', 'hook:<module>' or a callable, got {adapter!r}")


# --- data ----------------------------------------------------------------------------------------------------

def _split_item(item, what: str):
    if isinstance(item, (tuple, list)) and len(item) in (2, 3):
        return item[0], item[1], (item[2] if len(item) == 3 else None)
    raise ValueError(f"{what} must yield (image, label) or (image, label, sample_id), got "
                     f"{type(item).__name__}{'' if not hasattr(item, '__len__') else ' of length %d' % len(item)}")


def _as_int64(x, what: str) -> np.ndarray:
    torch = _torch()
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.dtype.kind not in "iub" and not (a.dtype.kind == "f" and np.all(a == np.round(a))):
        raise ValueError(f"{what} must be integers, got dtype {a.dtype}")
    return a.astype(np.int64).reshape(-1)


def _batches(data, start: int, batch_size: int) -> Tuple[int, Iterator[Tuple[int, Any, Any, Any]], str]:
    """(n, iterator of (row, images, labels, sample_ids or None) from row ``start``, description)."""
    torch = _torch()
    from torch.utils.data import DataLoader, Dataset

    if isinstance(data, (tuple, list)) and len(data) in (2, 3) and hasattr(data[0], "shape"):
        return _tuple_batches(torch, data, start, batch_size)
    if isinstance(data, DataLoader):
        return _loader_batches(data, start)
    if isinstance(data, Dataset) or (hasattr(data, "__getitem__") and hasattr(data, "__len__")):
        return _dataset_batches(torch, data, start, batch_size)
    raise TypeError("data must be a torch Dataset yielding (image, label[, sample_id]), a DataLoader or an "
                    f"(images, labels[, sample_ids]) tuple, got {type(data).__name__}")


def _tuple_batches(torch, data, start: int, batch_size: int):
    """:func:`_batches` of an ``(images, labels[, sample_ids])`` tuple: slices of ``batch_size`` rows (images
    as tensors); raises when the lengths differ."""
    images, labels = data[0], data[1]
    ids = data[2] if len(data) == 3 else None
    n = int(images.shape[0])
    if len(labels) != n or (ids is not None and len(ids) != n):
        raise ValueError(f"data: images have {n} rows but labels have {len(labels)}"
                         + (f" and sample ids {len(ids)}" if ids is not None else ""))

    def it_tuple():
        for s in range(start, n, batch_size):
            e = min(n, s + batch_size)
            x = images[s:e]
            yield s, (torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x), \
                labels[s:e], (None if ids is None else ids[s:e])

    return n, it_tuple(), "tensors"


def _loader_batches(data, start: int):
    """:func:`_batches` of a DataLoader: its own batches, skipping the rows before ``start`` without running
    the model. A DataLoader over a dataset without len() or one that shuffles raises (rows must be resumable)."""
    try:
        n = len(data.dataset)
    except TypeError:
        raise ValueError("data: a DataLoader over a dataset without len() cannot be preallocated; "
                         "give a map-style Dataset") from None
    from torch.utils.data import RandomSampler

    if isinstance(getattr(data, "sampler", None), RandomSampler):
        raise ValueError("data: the DataLoader shuffles (shuffle=True), so rows would not match their "
                         "sample ids across runs and could not be resumed; use shuffle=False")

    def it_loader():
        row = 0
        for item in data:
            x, y, ids = _split_item(item, "the DataLoader")
            b = len(y)
            if row + b <= start:  # already in the bank: skip without running the model
                row += b
                continue
            if row < start:  # resume point inside this batch (only when batch sizes changed)
                k = start - row
                x, y, ids, row = x[k:], y[k:], (None if ids is None else ids[k:]), start
                b = len(y)
            yield row, x, y, ids
            row += b

    return n, it_loader(), f"DataLoader({type(data.dataset).__name__})"


def _dataset_batches(torch, data, start: int, batch_size: int):
    """:func:`_batches` of a map-style dataset: ``batch_size`` items stacked per batch."""
    n = len(data)

    def it_dataset():
        for s in range(start, n, batch_size):
            items = [_split_item(data[i], "the dataset") for i in range(s, min(n, s + batch_size))]
            xs = [torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x for x, _, _ in items]
            ys = [int(y) for _, y, _ in items]
            ids = None if items[0][2] is None else [int(i) for _, _, i in items]
            yield s, torch.stack(xs), ys, ids

    return n, it_dataset(), type(data).__name__


# --- progress ------------------------------------------------------------------------------------------------

def _progress(enabled: bool, total: int, initial: int, desc: str):
    return bar(enabled, total, desc, unit="img", initial=initial)


# --- extract -------------------------------------------------------------------------------------------------

def _to_numpy(t, what: str) -> np.ndarray:
    torch = _torch()
    if not isinstance(t, torch.Tensor):
        t = torch.as_tensor(t)
    if t.dim() > 2:
        t = t.flatten(1)
    if t.dim() != 2:
        raise ValueError(f"the adapter returned {what} of shape {tuple(t.shape)}; expected (batch, dim)")
    return t.detach().float().cpu().numpy()


def _describe(preprocessing) -> Any:
    if preprocessing is None or isinstance(preprocessing, (str, int, float, bool, dict, list)):
        return preprocessing
    desc = getattr(preprocessing, "description", None)
    if isinstance(desc, (str, dict)):
        return desc
    if callable(getattr(preprocessing, "to_dict", None)):  # e.g. transferlab.zoo.Preprocess
        return preprocessing.to_dict()
    return f"callable:{getattr(preprocessing, '__qualname__', type(preprocessing).__name__)}"


def extract(model: Any, data: Any, out: Optional[PathLike] = None, *, adapter: Adapter = "auto", batch_size: int = 128, device: str = "cpu",
            autocast: Union[bool, str] = False, model_id: Optional[str] = None, dataset_id: Optional[str] = None,
            preprocessing: Optional[Callable[[Any], Any]] = None, progress: bool = True, dtype: str = "float32", overwrite: bool = False) -> FeatureBank:
    """Extract embeddings and source logits of ``model`` on ``data`` into a :class:`FeatureBank`.

    model: a ``torch.nn.Module`` (put in eval mode for the run; its mode and device are restored after).
    data: a Dataset yielding ``(image, label[, sample_id])``, a DataLoader (not shuffling) or an
        ``(images, labels[, sample_ids])`` tuple of tensors/arrays. sample ids default to the row index.
    out: None (an in-memory bank) or a directory (memory-mapped bank; resumed when it holds an incomplete
        bank of the same model weights, adapter, dataset id and shapes; returned as is when already complete).
    adapter: see the module docstring. batch_size: rows per forward pass (and per watermark step).
    device: ``"cpu"``, ``"cuda"`` (or any torch device). autocast: False, True (bfloat16 on CPU, float16 on
        CUDA) or a torch dtype. preprocessing: a callable applied to each image batch on the device before the
        model (e.g. a zoo model's ``preprocess``), or a description to record; recorded in meta.json.
    model_id, dataset_id: the names score tables use (default: the model's class name and ``"dataset"``).
    dtype: storage dtype of features and logits (``"float32"``, ``"float16"``, ``"float64"``).
    overwrite: when ``out`` holds a bank of this model made from other data (another N, other sampled rows or
        labels: ``data_fingerprint``) or in another dtype, delete it and extract again (default: ValueError).

    The wall-clock of the forward passes (with the copy of their outputs to the host) is recorded as
    ``meta["extract_seconds"]`` (:attr:`FeatureBank.extract_seconds`): the extraction cost that
    :func:`transferlab.evaluate.cost_quality` puts beside each score's own seconds.
    """
    torch = _torch()
    dev = _check_arguments(torch, model, batch_size, device)
    model_id = model_id or type(model).__name__
    dataset_id = dataset_id or "dataset"
    wh = weights_hash(model)
    adapter_desc, run, cleanup = _resolve_adapter(model, adapter)
    identity = {"model_id": model_id, "dataset_id": dataset_id, "weights_hash": wh, "adapter": adapter_desc,
                "preprocessing": _describe(preprocessing), "model_class": type(model).__qualname__,
                "batch_size": batch_size, "autocast": str(autocast), "device": str(dev),
                "data_fingerprint": data_fingerprint(data)}
    complete, writer, start = _existing_bank(out, identity, dtype, cleanup, overwrite)
    if complete is not None:
        return complete
    n, batches, data_desc = _batches(data, start, batch_size)
    identity["data"] = data_desc
    if writer is not None and writer.n != n:
        writer.close()
        raise ValueError(f"{out} holds an incomplete bank of {writer.n} rows but data has {n}; "
                         f"choose another directory or delete it")
    dest = _Destination(out, n, dtype, identity, writer)
    _run_model(torch, model, dev, batches, run, cleanup, preprocessing, _autocast_dtype(torch, autocast, dev), dest,
               _progress(progress, n, start, model_id))
    return dest.bank()


def _check_arguments(torch, model, batch_size, device):
    """Check ``model`` is an nn.Module and ``batch_size`` a positive int; return the torch device (``"auto"``:
    CUDA when available, else the CPU)."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


_SAMPLED_ROWS = 8  # rows read to fingerprint the data: cheap whatever N, and any edited row is likely seen


def data_fingerprint(data) -> Optional[Dict[str, Any]]:
    """``{"n": rows, "sample_sha256": ...}``: the row count and a SHA-256 of 8 seeded rows (images and labels)
    of ``data``, or None when rows cannot be addressed by index. Recorded in meta.json, so that a bank
    written from other data (another N, other rows, other labels) is never returned as if it were this one."""
    torch = _torch()
    from torch.utils.data import DataLoader

    if isinstance(data, (tuple, list)) and len(data) in (2, 3) and hasattr(data[0], "shape"):
        n, row = int(data[0].shape[0]), (lambda i: (data[0][i], data[1][i]))
    else:
        ds = data.dataset if isinstance(data, DataLoader) else data
        if not (hasattr(ds, "__getitem__") and hasattr(ds, "__len__")):
            return None
        n, row = len(ds), (lambda i: tuple(ds[i])[:2])
    h = hashlib.sha256(f"n={n};".encode())
    for i in np.sort(np.random.default_rng(0).choice(n, size=min(_SAMPLED_ROWS, n), replace=False)):
        image, label = row(int(i))
        if isinstance(image, torch.Tensor):
            image = image.detach().cpu().numpy()
        image = np.ascontiguousarray(np.asarray(image))
        h.update(f"{int(i)}:{image.dtype}:{image.shape}:".encode() + image.tobytes())
        h.update(repr(np.asarray(label).tolist()).encode())
    return {"n": int(n), "sample_sha256": h.hexdigest()}


def _existing_bank(out, identity: dict, dtype: str, cleanup,
                   overwrite: bool = False) -> Tuple[Optional[FeatureBank], Optional[BankWriter], int]:
    """What ``out`` already holds: ``(complete bank, None, 0)`` when it is a complete bank of the same model,
    dataset, weights, adapter, storage dtype and data fingerprint (nothing to extract); ``(None, writer, rows
    written)`` to resume an incomplete bank; ``(None, None, 0)`` otherwise. A bank of this model written from
    other data or in another dtype raises (``overwrite=True`` deletes it and extracts again), as does a non-empty
    directory without a bank. ``cleanup`` (the adapter's) runs before returning a complete bank or raising."""
    if out is None:
        return None, None, 0
    import os
    import shutil

    p = os.fspath(out)
    if os.path.isdir(p) and os.listdir(p) and not os.path.exists(os.path.join(p, "meta.json")):
        cleanup()
        raise ValueError(f"out={p!r} is not empty and holds no feature bank; choose an empty or new directory")
    if FeatureBank.is_bank(p):
        st = FeatureBank.status(p)
        same_model = all(st.get(k) == identity[k] for k in ("model_id", "dataset_id", "weights_hash", "adapter"))
        stale = _stale_reason(st, identity, dtype, complete=bool(st["complete"]))
        if same_model and stale and overwrite:
            shutil.rmtree(p)
            return None, None, 0
        if same_model and stale:
            cleanup()
            raise ValueError(f"out={p!r} holds a bank of this model extracted from other data ({stale}); pass "
                             "overwrite=True to extract again, or choose another directory")
        if st["complete"] and same_model:
            cleanup()
            logger.info("%s: complete bank found, not extracting again", p)
            return FeatureBank.open(p), None, 0
        if not st["complete"]:
            writer = BankWriter.create_or_resume(p, n=st["n"], d=st["d"], z=st["z"], dtype=dtype,
                                                 identity=identity)
            return None, writer, writer.rows_written
    return None, None, 0


def _stale_reason(meta: dict, identity: dict, dtype: str, complete: bool = True) -> Optional[str]:
    """Why a bank's meta.json does not describe this extraction's data, or None. Banks written before
    fingerprints were recorded are checked on what they record (n, dtype). An incomplete bank's row count
    and dtype are checked where it is resumed (its own messages); its fingerprint here."""
    fp, old = identity.get("data_fingerprint"), meta.get("data_fingerprint")
    if complete and fp is not None and meta.get("n") != fp["n"]:
        return f"it has n={meta.get('n')} rows, the data has {fp['n']}"
    if complete and meta.get("dtype") != dtype:
        return f"it is stored as {meta.get('dtype')}, dtype={dtype!r} was asked for"
    if fp is not None and old is not None and old != fp:
        return "the sampled rows or labels differ"
    return None


def _autocast_dtype(torch, autocast, dev):
    """The autocast dtype: None (off), float16 on CUDA / bfloat16 on the CPU for ``True``, else ``autocast``."""
    if autocast is True:
        return torch.float16 if dev.type == "cuda" else torch.bfloat16
    if autocast:
        return autocast
    return None


def _run_model(torch, model, dev, batches, run, cleanup, preprocessing, ac_dtype, dest: "_Destination",
               bar) -> None:
    """Run ``model`` in eval mode on ``dev`` under inference mode over ``batches``, writing each batch to
    ``dest``. Whatever happens, the adapter's ``cleanup`` runs, the bar closes, the model gets back its device
    and mode, and an incomplete writer is closed (so that a later call resumes)."""
    was_training = model.training
    params = list(model.parameters())
    old_device = params[0].device if params else None
    try:
        model.eval()
        if old_device is not None and old_device != dev:
            model.to(dev)
        with torch.inference_mode():
            for row, x, y, ids in batches:
                # The forward pass and the copy back to the host (which waits for a GPU to finish) are the
                # proxy's extraction cost (Renggli et al.); loading the batch and writing the bank are not.
                t0 = time.perf_counter()
                f, z = _forward(torch, run, x, dev, preprocessing, ac_dtype)
                f, z, y, ids = _batch_arrays(row, f, z, y, ids)
                dest.write(row, f, z, y, ids, seconds=time.perf_counter() - t0)
                if bar is not None:
                    bar.update(f.shape[0])
    finally:
        cleanup()
        if bar is not None:
            bar.close()
        if old_device is not None and old_device != dev:
            model.to(old_device)
        model.train(was_training)
        dest.close_if_incomplete()


def _forward(torch, run, x, dev, preprocessing, ac_dtype):
    """(features, logits or None) of one image batch: moved to ``dev``, preprocessed, run by the adapter
    (under autocast when ``ac_dtype`` is set)."""
    x = x.to(dev, non_blocking=True)
    if callable(preprocessing):
        x = preprocessing(x)
    if ac_dtype is not None:
        with torch.autocast(dev.type, dtype=ac_dtype):
            f, z = run(x)
    else:
        f, z = run(x)
    return f, z


def _batch_arrays(row: int, f, z, y, ids):
    """The batch as numpy: features and logits (N x dim float), labels and sample ids (int64); raises when
    their row counts differ."""
    f = _to_numpy(f, "features")
    z = None if z is None else _to_numpy(z, "logits")
    y = _as_int64(y, "labels")
    ids = None if ids is None else _as_int64(ids, "sample ids")
    if len(y) != f.shape[0] or (z is not None and z.shape[0] != f.shape[0]):
        raise ValueError(f"batch at row {row}: {f.shape[0]} feature rows, {len(y)} labels"
                         + ("" if z is None else f", {z.shape[0]} logit rows"))
    return f, z, y, ids


class _Destination:
    """Where the extracted rows go: in-memory arrays when ``out`` is None, else a :class:`BankWriter` on ``out``
    (the resumed one, or one created once the first batch gives the shapes); :meth:`bank` gives the result."""

    def __init__(self, out, n: int, dtype: str, identity: dict, writer: Optional[BankWriter]):
        self.out, self.n, self.dtype, self.identity, self.writer = out, n, dtype, identity, writer
        self.mem: Optional[dict] = None
        self.seconds = 0.0  # forward-pass seconds of an in-memory bank (a writer keeps them in meta.json)

    def write(self, row: int, f: np.ndarray, z: Optional[np.ndarray], y: np.ndarray,
              ids: Optional[np.ndarray], seconds: float = 0.0) -> None:
        """Store the rows ``row .. row + len(f)``, which took ``seconds`` of forward pass."""
        if self.out is None:
            self._write_memory(row, f, z, y, ids)
            self.seconds += seconds
            return
        if self.writer is None:  # shapes are known once the first batch has run
            self.writer = BankWriter.create_or_resume(self.out, n=self.n, d=f.shape[1],
                                                      z=None if z is None else z.shape[1],
                                                      dtype=self.dtype, identity=self.identity)
        self.writer.write(row, f, y, logits=z, sample_ids=ids, seconds=seconds)

    def _write_memory(self, row: int, f, z, y, ids) -> None:
        """Store rows in the in-memory arrays, allocated at the first batch (sample ids default to the row)."""
        n, dtype = self.n, self.dtype
        if self.mem is None:
            self.mem = {"features": np.empty((n, f.shape[1]), dtype), "labels": np.empty(n, np.int64),
                        "sample_ids": np.arange(n, dtype=np.int64),
                        "logits": None if z is None else np.empty((n, z.shape[1]), dtype)}
        mem = self.mem
        sl = slice(row, row + f.shape[0])
        mem["features"][sl], mem["labels"][sl] = f, y
        if z is not None:
            mem["logits"][sl] = z
        if ids is not None:
            mem["sample_ids"][sl] = ids

    def close_if_incomplete(self) -> None:
        """Close a writer that has not received every row (the bank stays resumable)."""
        if self.writer is not None and self.writer.rows_written != self.writer.n:
            self.writer.close()

    def bank(self) -> FeatureBank:
        """The finished bank: built from the in-memory arrays, or the writer's finalized bank. Raises when
        data was empty or yielded fewer rows than its length."""
        if self.out is None:
            mem, n = self.mem, self.n
            if mem is None:
                raise ValueError("data is empty: nothing to extract")
            meta = dict(self.identity, n=n, d=int(mem["features"].shape[1]),
                        z=None if mem["logits"] is None else int(mem["logits"].shape[1]),
                        has_logits=mem["logits"] is not None, dtype=self.dtype, complete=True, rows_written=n,
                        library_versions=library_versions(), extract_seconds=self.seconds)
            return FeatureBank(mem["features"], mem["labels"], logits=mem["logits"], sample_ids=mem["sample_ids"],
                               meta=meta, path=None)
        if self.writer is None:
            raise ValueError("data is empty: nothing to extract")
        if self.writer.rows_written != self.writer.n:
            raise ValueError(f"data yielded {self.writer.rows_written} rows but its length is {self.writer.n}")
        return self.writer.finalize()
