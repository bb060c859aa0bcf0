"""Hugging Face models for :func:`~transferlab.front.rank_models`: loaded offline, run with every hidden state.

* :func:`load` loads a model id or local directory with ``local_files_only=True`` (never a network call: a model
  that is not on disk raises ValueError saying so), and its tokenizer (text) or image processor (vision).
* :func:`hidden_states_adapter` is an adapter for :func:`transferlab.extract`: one forward pass with
  ``output_hidden_states=True`` (the encoder's, for encoder-decoder models), each hidden state pooled to one vector
  per row, and the pooled states concatenated side by side, ``hidden_states[0]`` (the embedding output) first. A
  bank row thus holds ``n_states`` blocks of equal width, and layer ``i`` is the column block ``i``.

Pooling of a (batch, tokens, width) state, over the non-padding tokens given by ``attention_mask`` (every token
for images): ``"mean"`` their mean, ``"first"`` the first of them (``[CLS]`` for BERT-like and ViT models),
``"last"`` the last of them (for causal LMs: the only token that has read the whole text). Convolutional states
(batch, channels, height, width) are averaged over space whatever ``pooling`` says.
"""
from __future__ import annotations

import contextlib
import copy
from typing import Any, Callable, Iterator, Optional, Tuple

POOLINGS = ("mean", "first", "last")

__all__ = ["POOLINGS", "load", "quiet_loading", "is_hf_model", "hidden_states_adapter", "n_hidden_states",
           "text_collate", "image_collate", "max_length_of"]


def _transformers():
    try:
        import transformers
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("Hugging Face models need transformers: pip install 'transferlab[hf]'") from e
    return transformers


def is_hf_model(obj: Any) -> bool:
    """True for a ``transformers`` PreTrainedModel instance."""
    return hasattr(obj, "config") and type(obj).__module__.startswith("transformers.")


@contextlib.contextmanager
def quiet_loading(enabled: bool) -> Iterator[None]:
    """Silence transformers' own progress bars (weight loading) when ``enabled``; restored after."""
    try:
        import transformers
    except ImportError:  # nothing to silence
        transformers = None
    if not enabled or transformers is None:
        yield
        return
    hf_logging = transformers.utils.logging
    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def _processor(source: str, name: str) -> Tuple[str, Any]:
    """(``"text"`` or ``"image"``, the tokenizer or image processor found for ``source``)."""
    transformers = _transformers()
    errors = []
    for kind, cls in (("text", transformers.AutoTokenizer), ("image", transformers.AutoImageProcessor)):
        try:
            return kind, cls.from_pretrained(source, local_files_only=True)
        except Exception as e:  # noqa: BLE001 - each Auto class fails its own way on the other kind of model
            errors.append(f"{cls.__name__}: {type(e).__name__}: {e}")
    raise ValueError(f"models[{name!r}]: found no tokenizer or image processor for {source!r} "
                     f"({'; '.join(errors)[:400]}); pass (model, tokenizer) instead")


def load(spec: Any, name: str) -> Tuple[Any, str, Any]:
    """(model, ``"text"`` | ``"image"``, tokenizer or processor) of a model id, a local directory, a
    PreTrainedModel, or a ``(model, tokenizer_or_processor)`` pair, never downloading anything."""
    transformers = _transformers()
    if isinstance(spec, tuple):
        model, proc = spec
        kind = "image" if hasattr(proc, "image_mean") or "ImageProcessor" in type(proc).__name__ else "text"
        return model, kind, proc
    if is_hf_model(spec):
        kind, proc = _processor(spec.name_or_path, name)
        return spec, kind, proc
    try:
        transformers.AutoConfig.from_pretrained(spec, local_files_only=True)
    except (OSError, ValueError) as e:
        raise ValueError(f"models[{name!r}]: {spec!r} is neither a local Hugging Face model directory nor in the "
                         f"local Hugging Face cache (transferlab never downloads: fetch it first, e.g. "
                         f"`hf download {spec}`)") from e
    import torch

    with torch.random.fork_rng(devices=[]):
        # Weights missing from a checkpoint (often an unused pooler) are initialised at random on load; seeded,
        # they are the same on every load, so the weights hash extract checks lets the cache be reused.
        torch.manual_seed(0)
        model = transformers.AutoModel.from_pretrained(spec, local_files_only=True)
    kind, proc = _processor(spec, name)
    return model, kind, proc


