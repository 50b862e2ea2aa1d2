"""The allowed import directions between decaenv's packages (docs/ARCHITECTURE.md), checked on the source
with an AST scan (top-level and function-level imports alike), and no import cycles between modules."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

ROOT = Path(__file__).resolve().parents[1] / "decaenv"

#: Modules at the bottom: they import nothing of decaenv above them.
BASE = {"_typing", "errors", "deca_layout", "_process", "paths", "meshio", "uvlayout", "fan_weights", "offline"}

#: Unit (a subpackage or a top-level module of decaenv) -> the units it may import (besides `decaenv` itself,
#: which holds only `__version__`).
ALLOWED: Dict[str, Set[str]] = {
    "__init__": set(),
    "_typing": set(),
    "errors": {"_typing"},
    "deca_layout": {"_typing"},
    "_process": {"_typing"},
    "paths": {"_typing", "errors", "deca_layout"},
    "meshio": {"_typing", "errors"},
    "uvlayout": {"_typing", "errors"},
    "fan_weights": {"_typing"},
    "offline": {"_typing"},
    "loaders": BASE,
    "patches": BASE | {"loaders", "runtime"},  # DECA's rasterizer modules are shims over decaenv's rasterizer
    "runtime": BASE | {"loaders"},
    "fetch": BASE | {"loaders"},
    "synthetic": BASE | {"loaders"},  # test data; nothing in production imports it
    "doctor": BASE | {"loaders", "patches", "fetch", "runtime"},
    "housekeeping": BASE | {"fetch"},  # `decaenv cache`: what decaenv keeps on disk
    "selftest": BASE | {"doctor", "runtime", "synthetic"},
    "cli": BASE | {"loaders", "patches", "runtime", "fetch", "synthetic", "doctor", "selftest", "housekeeping"},
    "__main__": {"cli"},
}

#: Known violations being removed (issue 13, "cli/ owns the console"): delete a line when it is fixed.
KNOWN_EXCEPTIONS = {
    ("decaenv.doctor.cli_impl", "decaenv.cli._console"),
    ("decaenv.fetch.command", "decaenv.cli._console"),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> Dict[str, Path]:
    return {_module_name(p): p for p in ROOT.rglob("*.py")}


def _imports(name: str, path: Path, known: Set[str]) -> Iterator[str]:
    """Every decaenv module `name` imports (resolving `from package import submodule` to the submodule)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        yield from (t for t in targets if t == "decaenv" or t.startswith("decaenv."))


def _unit(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def _graph() -> Dict[str, Set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: {t for t in _imports(name, path, known) if t != name} for name, path in modules.items()}


def test_every_unit_has_a_rule():
    assert {_unit(m) for m in _modules()} <= set(ALLOWED), "add the new package to ALLOWED and ARCHITECTURE.md"


def test_imports_follow_the_allowed_directions():
    bad: List[Tuple[str, str]] = []
    for source, targets in _graph().items():
        for target in targets:
            src, dst = _unit(source), _unit(target)
            if (
                src != dst
                and dst != "__init__"
                and dst not in ALLOWED[src]
                and (source, target) not in KNOWN_EXCEPTIONS
            ):
                bad.append((source, target))
    assert not bad, "imports against docs/ARCHITECTURE.md's directions:\n" + "\n".join(
        f"{s} -> {t}" for s, t in sorted(bad)
    )


def test_no_import_cycles_between_modules():
    graph = _graph()
    cycles = [sorted(c) for c in _strongly_connected(graph) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}"


def _strongly_connected(graph: Dict[str, Set[str]]) -> List[Set[str]]:
    """Tarjan's algorithm, iterative."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    out: List[Set[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    item = stack.pop()
                    on_stack.discard(item)
                    component.add(item)
                    if item == node:
                        break
                out.append(component)
    return out


def test_the_scan_sees_lazy_imports_and_cycles():
    """The scan is not vacuous: it finds a known function-level import and a planted cycle."""
    graph = _graph()
    assert "decaenv.runtime.export" in graph["decaenv.runtime.deca"]  # imported inside DECA.save_obj
    planted = dict(graph, **{"decaenv.errors": graph["decaenv.errors"] | {"decaenv.paths"}})
    assert any({"decaenv.errors", "decaenv.paths"} <= c for c in _strongly_connected(planted))


def test_architecture_doc_names_every_unit():
    doc = (ROOT.parent / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    missing = [u for u in ALLOWED if u not in ("__init__", "__main__") and f"`{u}`" not in doc]
    assert not missing, f"docs/ARCHITECTURE.md does not describe {missing}"
