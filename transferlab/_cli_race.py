"""``transferlab race``: :func:`transferlab.select.race` at the command line.

    transferlab race resnet.npy vit.npy effnet.npy --labels labels.npy        # memory-mapped, never copied whole
    transferlab race banks/animal-10 --delta 0.01 --json race.json            # every bank under a directory

Contract:
* INPUTs are read exactly as ``transferlab score`` / ``rank`` read them (``_cli_pool._inputs``: bank directories,
  directories holding banks, ``.npy`` / ``.npz`` / CSV arrays with ``--labels``; ``.npy`` files stay memory maps)
  and named as they name them (a bank's model_id, an array file's stem). Every model must hold the same N rows of
  one dataset (same labels, same sample ids), else one error line.
* The race is ``tl.select.race`` called with those features, the shared labels and the flags' values, nothing
  else: the printed choice, estimates and rows are the library's (tests/bank/test_cli_race.py checks equality).
  Models race in input order (a directory's banks sorted by path), which breaks exact ties, as the library does.
* Every bad invocation is one line in flag terms with exit status 2 (``cli.main`` prints the ValueError /
  TypeError raised here); the options are checked (``race._check_options``) before any input is read, so a typo
  in a flag costs nothing on a million-row bank. Numeric flags are parsed here, not by argparse (whose type
  errors print the usage block too), so "--delta abc" is also one line.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from typing import TYPE_CHECKING, Any, Dict, List, Tuple

if TYPE_CHECKING:
    from transferlab.race import RaceResult

__all__ = ["add_race_parser", "result_dict"]


def add_race_parser(sub: "argparse._SubParsersAction") -> None:
    """Add the ``race`` subcommand to an argparse subparsers object."""
    from transferlab._cli_pool import _FORMATTER, _wrap

    rc = sub.add_parser(
        "race", formatter_class=_FORMATTER,
        help="the best model of a pool by knn_loo on growing random rows, with a stated guarantee",
        description=_wrap("Race the models on the same growing random rows and stop as soon as the leader is, with "
                          "probability at least 1 - DELTA, within EPSILON of the best model's exhaustive score, "
                          "instead of scoring every row of every model (the rule and its proof: "
                          "transferlab/race.py). Prints each model's estimate, confidence interval, the rows it "
                          "used and when it was eliminated; the chosen model; 'exact' when the race ran out of "
                          "rows (the pick is then the exhaustive best); and the race's seconds beside the "
                          "estimated seconds of scoring every row of every model."),
        epilog="examples:\n"
               "  transferlab race resnet.npy vit.npy effnet.npy --labels labels.npy\n"
               "  transferlab race banks/animal-10 --delta 0.01 --epsilon 0.005 --json race.json\n"
               "  transferlab race a.npy b.npy --labels y.npy --arg knn_loo.k=5 --max-memory 2GB\n"
               "  best=$(transferlab race banks/animal-10 --quiet)        # just the chosen model\n\n"
               "A .npy input is memory-mapped, never copied into memory whole: one pass checks it for NaN/inf,\n"
               "then each round reads it to find the neighbours of the rows drawn (in blocks that fit\n"
               "--max-memory, when given). All INPUTs must hold the same N rows of one dataset.")
    rc.add_argument("inputs", nargs="+", metavar="INPUT",
                    help="bank directories, directories holding banks of one dataset, or array files (.npy, "
                         ".npz, .csv), one model per file, named by the file name")
    rc.add_argument("--labels", metavar="FILE",
                    help="labels of array-file inputs: .npy, or a text/CSV file with one label a line")
    rc.add_argument("--label-column", default="label", metavar="NAME",
                    help="the label column of CSV inputs without --labels (default: label)")
    rc.add_argument("--dataset", default="data", metavar="NAME",
                    help="dataset name of array-file inputs (default: data)")
    rc.add_argument("--score", default="knn_loo", metavar="SCORE",
                    help="a per-row-mean score (default: knn_loo; the scores race can sample: "
                         "transferlab.race.per_row_scores())")
    rc.add_argument("--delta", default="0.05", metavar="P",
                    help="allowed probability of a pick worse than best - EPSILON, in (0, 1) (default: 0.05)")
    rc.add_argument("--epsilon", default="0", metavar="E",
                    help="slack in the score's units, >= 0 (default: 0, the best model itself)")
    rc.add_argument("--arg", action="append", default=[], metavar="SCORE.NAME=VALUE",
                    help="an argument of the score, as 'transferlab score --arg': e.g. knn_loo.k=5 or "
                         "knn_loo.metric=cosine (repeatable)")
    rc.add_argument("--first-rows", default="1024", metavar="N",
                    help="rows of the first round, >= 2 (default: 1024)")
    rc.add_argument("--growth", default="2", metavar="G", help="factor of rows per round, > 1 (default: 2)")
    rc.add_argument("--seed", default="0", metavar="S", help="seed of the random row order, >= 0 (default: 0)")
    rc.add_argument("--max-memory", metavar="SIZE",
                    help="memory budget of the score's blocks, e.g. 2GB or 512MiB (default: none); the race "
                         "itself adds 8 bytes per row and model")
    rc.add_argument("--scheduler", metavar="ADDRESS",
                    help="score each round's models on a Dask cluster, one task per model (e.g. "
                         "tcp://10.0.0.5:8786, or 'local'); bank directories and .npy files must be visible to "
                         "the workers. Needs pip install 'transferlab[dask]'")
    rc.add_argument("--json", metavar="FILE", help="also write the result as JSON")
    rc.add_argument("--quiet", action="store_true", help="print only the chosen model's name")
    rc.set_defaults(func=cmd_race, probs=None, logits=None)  # _cli_pool._inputs reads them: no source outputs here


# ------------------------------------------------------------------------------ flags


def _number(flag: str, text: str, kind: type):
    """A flag's value as int (kind int) or number (kind float: an integral text stays an int, so a message
    reads "got 2", as typed)."""
    try:
        return int(text)
    except ValueError:
        if kind is int:
            raise ValueError(f"{flag} must be an integer, got {text!r}") from None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{flag} must be a number, got {text!r}") from None


# The library's option names, as the flags that set them.
_FLAGS = (("score_kwargs: ", "--arg: "), ("first_rows", "--first-rows"), ("growth", "--growth"),
          ("delta", "--delta"), ("epsilon", "--epsilon"), ("score must", "--score must"),
          ("max_memory", "--max-memory"))


def _in_flags(text: str, score: str, kwargs: Dict[str, Any]) -> str:
    """A library message about race's options or the score's arguments, in flag terms."""
    where = ""
    model = re.match(r"banks\[('[^']*')\]: ", text)  # the race names the model whose rows failed
    if model:
        text, where = text[model.end():], f"model {model.group(1)}: "
    for api, flag in _FLAGS:  # an option's error is every model's: no model named
        if text.startswith(api):
            return flag + text[len(api):]
    for name in kwargs:
        if text.startswith(name + " ") or text.startswith(name + "="):
            return f"--arg {score}.{name}{text[len(name):]}"
        if f"unexpected keyword argument '{name}'" in text:
            return f"--arg {score}.{name}: {score} has no argument {name!r}"
    return where + _race_terms(text.replace("max_memory=", "--max-memory ").replace("score_kwargs", "--arg"))


# Advice of the library in keyword terms that names what the race command does not have: cli.main would turn
# nan_policy='omit' into --omit-nan (a flag of evaluate); the race draws any row of every model and reads class
# labels only (no --task).
_ADVICE = ((re.compile(r"(clean them )?or pass nan_policy='omit' to drop (them|those rows)"),
            "clean them (a race draws any row of every model)"),
           (re.compile(r"\(for float targets pass task='regression'\)"),
            "(a race needs class labels; float targets are not supported)"))


def _race_terms(text: str) -> str:
    for pattern, advice in _ADVICE:
        text = pattern.sub(advice, text)
    return text


def _options(args: argparse.Namespace) -> Dict[str, Any]:
    """race's keyword arguments from the flags, checked (in flag terms) before any input is read."""
    from transferlab._cli_pool import _parse_args_kv
    from transferlab.race import _check_options, per_row_scores

    if args.score not in per_row_scores():
        raise ValueError(f"--score must be a per-row-mean score, one of {', '.join(per_row_scores())}, got "
                         f"{args.score!r}")
    per_score = _parse_args_kv(args.arg)
    other = sorted(set(per_score) - {args.score})
    if other:
        raise ValueError(f"--arg names {', '.join(map(repr, other))}; the race scores --score {args.score}")
    kwargs = per_score.get(args.score, {})
    why = {"queries": "the race chooses the query rows itself", "return_details": "the race reads them itself",
           "max_memory": "give --max-memory", "nan_policy": "a race needs every row's value; clean the NaN/inf rows"}
    for name in sorted(set(kwargs) & set(why)):
        raise ValueError(f"--arg {args.score}.{name}: {why[name]}")
    seed = _number("--seed", args.seed, int)
    if seed < 0:
        raise ValueError(f"--seed must be an integer >= 0, got {seed}")
    opts = dict(score=args.score, delta=_number("--delta", args.delta, float),
                epsilon=_number("--epsilon", args.epsilon, float),
                first_rows=_number("--first-rows", args.first_rows, int),
                growth=_number("--growth", args.growth, float), seed=seed, max_memory=args.max_memory,
                score_kwargs=kwargs or None)
    try:
        _check_options(opts["score"], opts["delta"], opts["epsilon"], opts["first_rows"], opts["growth"],
                       opts["max_memory"], kwargs)
    except (ValueError, TypeError) as e:
        raise type(e)(_in_flags(str(e), args.score, kwargs)) from None
    return opts


