"""Reading score and fine-tune tables (CSV files or in-memory), long or wide.

Score tables (``score -> dataset -> model -> value``):
- long: columns ``dataset, model, score, value`` (``score`` may also be called ``metric``);
- wide: columns ``dataset, model`` and one column per score (Model-Spider's ``baseline_results.csv``).
Fine-tune tables (``dataset -> model -> accuracy``):
- long: columns ``dataset, model, accuracy`` (or ``acc``, ``finetune``, ``value``);
- wide: column ``model`` and one column per dataset (the tllib and SFDA tables).

Headers match case-insensitively. Dataset names are normalised to lower case (stripped), so ``Pet`` in one file
and ``pet`` in another are the same dataset, and a few published spellings of one benchmark are aliased
(:data:`DATASET_ALIASES`: ``pet`` -> ``pets``, ``car`` -> ``cars``, ...); model and score names are kept exactly (stripped). An empty cell
means "not measured" (the entry is absent); ``nan`` is kept as NaN (ranking functions then raise unless
``nan_policy="omit"``). A duplicated entry raises, naming the file and line.
"""
from __future__ import annotations

import csv
import io
import os
from typing import Dict, Iterable, List, Mapping, Tuple, Union

__all__ = ["DATASET_ALIASES", "FinetuneTable", "ScoreTable", "normalize_dataset", "read_finetune", "read_scores"]

ScoreTable = Dict[str, Dict[str, Dict[str, float]]]
FinetuneTable = Dict[str, Dict[str, float]]

_SCORE_COL = ("score", "metric", "score_name")
_VALUE_COL = ("value",)
_ACC_COL = ("accuracy", "acc", "finetune", "finetune_accuracy", "value")


#: Spellings of the same benchmark dataset in published tables (lower-case key -> canonical name). Model-Spider
#: writes ``Pet`` where tllib and SFDA write ``pets``; extend with ``aliases=`` where your files differ more.
DATASET_ALIASES: Dict[str, str] = {
    "pet": "pets", "oxford_pets": "pets", "oxford-iiit-pet": "pets", "oxford_iiit_pet": "pets",
    "car": "cars", "stanford_cars": "cars", "stanfordcars": "cars",
    "flower": "flowers", "flowers102": "flowers", "oxford_flowers102": "flowers",
    "fgvc_aircraft": "aircraft", "fgvc-aircraft": "aircraft",
    "food101": "food", "food-101": "food",
    "sun": "sun397", "voc": "voc2007",
}


def normalize_dataset(name: str, aliases: Mapping[str, str] = None) -> str:
    """The canonical dataset key: stripped, lower-cased, then mapped through ``aliases`` (default
    :data:`DATASET_ALIASES`; keys compare lower-cased), so ``"Pet"``, ``"pet"`` and ``"pets"`` are one dataset."""
    key = str(name).strip().lower()
    table = DATASET_ALIASES if aliases is None else {str(k).strip().lower(): v for k, v in aliases.items()}
    return str(table.get(key, key)).strip().lower()


def _read_csv(path) -> Tuple[List[str], List[Tuple[int, List[str]]], str]:
    p = os.fspath(path)
    try:
        with open(p, encoding="utf-8-sig", newline="") as f:
            text = f.read()
    except FileNotFoundError:
        raise ValueError(f"file not found: {p}") from None
    except IsADirectoryError:
        raise ValueError(f"{p} is a directory; give a CSV file") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{p} is not a UTF-8 text CSV (byte {e.start}: {e.reason})") from None
    rows = [(i + 1, [c.strip() for c in r]) for i, r in enumerate(csv.reader(io.StringIO(text)))]
    rows = [(i, r) for i, r in rows if any(r)]
    if not rows:
        raise ValueError(f"{p}: empty CSV file")
    return rows[0][1], rows[1:], p


def _num(cell: str, where: str) -> float:
    try:
        return float(cell)
    except ValueError:
        raise ValueError(f"{where}: not a number: {cell!r}") from None


def _find(header_low: List[str], names: Iterable[str]):
    for n in names:
        if n in header_low:
            return header_low.index(n)
    return None


def _put(table: dict, keys: Tuple[str, ...], value: float, where: str) -> None:
    d = table
    for k in keys[:-1]:
        d = d.setdefault(k, {})
    if keys[-1] in d:
        raise ValueError(f"{where}: duplicate entry for {' / '.join(map(repr, keys))}")
    d[keys[-1]] = value


