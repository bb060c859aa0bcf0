"""Model pools: the model cards a selection strategy sees before any fine-tuning.

A *model card* (Renggli et al., Sec. 4) records what is known about a pre-trained model without touching the
target data: its name, representation dimension, parameter count, upstream (ImageNet) top-1 accuracy and
upstream dataset size when known, and free-form tags (architecture, upstream data, expert domain).

    pool = ModelPool.from_json("cards.json")       # or ModelPool.imagenet_cnns() (shipped cards)
    pool.paper_pool("ResNet-50")                   # models no larger than the reference ResNet-50
    pool.filter(tags=["expert"], max_dim=2048)     # any combination of filters

JSON: ``{"models": [{"name": ..., "dim": ..., ...}, ...]}`` (a bare list of cards is accepted too).
CSV: header ``name,dim,n_params,upstream_accuracy,upstream_size,tags``; empty cells are unknown; tags are
separated by ``;``.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple, Union

__all__ = ["ModelCard", "ModelPool", "PAPER_POOLS"]

PathLike = Union[str, "os.PathLike[str]"]

_FIELDS = ("name", "dim", "n_params", "upstream_accuracy", "upstream_size", "tags")

#: The model pools of Renggli et al. (Sec. 4.2), as filters over a pool's cards.
PAPER_POOLS = ("All", "ResNet-50", "Expert", "Dim2048", "ImNetAccuracies")


def _opt_int(value, what: str, name: str) -> Optional[int]:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    if isinstance(value, bool):
        raise TypeError(f"{what} of model {name!r} must be an integer, got a bool")
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} of model {name!r} must be an integer, got {value!r}") from None
    if not math.isfinite(f) or f != int(f) or f <= 0:
        raise ValueError(f"{what} of model {name!r} must be a positive integer, got {value!r}")
    return int(f)


def _opt_float(value, what: str, name: str) -> Optional[float]:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} of model {name!r} must be a number, got {value!r}") from None
    if not math.isfinite(f):
        raise ValueError(f"{what} of model {name!r} must be finite, got {value!r}")
    return f


@dataclass(frozen=True)
class ModelCard:
    """What is known about one pre-trained model before fine-tuning.

    name: unique id (matches the model column of score and fine-tune tables).
    dim: representation dimension D; n_params: parameter count.
    upstream_accuracy: upstream (ImageNet) top-1 accuracy, in the unit of the source (torchvision: %).
    upstream_size: number of upstream training images.
    tags: free-form labels (``"resnet50"``, ``"expert"``, ``"imagenet"``, an expert's domain, ...).
    Unknown numeric fields are ``None``.
    """

    name: str
    dim: Optional[int] = None
    n_params: Optional[int] = None
    upstream_accuracy: Optional[float] = None
    upstream_size: Optional[int] = None
    tags: Tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"model card name must be a non-empty string, got {self.name!r}")
        object.__setattr__(self, "dim", _opt_int(self.dim, "dim", self.name))
        object.__setattr__(self, "n_params", _opt_int(self.n_params, "n_params", self.name))
        object.__setattr__(self, "upstream_accuracy",
                           _opt_float(self.upstream_accuracy, "upstream_accuracy", self.name))
        object.__setattr__(self, "upstream_size", _opt_int(self.upstream_size, "upstream_size", self.name))
        tags = self.tags
        if isinstance(tags, str):
            tags = [t for t in tags.split(";")]
        tags = tuple(str(t).strip() for t in (tags or ()) if str(t).strip())
        object.__setattr__(self, "tags", tags)

    @classmethod
    def from_dict(cls, d: Mapping) -> "ModelCard":
        unknown = set(d) - set(_FIELDS)
        if unknown:
            raise ValueError(f"model card has unknown fields {sorted(unknown)}; expected a subset of {_FIELDS}")
        if "name" not in d:
            raise ValueError(f"model card without a 'name': {dict(d)!r}")
        return cls(**{k: d[k] for k in _FIELDS if k in d})

    def to_dict(self) -> Dict[str, object]:
        return {"name": self.name, "dim": self.dim, "n_params": self.n_params,
                "upstream_accuracy": self.upstream_accuracy, "upstream_size": self.upstream_size,
                "tags": list(self.tags)}


class ModelPool:
    """An ordered collection of :class:`ModelCard` with unique names."""

    def __init__(self, cards: Iterable[Union[ModelCard, Mapping]]):
        out: List[ModelCard] = []
        seen = set()
        for c in cards:
            card = c if isinstance(c, ModelCard) else ModelCard.from_dict(c)
            if card.name in seen:
                raise ValueError(f"duplicate model name {card.name!r} in the pool")
            seen.add(card.name)
            out.append(card)
        self._cards: Tuple[ModelCard, ...] = tuple(out)
        self._by_name = {c.name: c for c in out}

    # --- container protocol -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._cards)

    def __iter__(self) -> Iterator[ModelCard]:
        return iter(self._cards)

    def __contains__(self, name) -> bool:
        return name in self._by_name

    def __getitem__(self, key: Union[int, str]) -> ModelCard:
        if isinstance(key, str):
            try:
                return self._by_name[key]
            except KeyError:
                raise KeyError(f"no model named {key!r} in the pool") from None
        return self._cards[key]

    def __eq__(self, other) -> bool:
        return isinstance(other, ModelPool) and self._cards == other._cards

    def __repr__(self) -> str:
        return f"ModelPool({len(self)} models: {', '.join(self.names[:6])}{', ...' if len(self) > 6 else ''})"

    @property
    def names(self) -> List[str]:
        return [c.name for c in self._cards]

    # --- subsets ------------------------------------------------------------------------------------------
    def subset(self, names: Iterable[str]) -> "ModelPool":
        """The cards of ``names``, in the pool's order; unknown names raise, listing them."""
        names = list(names)
        missing = sorted(set(names) - set(self._by_name))
        if missing:
            raise ValueError(f"models not in the pool: {missing}")
        keep = set(names)
        return ModelPool(c for c in self._cards if c.name in keep)

    def filter(self, *, tags: Optional[Iterable[str]] = None, any_tags: Optional[Iterable[str]] = None,
               exclude_tags: Optional[Iterable[str]] = None, max_params: Optional[int] = None,
               max_dim: Optional[int] = None, has_upstream_accuracy: Optional[bool] = None,
               where: Optional[Callable[[ModelCard], bool]] = None) -> "ModelPool":
        """Cards that pass every given filter (tags compare case-insensitively).

        tags: all of these; any_tags: at least one; exclude_tags: none of these; max_params / max_dim: at most
        this many (cards where the field is unknown are dropped); has_upstream_accuracy: known or unknown;
        where: any predicate on the card.
        """
        def low(ts):
            return {t.lower() for t in ts}

        req = low(tags) if tags is not None else None
        anyt = low(any_tags) if any_tags is not None else None
        excl = low(exclude_tags) if exclude_tags is not None else None
        out = []
        for c in self._cards:
            ct = low(c.tags)
            if req is not None and not req <= ct:
                continue
            if anyt is not None and not (anyt & ct):
                continue
            if excl is not None and (excl & ct):
                continue
            if max_params is not None and (c.n_params is None or c.n_params > max_params):
                continue
            if max_dim is not None and (c.dim is None or c.dim > max_dim):
                continue
            if has_upstream_accuracy is not None and (c.upstream_accuracy is not None) != has_upstream_accuracy:
                continue
            if where is not None and not where(c):
                continue
            out.append(c)
        return ModelPool(out)

    def paper_pool(self, name: str, *, reference: str = "resnet50") -> "ModelPool":
        """One of Renggli et al.'s pools (Sec. 4.2) as a filter over this pool.

        ``"All"``: every card. ``"ResNet-50"``: cards with at most as many parameters as the ``reference`` card
        (their ResNet50-V2). ``"Expert"``: cards tagged ``expert``. ``"Dim2048"``: representation dimension at
        most 2048. ``"ImNetAccuracies"``: cards with a known upstream (ImageNet) accuracy.
        Names compare case-insensitively, ignoring ``-`` and ``_``.
        """
        key = name.lower().replace("-", "").replace("_", "")
        if key == "all":
            return ModelPool(self._cards)
        if key == "resnet50":
            if reference not in self._by_name or self._by_name[reference].n_params is None:
                raise ValueError(f"the ResNet-50 pool needs a reference card {reference!r} with n_params "
                                 f"(pass reference=<name of your ResNet-50 card>)")
            return self.filter(max_params=self._by_name[reference].n_params)
        if key == "expert":
            return self.filter(tags=["expert"])
        if key == "dim2048":
            return self.filter(max_dim=2048)
        if key == "imnetaccuracies":
            return self.filter(has_upstream_accuracy=True)
        raise ValueError(f"unknown paper pool {name!r}; expected one of {PAPER_POOLS}")

    # --- I/O ----------------------------------------------------------------------------------------------
    @classmethod
    def from_json(cls, path_or_text: Union[PathLike, str]) -> "ModelPool":
        """Read cards from a JSON file (``{"models": [...]}`` or a list of cards)."""
        text, where = _read_text(path_or_text, ".json")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: not valid JSON ({e})") from None
        if isinstance(data, Mapping):
            if "models" not in data:
                raise ValueError(f"{where}: expected a list of model cards or an object with a 'models' list")
            data = data["models"]
        if not isinstance(data, list):
            raise ValueError(f"{where}: 'models' must be a list of model cards")
        return cls(data)

    def to_json(self, path: Optional[PathLike] = None) -> str:
        """The cards as JSON (written to ``path`` when given); round-trips through :meth:`from_json`."""
        text = json.dumps({"models": [c.to_dict() for c in self._cards]}, indent=2) + "\n"
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        return text

    @classmethod
    def from_csv(cls, path_or_text: Union[PathLike, str]) -> "ModelPool":
        """Read cards from CSV with header ``name,dim,n_params,upstream_accuracy,upstream_size,tags``
        (only ``name`` is required; tags separated by ``;``)."""
        text, where = _read_text(path_or_text, ".csv")
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames is None or "name" not in [h.strip() for h in reader.fieldnames]:
            raise ValueError(f"{where}: a model-card CSV needs a 'name' column, got {reader.fieldnames}")
        cards = []
        for row in reader:
            row = {k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k}
            cards.append(ModelCard.from_dict(row))
        return cls(cards)

    def to_csv(self, path: Optional[PathLike] = None) -> str:
        """The cards as CSV (written to ``path`` when given); round-trips through :meth:`from_csv`."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(_FIELDS)
        for c in self._cards:
            w.writerow([c.name, _cell(c.dim), _cell(c.n_params), _cell(c.upstream_accuracy),
                        _cell(c.upstream_size), ";".join(c.tags)])
        text = buf.getvalue()
        if path is not None:
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(text)
        return text

    @classmethod
    def load(cls, path: PathLike) -> "ModelPool":
        """:meth:`from_json` or :meth:`from_csv` by file extension."""
        p = os.fspath(path)
        if p.lower().endswith(".csv"):
            return cls.from_csv(p)
        return cls.from_json(p)

    @classmethod
    def imagenet_cnns(cls) -> "ModelPool":
        """The shipped cards of 11 torchvision ImageNet CNNs (googlenet, inception_v3, resnet34/50/101/152,
        densenet121/169/201, mobilenet_v2, mnasnet1_0) with their documented top-1 accuracy and size."""
        from importlib import resources

        text = resources.files("transferlab").joinpath("data", "imagenet_cnns.json").read_text("utf-8")
        return cls.from_json(text)


def _cell(v) -> str:
    return "" if v is None else repr(v) if isinstance(v, float) else str(v)


def _read_text(path_or_text, ext: str) -> Tuple[str, str]:
    """Text of a file, or the argument itself when it is already the content (starts like JSON/CSV data)."""
    if isinstance(path_or_text, str) and ("\n" in path_or_text or path_or_text.lstrip()[:1] in "[{"):
        return path_or_text, "<text>"
    p = os.fspath(path_or_text)
    try:
        with open(p, encoding="utf-8") as f:
            return f.read(), p
    except FileNotFoundError:
        raise ValueError(f"model-card file not found: {p}") from None