def n_hidden_states(model: Any, name: str) -> int:
    """How many hidden states a forward pass returns: the layers plus the embedding output."""
    layers = getattr(model.config, "num_hidden_layers", None)
    if not isinstance(layers, int) or layers < 1:
        raise ValueError(f"models[{name!r}]: its config does not say num_hidden_layers, so its hidden states "
                         "cannot be laid out per layer; wrap it in a callable returning features")
    return layers + 1


def max_length_of(model: Any, tokenizer: Any, max_length: Optional[int]) -> int:
    """Tokens kept per text: ``max_length``, else the tokenizer's limit (many configs say 1e30: then 512),
    never more than the model's position embeddings."""
    if max_length is not None:
        return int(max_length)
    limit = getattr(tokenizer, "model_max_length", None) or 512
    limit = limit if limit < 1_000_000 else 512
    positions = getattr(model.config, "max_position_embeddings", None)
    return int(min(limit, positions) if isinstance(positions, int) and positions > 0 else limit)


def text_collate(tokenizer: Any, max_length: int) -> Callable:
    """DataLoader collate of ``(text, label)`` items: (padded BatchEncoding, labels)."""
    import torch

    if getattr(tokenizer, "pad_token", None) is None:
        # GPT-2-like tokenizers have no padding token; padded positions are masked out of the pooling anyway.
        tokenizer = copy.deepcopy(tokenizer)
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token

    def collate(items):
        texts = [t for t, _ in items]
        enc = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        return enc, torch.as_tensor([int(y) for _, y in items])

    return collate


def image_collate(processor: Any) -> Callable:
    """DataLoader collate of ``(image, label)`` items: (the processor's BatchFeature, labels)."""
    import torch

    def collate(items):
        images = [im.convert("RGB") if hasattr(im, "convert") else im for im, _ in items]
        return processor(images=images, return_tensors="pt"), torch.as_tensor([int(y) for _, y in items])

    return collate


def _pool(torch, h, mask, pooling: str):
    """One hidden state (batch, tokens, width) or (batch, channels, h, w) pooled to (batch, width), float32."""
    h = h.float()
    if h.dim() == 4:
        return h.mean(dim=(2, 3))
    if h.dim() == 2:
        return h
    if mask is None:
        mask = torch.ones(h.shape[:2], dtype=torch.long, device=h.device)
    m = mask.to(h.device)
    rows = torch.arange(h.shape[0], device=h.device)
    if pooling == "first":  # the first non-padding token (left or right padding alike)
        return h[rows, m.argmax(dim=1)]
    if pooling == "last":  # the last non-padding token
        return h[rows, h.shape[1] - 1 - m.flip(1).argmax(dim=1)]
    w = m.to(h.dtype).unsqueeze(-1)
    return (h * w).sum(dim=1) / w.sum(dim=1).clamp(min=1.0)


def hidden_states_adapter(pooling: str, n_states: int, encoder_only: bool) -> Callable:
    """extract adapter ``(model, batch) -> (pooled hidden states side by side, None)``; its ``__qualname__``
    (recorded in the bank's meta.json as the adapter) names the pooling and the layout."""
    import torch

    def run(model, x):
        body = model.get_encoder() if encoder_only else model
        if isinstance(x, torch.Tensor):  # pixel values prepared by the caller
            mask, out = None, body(pixel_values=x, output_hidden_states=True)
        else:
            kw = dict(x)
            mask = kw.get("attention_mask")
            out = body(**kw, output_hidden_states=True)
        states = out.hidden_states
        if len(states) != n_states:
            raise ValueError(f"the model returned {len(states)} hidden states, its config says {n_states}")
        pooled = [_pool(torch, h, mask, pooling) for h in states]
        widths = sorted({p.shape[1] for p in pooled})
        if len(widths) > 1:
            raise ValueError(f"hidden states of different widths {widths} cannot be stored per layer; wrap the "
                             "model in a callable returning features")
        return torch.cat(pooled, dim=1), None

    run.__qualname__ = f"hidden_states(pooling={pooling},states={n_states})"
    return run
