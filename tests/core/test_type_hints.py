"""Every public function and method carries type hints (issue 15: an embedding system's type checker sees the
API), and the package ships ``py.typed`` (PEP 561) so that checkers read them.

"Public" is what a user reaches by documented names: ``transferlab.__all__``, the public names of
``transferlab.select``, ``transferlab.evaluate``, ``transferlab.scores``, ``transferlab.distributed``,
``transferlab.plot``, ``transferlab.scores.streaming``, ``transferlab.bank``, ``transferlab.front`` and the public methods of the classes among them. Each parameter
(but ``self``/``cls``) and the return need an annotation.
"""
import importlib
import inspect
from pathlib import Path

import pytest

import transferlab

MODULES = ("transferlab", "transferlab.select", "transferlab.evaluate", "transferlab.scores",
           "transferlab.distributed", "transferlab.plot", "transferlab.scores.streaming", "transferlab.bank", "transferlab.front")


def _public_names(module):
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    return names


def _public_callables():
    seen = {}
    for mod_name in MODULES:
        try:
            module = importlib.import_module(mod_name)
        except ImportError as e:  # an optional extra missing (distributed needs dask)
            if "dask" in str(e) or "distributed" in str(e):
                continue
            raise
        for name in _public_names(module):
            obj = getattr(module, name)
            if inspect.ismodule(obj) or not callable(obj):
                continue
            if getattr(obj, "__module__", "") is None or not str(getattr(obj, "__module__", "")).startswith("transferlab"):
                continue
            if inspect.isclass(obj):
                if issubclass(obj, BaseException):
                    continue
                for meth_name, meth in vars(obj).items():
                    if meth_name.startswith("_") and meth_name != "__init__":
                        continue
                    func = meth.__func__ if isinstance(meth, (classmethod, staticmethod)) else meth
                    if inspect.isfunction(func):
                        seen[f"{mod_name}.{name}.{meth_name}"] = func
                    elif isinstance(meth, property) and meth.fget is not None:
                        seen[f"{mod_name}.{name}.{meth_name}"] = meth.fget
            elif inspect.isfunction(obj) or inspect.isfunction(getattr(obj, "__wrapped__", None)):
                seen[f"{mod_name}.{name}"] = obj
    return seen


def _missing(func):
    sig = inspect.signature(inspect.unwrap(func))
    missing = [p.name for p in sig.parameters.values()
               if p.name not in ("self", "cls") and p.annotation is inspect.Parameter.empty]
    if sig.return_annotation is inspect.Signature.empty and func.__name__ != "__init__":
        missing.append("return")
    return missing


def test_every_public_function_is_annotated():
    callables = _public_callables()
    assert len(callables) > 60, sorted(callables)  # the walk found the API, not an empty set
    bad = {name: m for name, f in sorted(callables.items()) if (m := _missing(f))}
    assert not bad, "missing annotations:\n" + "\n".join(f"  {k}: {', '.join(v)}" for k, v in bad.items())


def test_the_package_ships_py_typed():
    assert (Path(transferlab.__file__).parent / "py.typed").is_file()


def test_the_walk_sees_a_missing_annotation():
    def f(a, b: int):  # a has no annotation, nor the return
        return a

    assert _missing(f) == ["a", "return"]