# ------------------------------------------------------------------------------ inputs


def _racers(args: argparse.Namespace) -> Tuple[List[str], List[Any], List[Any], Any]:
    """(model names, local features, what a Dask worker opens, the shared labels) of the INPUTs."""
    import numpy as np

    from transferlab._cli_arrays import is_array_file
    from transferlab._cli_pool import _inputs
    from transferlab.scoring import _bank_entries

    for p in args.inputs:
        if not os.path.exists(p):
            raise ValueError(f"INPUT {p}: no such file or directory")
        if not os.path.isdir(p) and not is_array_file(p):
            raise ValueError(f"INPUT {p}: neither a bank directory nor an array file (.npy, .npz, .csv)")
    items = _inputs(args, args.inputs)
    file_of = {id(b): p for p, b in zip(args.inputs, items) if not isinstance(b, str)}  # array file -> its bank
    try:
        entries = _bank_entries(items, open_banks=True)
    except ValueError as e:  # "banks: <dir> ..." in the library's terms
        text = str(e)
        raise ValueError("INPUT: " + text[len("banks: "):] if text.startswith("banks: ") else text) from None
    datasets = list(dict.fromkeys(u.dataset for u, _ in entries))
    if len(datasets) > 1:
        raise ValueError(f"the INPUTs hold banks of {len(datasets)} datasets ({', '.join(datasets)}); a race "
                         "compares models on one dataset: give one dataset's banks (e.g. banks/<dataset>)")
    if len(entries) < 2:
        u, b = entries[0]
        raise ValueError(f"a race needs at least 2 models; the INPUTs hold 1 ({b.path or file_of.get(id(b), u.origin)})")
    where = [b.path or file_of.get(id(b), u.origin) for u, b in entries]
    b0, names, local, remote = entries[0][1], [], [], []
    for (u, b), w in zip(entries, where):
        if b.n != b0.n:
            raise ValueError(f"every INPUT must hold the same N rows: {where[0]} has {b0.n}, {w} has {b.n}")
        if not (np.array_equal(b.labels, b0.labels) and np.array_equal(b.sample_ids, b0.sample_ids)):
            raise ValueError(f"{where[0]} and {w} label their {b.n} rows differently (not the same samples "
                             "in the same order); a race needs the same rows for every model")
        names.append(u.model)
        local.append(b.features)
        # on a cluster only a path travels where there is one (the workers memory-map it)
        npy = file_of.get(id(b)) if str(file_of.get(id(b))).lower().endswith(".npy") else None
        remote.append(os.path.join(b.path, "features.npy") if b.path else npy or b.features)
    return names, local, remote, np.asarray(b0.labels)


