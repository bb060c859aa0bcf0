"""The pool subcommands of the ``transferlab`` command line: extract, score, rank, demo (and the bank listing of
``info``). ``transferlab.cli`` registers them with :func:`add_parsers`; each is a ``_cmd_<name>(args) -> int``.

The typical session (the same numbers as ``transferlab demo``)::

    transferlab extract --model all --task mnist-high-5 animal-farm-5 --out banks
    transferlab score banks -o scores.csv
    transferlab rank --scores scores.csv --pool zoo
    transferlab evaluate --scores scores.csv --finetune zoo --pool zoo
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any, Dict, List

from transferlab._cli_shared import check_output, rank_tables, resolve_finetune, resolve_pool

__all__ = ["add_parsers", "cmd_info_banks", "resolve_finetune", "resolve_pool"]

_FORMATTER = argparse.RawDescriptionHelpFormatter  # keeps the examples' line breaks; descriptions are wrapped here


def _install_command() -> str:
    from transferlab.zoo import INSTALL_COMMAND

    return INSTALL_COMMAND


def _wrap(text: str) -> str:
    import textwrap

    return textwrap.fill(text, width=88)


def add_parsers(sub) -> None:
    """Add the extract, score, rank and demo subcommands to an argparse subparsers object."""
    _add_extract_parser(sub)
    _add_score_parser(sub)
    _add_rank_parser(sub)
    _add_demo_parser(sub)


def _add_extract_parser(sub) -> None:
    """The ``extract`` subcommand: zoo or 'module:factory' models on zoo tasks -> feature banks."""
    ex = sub.add_parser(
        "extract", formatter_class=_FORMATTER,
        help="run models on a task's images and store their features (one feature bank per model and task)",
        description=_wrap("Run pre-trained models on the training images of zoo tasks and store, for each (model, "
                    "task), a feature bank: a directory OUT/<task>/<model>/ with the embeddings, source logits, "
                    "labels and a meta.json. An interrupted run resumes where it stopped when run again; banks "
                    "that are already complete are kept."),
        epilog="examples:\n"
               "  transferlab extract --model all --task mnist-high-5 animal-farm-5 --out banks\n"
               "  transferlab extract --model efficientnet-lite0 --task animal-10 --out banks --device cuda\n"
               "  transferlab extract --model mypkg.nets:make_net --model-id my-net --adapter hook:fc \\\n"
               "                      --task digits-10 --out banks\n\n"
               "A 'module:factory' model is built by calling factory() with no arguments; it may return an\n"
               "nn.Module (fed float images in [0, 1], N x 1 x 28 x 28) or an object with .module,\n"
               ".preprocess and .adapter (like transferlab.zoo.load_model).")
    ex.add_argument("--model", nargs="+", required=True, metavar="MODEL",
                    help="zoo model names (see 'transferlab info'), 'all' for the whole zoo, or 'module:factory'")
    ex.add_argument("--task", nargs="+", required=True, metavar="TASK",
                    help="zoo task names (e.g. mnist-10, animal-farm-5), or 'all' for every installed task")
    ex.add_argument("--out", required=True, metavar="DIR", help="directory that receives OUT/<task>/<model>/")
    ex.add_argument("--n", type=int, default=300, help="training images per task (default: 300, as the ground truth)")
    ex.add_argument("--seed", type=int, default=0, help="which stratified draw of the training images (default: 0)")
    ex.add_argument("--model-id", help="name of a 'module:factory' model in the banks (default: the factory name)")
    ex.add_argument("--adapter", default=None,
                    help="where the features are: auto, timm, hook, hook:<module> (default: the zoo's, else auto)")
    ex.add_argument("--batch-size", type=int, default=128, help="images per forward pass (default: 128)")
    ex.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1 or auto")
    ex.add_argument("--autocast", action="store_true", help="mixed precision (bfloat16 on CPU, float16 on CUDA)")
    ex.add_argument("--dtype", default="float32", choices=["float32", "float16", "float64"],
                    help="storage dtype of features and logits (default: float32)")
    ex.add_argument("--quiet", action="store_true", help="no progress bars")
    ex.set_defaults(func=_cmd_extract)


def _add_score_parser(sub) -> None:
    """The ``score`` subcommand: every bank with every score -> the long score CSV."""
    sc = sub.add_parser(
        "score", formatter_class=_FORMATTER,
        help="score every feature bank with every transferability score -> long CSV",
        description=_wrap("Compute transferability scores (how well a model's frozen features suit a task) for every "
                    "feature bank found under the given directories, and time each one. Writes the long CSV "
                    "'dataset,model,score,value,seconds' that 'transferlab rank' and 'transferlab evaluate' read."),
        epilog="examples:\n"
               "  transferlab score banks -o scores.csv\n"
               "  transferlab score banks -o knn.csv --scores knn_loo --arg knn_loo.k=3\n"
               "  transferlab score features.npy --labels labels.npy      # your own arrays (one model per file)\n"
               "  transferlab score resnet.npz vit.npz -o scores.csv      # .npz: features, labels[, probs|logits]\n"
               "  transferlab score table.csv --label-column y            # CSV: feature columns + a label column\n"
               "  transferlab score features.npy --labels y.npy --task regression   # float targets (N,) or (N, T)")
    sc.add_argument("banks", nargs="+", metavar="INPUT",
                    help="bank directories, directories holding banks, or array files (.npy, .npz, .csv), "
                         "one model per file, named by the file name")
    sc.add_argument("-o", "--out", metavar="CSV", help="also write the long score CSV here (for rank and evaluate)")
    _add_array_flags(sc)
    sc.add_argument("--scores", nargs="+", metavar="SCORE",
                    help="score names (default: every available score; see 'transferlab info')")
    sc.add_argument("--device", default="auto", help="auto (default), cpu, cuda or reference")
    sc.add_argument("--task", default="classification", choices=["classification", "regression", "multilabel"],
                    help="what the labels are: classes (default), float targets (regression) or 0/1 indicator "
                         "columns (multilabel, a (N, L) .npy); scores that do not support it are skipped with a note")
    sc.add_argument("--arg", action="append", default=[], metavar="SCORE.NAME=VALUE",
                    help="an argument of one score, e.g. knn_loo.k=3 (repeatable; values parsed as Python literals)")
    sc.add_argument("--quiet", action="store_true", help="no progress bar (it shows on a terminal only anyway)")
    sc.add_argument("--keep-going", action="store_true",
                    help="when a score fails on a bank, drop that score (with a note) instead of stopping")
    sc.add_argument("--scheduler", metavar="ADDRESS",
                    help="score on a Dask cluster, one task per bank (e.g. tcp://10.0.0.5:8786, or 'local' for a "
                         "local cluster); the bank directories must be visible to the workers. "
                         "Needs pip install 'transferlab[dask]'")
    sc.set_defaults(func=_cmd_score)


def _add_array_flags(p) -> None:
    """The flags that describe array-file inputs (score and rank)."""
    p.add_argument("--labels", metavar="FILE",
                   help="labels of array-file inputs: .npy, or a text/CSV file with one label a line")
    p.add_argument("--probs", metavar="NPY", help="source-class probabilities (N, Z) of a single .npy input (LEEP, NCE)")
    p.add_argument("--logits", metavar="NPY", help="source-class logits (N, Z) of a single .npy input (LEEP, NCE)")
    p.add_argument("--label-column", default="label", metavar="NAME",
                   help="the label column of CSV inputs without --labels (default: label)")
    p.add_argument("--dataset", default="data", metavar="NAME", help="dataset name of array-file inputs (default: data)")


def _add_rank_parser(sub) -> None:
    """The ``rank`` subcommand: the fine-tune order of each strategy per dataset of a score CSV."""
    rk = sub.add_parser(
        "rank", formatter_class=_FORMATTER,
        help="rank the models of each task with the task-agnostic, task-aware and hybrid strategies",
        description=_wrap("Print, for each dataset of a score CSV, the order in which each strategy would fine-tune "
                    "the models: task-agnostic (by upstream accuracy, from model cards), task-aware (by a "
                    "score, highest first) and hybrid (the task-agnostic pick, then the score's order)."),
        epilog="examples:\n  transferlab rank --scores scores.csv\n"
               "  transferlab rank resnet.npy vit.npy --labels labels.npy --by knn_loo logme\n"
               "  transferlab rank banks/ --by knn_loo\n"
               "  transferlab rank --scores scores.csv --pool zoo --budget 3")
    rk.add_argument("inputs", nargs="*", metavar="INPUT",
                    help="banks or array files to score first (as 'transferlab score'); or give --scores")
    rk.add_argument("--scores", metavar="CSV", help="score CSV (from 'transferlab score')")
    rk.add_argument("--by", nargs="+", metavar="SCORE", default=None,
                    help="with INPUTs: the scores to compute and rank by (default: knn_loo logme)")
    rk.add_argument("--pool", default="none",
                    help="model cards for the task-agnostic and hybrid strategies: none (default), zoo (the "
                         "embedded zoo's), auto (shipped ImageNet CNN cards) or a .json/.csv card file")
    rk.add_argument("--device", default="auto", help="with INPUTs: auto (default), cpu, cuda or reference")
    rk.add_argument("--task", default="classification", choices=["classification", "regression", "multilabel"],
                    help="with INPUTs: what the labels are (as 'transferlab score --task')")
    _add_array_flags(rk)
    rk.add_argument("--budget", type=int, default=None, metavar="B", help="show only the first B models")
    rk.set_defaults(func=_cmd_rank)


def _add_demo_parser(sub) -> None:
    """The ``demo`` subcommand: the whole pipeline on the embedded zoo."""
    dm = sub.add_parser(
        "demo", formatter_class=_FORMATTER,
        help="the whole pipeline on the embedded zoo (offline, a fixed workload: about a minute on 2 CPU cores)",
        description=_wrap("Extract 13 zoo models on 3 tasks (300 images each), score every bank with all 12 "
                    "scores, rank the models with the task-agnostic, task-aware and hybrid strategies and print "
                    "the regret of each against the shipped fine-tuning ground truth, plus plots. The workload "
                    "is fixed (never chosen from the machine's speed or load) and torch/BLAS threads are "
                    "pinned, so every run prints the same score table."),
        epilog="needs the zoo's packages, installed without their dependencies (which would pull tensorflow,\n"
               "torchvision or numpy<2):\n  " + _install_command())
    dm.add_argument("--tasks", nargs="+", metavar="TASK",
                    help="zoo tasks (default: mnist-high-5 digits-10 animal-farm-5)")
    dm.add_argument("--out", default="transferlab-demo", metavar="DIR",
                    help="where banks, scores.csv and plots go (default: ./transferlab-demo; a rerun reuses banks)")
    dm.add_argument("--no-plot", action="store_true", help="skip the figures")
    dm.set_defaults(func=_cmd_demo)


def _import_factory(spec: str):
    """The callable of a 'module:name' or 'path/file.py:name' spec. A module is looked up on sys.path and
    in the current directory (users keep their nets beside their data, without PYTHONPATH=.); a .py path is
    loaded as a file."""
    import importlib.util

    mod_name, _, attr = spec.rpartition(":")
    if not mod_name or not attr:
        raise ValueError(f"--model {spec!r}: expected 'module:factory' or 'file.py:factory'")
    try:
        if mod_name.endswith(".py"):
            if not os.path.isfile(mod_name):
                raise ImportError(f"no file {mod_name}")
            name = "_transferlab_user_" + os.path.splitext(os.path.basename(mod_name))[0]
            loaded = importlib.util.spec_from_file_location(name, os.path.abspath(mod_name))
            module = importlib.util.module_from_spec(loaded)
            sys.modules[name] = module
            loaded.loader.exec_module(module)
        else:
            cwd = os.getcwd()
            if cwd not in sys.path and "" not in sys.path:
                sys.path.append(cwd)  # after the installed packages: never shadows them
            module = importlib.import_module(mod_name)
        return getattr(module, attr)
    except (ImportError, AttributeError, SyntaxError) as e:
        where = f"file {mod_name!r}" if mod_name.endswith(".py") else f"module {mod_name!r}"
        raise ValueError(f"--model {spec!r}: cannot load {attr!r} from {where} ({e})") from None


def _load_factory(spec: str, model_id=None):
    attr = spec.rpartition(":")[2]
    factory = _import_factory(spec)
    obj = factory()
    module = getattr(obj, "module", obj)
    pre = getattr(obj, "preprocess", None) or _to_unit_float
    adapter = getattr(obj, "adapter", None) or "auto"
    return model_id or getattr(obj, "name", None) or attr, module, pre, adapter


def _to_unit_float(images):
    """Default preprocessing of a plain nn.Module: uint8 images to float in [0, 1]."""
    import torch

    return images.float() / 255.0 if images.dtype == torch.uint8 else images.float()


# --- commands ------------------------------------------------------------------------------------------------

def _cmd_extract(args) -> int:
    from transferlab import zoo
    from transferlab.extract import extract

    tasks = zoo.available_tasks() if args.task == ["all"] else args.task
    unknown = [t for t in tasks if t not in zoo.TASKS]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; the zoo has {zoo.TASKS}")
    models: List[str] = zoo.MODELS if args.model == ["all"] else args.model
    for t in tasks:
        x, y, _ = zoo.load_task(t, split="train", n=args.n, seed=args.seed)
        for spec in models:
            if ":" in spec:
                name, module, pre, adapter = _load_factory(spec, args.model_id)
            else:
                zm = zoo.load_model(spec)
                name, module, pre, adapter = zm.name, zm.module, zm.preprocess, zm.adapter
            bank = extract(module, (x, y), os.path.join(args.out, t, name), adapter=args.adapter or adapter,
                           batch_size=args.batch_size, device=args.device, autocast=args.autocast, model_id=name,
                           dataset_id=t, preprocessing=pre, progress=not args.quiet, dtype=args.dtype)
            sys.stdout.write(f"{t:16s} {name:22s} n={bank.n} d={bank.d} -> {bank.path}\n")
    return 0


def _parse_args_kv(items: List[str]) -> Dict[str, Dict[str, Any]]:
    import ast

    out: Dict[str, Dict[str, Any]] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        score, dot, name = key.partition(".")
        if not eq or not dot or not score or not name:
            raise ValueError(f"--arg {item!r}: expected SCORE.NAME=VALUE, e.g. knn_loo.k=3")
        if raw.strip().lower() in ("true", "false"):
            value = raw.strip().lower() == "true"  # --arg leep.from_logits=false is the bool False
        else:
            try:
                value = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                value = raw  # a bare word, e.g. metric=cosine
        out.setdefault(score, {})[name] = value
    return out


def _check_arg_scores(kwargs: Dict[str, Dict[str, Any]], scores) -> None:
    """``--arg`` for a score that is not scored is a typo or a forgotten ``--scores`` entry: say so in flags."""
    from transferlab.scores import registry

    scored = list(scores) if scores else registry.available()
    unknown = sorted(set(kwargs) - set(scored))
    if unknown:
        known = set(registry.available())
        what = ["unknown score" if u not in known else "not in --scores" for u in unknown]
        raise ValueError("--arg names " + ", ".join(f"{u!r} ({w})" for u, w in zip(unknown, what))
                         + f"; scoring: {', '.join(scored)}")


def _inputs(args, items: List[str]) -> list:
    """Bank paths as given, array files as in-memory FeatureBanks (transferlab._cli_arrays)."""
    from transferlab._cli_arrays import banks_from_files, is_array_file

    files = [p for p in items if is_array_file(p)]
    if not files:
        for flag in ("labels", "probs", "logits"):
            if getattr(args, flag):
                raise ValueError(f"--{flag} goes with array-file inputs (.npy, .npz, .csv); bank directories "
                                 "carry their own")
        return list(items)
    banks = banks_from_files(files, labels=args.labels, probs=args.probs, logits=args.logits,
                             label_column=args.label_column, dataset=args.dataset)
    it = iter(banks)
    return [next(it) if is_array_file(p) else p for p in items]


def _task_inputs(args, items: List[str]):
    """(banks, score_pool keywords) for --task regression / multilabel: bank directories as given (their
    integer labels read as targets), or .npy feature files with one --labels file of targets / indicators
    (FeatureBanks store class labels, so such arrays go to score_pool as arrays with labels=)."""
    from transferlab._cli_arrays import _load_npy, is_array_file, read_labels

    files = [p for p in items if is_array_file(p)]
    if not files:
        if args.labels:
            raise ValueError("--labels goes with array-file inputs (.npy); bank directories carry their own")
        return list(items), {}
    if len(files) != len(items):
        raise ValueError(f"--task {args.task}: give either bank directories or .npy feature files, not both")
    bad = [p for p in files if not p.lower().endswith(".npy")]
    if bad:
        raise ValueError(f"--task {args.task} with array files takes .npy features and --labels FILE; got {bad[0]}")
    if not args.labels:
        raise ValueError(f"--task {args.task} with .npy inputs needs --labels FILE (the targets: .npy (N,) / (N, T), "
                         "or one number a line)")
    if args.probs or args.logits:
        raise ValueError(f"--probs/--logits feed LEEP and NCE, which do not support --task {args.task}")
    arrays = {}
    for p in files:
        name = os.path.splitext(os.path.basename(p))[0]
        if name in arrays:
            raise ValueError(f"two inputs would both be model {name!r}; rename one file")
        arrays[name] = _load_npy(p, "input")
    return arrays, {"labels": read_labels(args.labels), "dataset": args.dataset}


def _cmd_score(args) -> int:
    from transferlab.scoring import score_pool

    check_output("-o/--out", args.out)
    kwargs = _parse_args_kv(args.arg)
    _check_arg_scores(kwargs, args.scores)
    extra = {}
    if args.task != "classification":
        banks, extra = _task_inputs(args, args.banks)
    else:
        banks = _inputs(args, args.banks)
    if args.scheduler and not all(isinstance(b, str) for b in banks):
        raise ValueError("--scheduler scores bank directories the workers can read; write array files to banks "
                         "first (FeatureBank.from_arrays) or score them without --scheduler")
    res = score_pool(banks, args.scores, device=args.device, score_kwargs=kwargs or None,
                     errors="note" if args.keep_going else "raise", scheduler=args.scheduler or None, task=args.task,
                     progress=not args.quiet, **extra)
    sys.stdout.write(res.to_markdown() + "\n")
    for note in res.notes:
        sys.stdout.write(f"note: {note}\n")
    if args.out:
        res.to_csv(args.out)
        sys.stdout.write(f"wrote {len(res.rows)} rows to {args.out}\n")
    return 0


def _cmd_rank(args) -> int:
    from transferlab.core.markdown import md_table as _md
    from transferlab.evaluate._tables import read_scores

    if bool(args.inputs) == bool(args.scores):
        raise ValueError("give either INPUTs (banks or array files, scored first) or --scores CSV")
    if args.scores and args.task != "classification":
        raise ValueError("--task goes with INPUTs (scored first); a --scores CSV holds values already")
    if args.scores:
        if args.by:
            raise ValueError("--by goes with INPUTs; a --scores CSV is ranked by every score it holds")
        table = read_scores(args.scores)
        if not table:
            raise ValueError(f"{args.scores}: no scores")
    else:
        from transferlab.scoring import score_pool

        if args.task != "classification":
            banks, extra = _task_inputs(args, args.inputs)
        else:
            banks, extra = _inputs(args, args.inputs), {}
        res = score_pool(banks, args.by or ["knn_loo", "logme"], device=args.device, task=args.task, **extra)
        for note in res.notes:
            sys.stdout.write(f"note: {note}\n")
        table = res.table()
    for d, head, rows in rank_tables(table, args.pool):
        if args.budget:
            rows = rows[:args.budget]
        sys.stdout.write(f"## {d}: fine-tune order per strategy\n\n{_md(head, rows)}\n\n")
    return 0


def _cmd_demo(args) -> int:
    from transferlab.demo import DemoSetupError, run_demo

    try:
        run_demo(tasks=args.tasks, out=args.out, plot=not args.no_plot)
    except DemoSetupError as e:
        sys.stderr.write(f"transferlab demo: {e}\n")
        return 3
    return 0


def cmd_info_banks(root: str) -> int:
    """List the banks under ``root`` (complete or not) with their shape and state."""
    from transferlab.scoring import find_banks
    from transferlab.bank import FeatureBank
    from transferlab.core.markdown import md_table as _md

    rows = []
    for p in find_banks(root):
        st = FeatureBank.status(p)
        state = "complete" if st["complete"] else f"incomplete {st['rows_written']}/{st['n']}"
        rows.append([st.get("dataset_id", "?"), st.get("model_id", "?"), str(st["n"]), str(st["d"]),
                     str(st["z"]) if st["has_logits"] else "-", st["dtype"], state, p])
    if not rows:
        sys.stdout.write(f"no feature banks under {root}\n")
        return 0
    sys.stdout.write(_md(["dataset", "model", "n", "d", "logits", "dtype", "state", "path"], rows) + "\n")
    return 0