def read_scores(source: Union[str, "os.PathLike[str]", Mapping, Iterable]) -> ScoreTable:
    """A score table from a CSV path (long or wide), a nested mapping ``{score: {dataset: {model: value}}}``
    or an iterable of long rows ``(dataset, model, score, value)``."""
    table: ScoreTable = {}
    if isinstance(source, Mapping):
        for score, per_ds in source.items():
            if not isinstance(per_ds, Mapping):
                raise TypeError(f"scores[{score!r}] must be a mapping {{dataset: {{model: value}}}}")
            for ds, per_model in per_ds.items():
                if not isinstance(per_model, Mapping):
                    raise TypeError(f"scores[{score!r}][{ds!r}] must be a mapping {{model: value}}")
                for model, v in per_model.items():
                    _put(table, (str(score), normalize_dataset(ds), str(model)), float(v), "scores")
        return table
    if isinstance(source, (str, os.PathLike)):
        header, rows, p = _read_csv(source)
        low = [h.lower() for h in header]
        i_ds, i_model = _find(low, ("dataset",)), _find(low, ("model",))
        if i_ds is None or i_model is None:
            raise ValueError(f"{p}: a score table needs 'dataset' and 'model' columns, got {header}")
        i_score, i_value = _find(low, _SCORE_COL), _find(low, _VALUE_COL)
        if i_score is not None and i_value is not None:  # long
            for line, r in rows:
                where = f"{p}:{line}"
                if len(r) != len(header):
                    raise ValueError(f"{where}: expected {len(header)} cells, got {len(r)}")
                if r[i_value] == "":
                    continue
                _put(table, (r[i_score], normalize_dataset(r[i_ds]), r[i_model]),
                     _num(r[i_value], where), where)
            return table
        score_cols = [i for i in range(len(header)) if i not in (i_ds, i_model)]
        if not score_cols:
            raise ValueError(f"{p}: no score columns (expected long 'dataset,model,score,value' or wide "
                             f"'dataset,model,<score>...'), got {header}")
        for line, r in rows:
            where = f"{p}:{line}"
            if len(r) != len(header):
                raise ValueError(f"{where}: expected {len(header)} cells, got {len(r)}")
            for i in score_cols:
                if r[i] != "":
                    _put(table, (header[i], normalize_dataset(r[i_ds]), r[i_model]), _num(r[i], where), where)
        return table
    for k, row in enumerate(source):
        if len(row) != 4:
            raise ValueError(f"scores row {k}: expected (dataset, model, score, value), got {row!r}")
        ds, model, score, v = row
        _put(table, (str(score), normalize_dataset(ds), str(model)), float(v), f"scores row {k}")
    return table


def read_finetune(source: Union[str, "os.PathLike[str]", Mapping, Iterable]) -> FinetuneTable:
    """A fine-tune table from a CSV path (long or wide), a mapping ``{dataset: {model: accuracy}}`` or an
    iterable of long rows ``(dataset, model, accuracy)``."""
    table: FinetuneTable = {}
    if isinstance(source, Mapping):
        for ds, per_model in source.items():
            if not isinstance(per_model, Mapping):
                raise TypeError(f"finetune[{ds!r}] must be a mapping {{model: accuracy}}")
            for model, v in per_model.items():
                _put(table, (normalize_dataset(ds), str(model)), float(v), "finetune")
        return table
    if isinstance(source, (str, os.PathLike)):
        header, rows, p = _read_csv(source)
        low = [h.lower() for h in header]
        i_ds, i_model = _find(low, ("dataset",)), _find(low, ("model",))
        if i_model is None:
            raise ValueError(f"{p}: a fine-tune table needs a 'model' column, got {header}")
        if i_ds is not None:  # long
            i_acc = _find(low, _ACC_COL)
            if i_acc is None or len(header) != 3:
                raise ValueError(f"{p}: a long fine-tune table has columns 'dataset,model,accuracy', got "
                                 f"{header} (is this a score table?)")
            for line, r in rows:
                where = f"{p}:{line}"
                if len(r) != len(header):
                    raise ValueError(f"{where}: expected {len(header)} cells, got {len(r)}")
                if r[i_acc] != "":
                    _put(table, (normalize_dataset(r[i_ds]), r[i_model]), _num(r[i_acc], where), where)
            return table
        ds_cols = [i for i in range(len(header)) if i != i_model]
        if not ds_cols:
            raise ValueError(f"{p}: no dataset columns, got {header}")
        for line, r in rows:
            where = f"{p}:{line}"
            if len(r) != len(header):
                raise ValueError(f"{where}: expected {len(header)} cells, got {len(r)}")
            for i in ds_cols:
                if r[i] != "":
                    _put(table, (normalize_dataset(header[i]), r[i_model]), _num(r[i], where), where)
        return table
    for k, row in enumerate(source):
        if len(row) != 3:
            raise ValueError(f"finetune row {k}: expected (dataset, model, accuracy), got {row!r}")
        ds, model, v = row
        _put(table, (normalize_dataset(ds), str(model)), float(v), f"finetune row {k}")
    return table