# ------------------------------------------------------------------------------ output


def result_dict(res: "RaceResult") -> Dict[str, Any]:
    """A RaceResult as plain JSON values (intervals as [lo, hi])."""
    return {"chosen": res.chosen, "score": res.score, "estimates": dict(res.estimates),
            "intervals": {m: [lo, hi] for m, (lo, hi) in res.intervals.items()}, "rows_used": dict(res.rows_used),
            "eliminated": dict(res.eliminated), "seconds": res.seconds, "exhaustive_seconds": res.exhaustive_seconds,
            "exact": res.exact, "rounds": list(res.rounds), "n_rows": res.n_rows, "delta": res.delta,
            "epsilon": res.epsilon}


def _report(res: "RaceResult") -> str:
    from transferlab.core.markdown import md_table

    rows = []
    for m, est in res.estimates.items():
        lo, hi = res.intervals[m]
        gone = res.eliminated.get(m)
        rows.append([m, f"{est:.4f}", f"[{lo:.4f}, {hi:.4f}]",
                     f"{res.rows_used[m]} / {res.n_rows}", "survivor" if gone is None else f"after {gone} rows"])
    out = [md_table(["model", res.score, "interval", "rows used", "eliminated"], rows), "",
           f"chosen: {res.chosen}"]
    if res.exact:
        out.append("exact: the race ran out of rows; every survivor was scored on all "
                   f"{res.n_rows} rows, so the pick is the exhaustive best")
    else:
        out.append(f"guarantee: with probability >= {1 - res.delta:g} the pick's {res.score} is within "
                   f"{res.epsilon:g} of the best model's (delta={res.delta:g}, epsilon={res.epsilon:g})")
    ratio = res.exhaustive_seconds / res.seconds if res.seconds > 0 else math.inf
    # RaceResult.exhaustive_seconds extrapolates query rounds, which cost about twice a full pass per row:
    # say so beside the ratio, so a small pool's ratio is not read as a speed-up the exhaustive run would show
    out.append(f"seconds: race {res.seconds:.3g} s; every row of every model ~{res.exhaustive_seconds:.3g} s "
               f"(estimated from the race's rounds; high where they ran as queries): {ratio:.1f}x; rows scored "
               f"{res.rows_scored} of {res.exhaustive_rows}")
    return "\n".join(out) + "\n"


def cmd_race(args: argparse.Namespace) -> int:
    from transferlab._cli_shared import check_output
    from transferlab.race import race

    check_output("--json", args.json)
    opts = _options(args)
    try:
        names, local, remote, labels = _racers(args)
    except (ValueError, TypeError) as e:
        raise type(e)(_race_terms(str(e))) from None
    banks = dict(zip(names, remote if args.scheduler else local))
    try:
        res = race(banks, labels, scheduler=args.scheduler or None, **opts)
    except (ValueError, TypeError) as e:
        raise type(e)(_in_flags(str(e), args.score, opts["score_kwargs"] or {})) from None
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result_dict(res), f, indent=1)
            f.write("\n")
    sys.stdout.write(res.chosen + "\n" if args.quiet else _report(res))
    return 0
