"""The shape of transferlab's Python layer, measured: modules, import graph and cycles, device-string
comparisons, the longest functions. ``tests/core/test_house.py`` guards the same import graph.

    python bench/house_metrics.py [repo_root]        # default: this checkout

Imports are read with ``ast`` from the sources (nothing is imported), including imports inside
functions: a lazy import that closes a cycle still ties the two modules together. ``_C``, ``_cuda``
and ``_cuda_logic_testing`` are the compiled extensions, not Python modules.
"""
from __future__ import annotations

import ast
import os
import re
import sys
from typing import Dict, List, NamedTuple, Set

EXTENSIONS = ("_C", "_cuda", "_cuda_logic_testing")


class ImportEdge(NamedTuple):
    source: str  # importing module, e.g. "transferlab.scores.sfda.stream"
    target: str  # imported transferlab module, or "transferlab._C" for an extension
    line: int
    top_level: bool  # at module level (executed on import) rather than inside a function


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def package_modules(root: str) -> Dict[str, str]:
    """Dotted module name -> source path of every module under ``root/transferlab``."""
    mods = {}
    for dirpath, _, files in os.walk(os.path.join(root, "transferlab")):
        for f in sorted(files):
            if f.endswith(".py"):
                path = os.path.join(dirpath, f)
                name = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
                mods[name[: -len(".__init__")] if name.endswith(".__init__") else name] = path
    return mods


def _is_type_checking(test: ast.AST) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(root: str) -> List[ImportEdge]:
    """Every import of a transferlab module (or extension) by a transferlab module."""
    mods = package_modules(root)
    extensions = {f"transferlab.{e}" for e in EXTENSIONS}
    edges: List[ImportEdge] = []
    for name, path in mods.items():
        tree = ast.parse(_read(path), path)
        top = {id(node) for node in tree.body}
        # imports under ``if TYPE_CHECKING:`` never run: annotations only, not edges of the import graph
        typing_only = {id(sub) for node in ast.walk(tree)
                       if isinstance(node, ast.If) and _is_type_checking(node.test)
                       for stmt in node.body for sub in ast.walk(stmt)}
        package = name if path.endswith("__init__.py") else name.rpartition(".")[0]

        def add(target: str, node: ast.AST) -> None:
            if target in extensions:
                edges.append(ImportEdge(name, target, node.lineno, id(node) in top))
                return
            while target and target not in mods:  # "pkg.mod.attr" -> "pkg.mod"
                target = target.rpartition(".")[0]
            if target and target != name:
                edges.append(ImportEdge(name, target, node.lineno, id(node) in top))

        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "transferlab":
                        add(alias.name, node)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - (node.level - 1)] + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                if base.split(".")[0] != "transferlab":
                    continue
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    add(full if (full in mods or full in extensions) else base, node)
    return edges


def graph(edges: List[ImportEdge], top_level_only: bool = False) -> Dict[str, Set[str]]:
    out: Dict[str, Set[str]] = {}
    for e in edges:
        out.setdefault(e.source, set())
        out.setdefault(e.target, set())
        if e.top_level or not top_level_only:
            out[e.source].add(e.target)
    return out


def cycles(g: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    on_stack: Set[str] = set()
    stack: List[str] = []
    out: List[List[str]] = []
    counter = 0
    for start in sorted(g):
        if start in index:
            continue
        work = [(start, iter(sorted(g[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            advanced = False
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(g[w]))))
                    advanced = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


_DEVICE_COMPARISON = re.compile(r"""(==|!=)\s*["'](cuda|cpu|reference|auto)["']|in\s*\(\s*["'](cuda|cpu|reference|auto)["']""")


def report(root: str) -> str:
    mods = package_modules(root)
    edges = imports(root)
    lines = [f"modules: {len(mods)}, lines: {sum(len(_read(p).splitlines()) for p in mods.values())}"]
    flat = [f for f in os.listdir(os.path.join(root, "transferlab", "scores")) if f.endswith(".py")]
    lines.append(f".py files directly in transferlab/scores/: {len(flat)}")
    for label, only_top in (("all imports", False), ("module-level imports", True)):
        found = cycles(graph(edges, only_top))
        lines.append(f"import cycles ({label}): {len(found)}")
        lines += [f"    {len(c)}: {', '.join(c[:6])}{' ...' if len(c) > 6 else ''}" for c in found]
    hits = {m: len(_DEVICE_COMPARISON.findall(_read(p))) for m, p in mods.items()}
    hits = {m: n for m, n in hits.items() if n}
    lines.append(f"device-string comparisons: {sum(hits.values())} in {len(hits)} files")
    funcs, code = [], []
    for m, p in mods.items():
        for node in ast.walk(ast.parse(_read(p))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                funcs.append((node.end_lineno - node.lineno + 1, f"{m}.{node.name}"))
                body = node.body[1:] if ast.get_docstring(node) and len(node.body) > 1 else node.body
                code.append((node.end_lineno - body[0].lineno + 1, f"{m}.{node.name}"))
    funcs.sort(reverse=True)
    code.sort(reverse=True)
    lines.append("longest functions (lines with docstring): " + ", ".join(f"{f} {n}" for n, f in funcs[:8]))
    lines.append("longest function bodies (lines without docstring): " + ", ".join(f"{f} {n}" for n, f in code[:8]))
    lines.append(f"functions over 80 lines: {sum(1 for n, _ in funcs if n > 80)}; "
                 f"bodies over 60 lines: {sum(1 for n, _ in code if n > 60)}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")))
