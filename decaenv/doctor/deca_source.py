"""Read a user's DECA checkout: find it, find the lines that a known breakage hits, and the third-party modules
DECA's demo imports. Pure Python (re, ast): runs in the doctor process and in the probe worker, imports nothing
of the checkout.
"""

from __future__ import annotations

import ast
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Pattern, Sequence, Set

#: Folders of a checkout that hold DECA's code (the demo and the library it imports).
CODE_DIRS = ("decalib", "demos")
SKIP_DIRS = {".decaenv-patch", "__pycache__", ".git"}
DEMO = "demos/demo_reconstruct.py"
#: Import name -> pip distribution, for the modules DECA's code uses.
PIP_NAMES = {"cv2": "opencv-python", "skimage": "scikit-image", "PIL": "pillow", "face_alignment": "face-alignment",
             "yaml": "pyyaml", "sklearn": "scikit-learn"}


@dataclass(frozen=True)
class Hit:
    """One line of the checkout: `path` relative to the checkout (POSIX), 1-based `line`, the stripped `text`."""

    path: str
    line: int
    text: str

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def is_checkout(folder: os.PathLike) -> bool:
    """A DECA checkout (or a fork) holds `decalib/` with `deca.py`."""
    return (Path(folder) / "decalib" / "deca.py").is_file()


def find_checkout(start: os.PathLike) -> Optional[Path]:
    """The DECA checkout holding `start` (it or one of its parents), or None."""
    here = Path(start).resolve()
    for folder in (here, *here.parents):
        if is_checkout(folder):
            return folder
    return None


def code_files(root: os.PathLike, suffixes: Sequence[str] = (".py",)) -> List[Path]:
    """Every file of DECA's code folders with one of `suffixes`, sorted."""
    out: List[Path] = []
    for sub in CODE_DIRS:
        for folder, dirs, files in os.walk(Path(root) / sub):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
            out += [Path(folder) / f for f in files if f.endswith(tuple(suffixes))]
    return sorted(out)


def _lines(path: Path) -> List[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


def grep(root: os.PathLike, pattern: Pattern[str], *, suffixes: Sequence[str] = (".py",),
         unless: Optional[Pattern[str]] = None, only: Iterable[str] = ()) -> List[Hit]:
    """Lines matching `pattern` (and not `unless`), comments skipped; `only`: relative paths to look in."""
    root = Path(root)
    files = [root / p for p in only] if only else code_files(root, suffixes)
    hits: List[Hit] = []
    for path in files:
        for number, line in enumerate(_lines(path), 1):
            code = line.split("#", 1)[0] if path.suffix == ".py" else line
            if pattern.search(code) and not (unless and unless.search(code)):
                hits.append(Hit(path.relative_to(root).as_posix(), number, line.strip()))
    return hits


# -- the demo's third-party imports ---------------------------------------------------------------------------

def _module_level_imports(tree: ast.Module) -> List[ast.stmt]:
    """Import statements executed when the module is imported (top level, also inside top-level if/try)."""
    found: List[ast.stmt] = []
    stack: List[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop(0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, (ast.If, ast.Try)):
            stack += list(node.body) + list(getattr(node, "orelse", [])) + \
                [s for h in getattr(node, "handlers", []) for s in h.body]
    return found


def _local_target(root: Path, module: str) -> Optional[Path]:
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _resolve(node: ast.ImportFrom, path: Path, root: Path) -> str:
    if not node.level:
        return node.module or ""
    package = path.parent.relative_to(root).parts
    package = package[: len(package) - (node.level - 1)] if node.level > 1 else package
    return ".".join([*package, *(node.module.split(".") if node.module else [])])


def demo_imports(root: os.PathLike, entry: str = DEMO) -> List[str]:
    """Top-level names of the third-party modules imported when DECA's demo starts (module-level imports of
    the demo and, recursively, of the checkout's own modules it imports), plus `face_alignment` when the demo's
    default detector (FAN) imports it. Standard-library and checkout-local names are left out."""
    root = Path(root)
    start = root / entry
    if not start.is_file():
        return []
    seen: Set[Path] = set()
    third: Set[str] = set()
    queue = [start]
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        try:
            tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
        except (OSError, SyntaxError, ValueError):
            continue
        for node in _module_level_imports(tree):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [_resolve(node, path, root)]
            if isinstance(node, ast.ImportFrom):  # `from decalib.utils import util` may name a submodule
                modules += [f"{modules[0]}.{a.name}" for a in node.names]
            for module in modules:
                local = _local_target(root, module) if module else None
                if local is not None:
                    queue.append(local)
                elif module and module.split(".")[0] not in _local_roots(root):
                    third.add(module.split(".")[0])
    if any("face_alignment" in h.text for h in grep(root, re.compile(r"\bimport face_alignment\b"))):
        third.add("face_alignment")
    return sorted(m for m in third if m not in _stdlib())


def _local_roots(root: Path) -> Set[str]:
    return {p.name for p in root.iterdir() if p.is_dir()} | {p.stem for p in root.glob("*.py")}


def _stdlib() -> Set[str]:
    names = set(getattr(sys, "stdlib_module_names", ()))
    if not names:  # Python 3.9: a short list is enough for DECA's imports
        names = {"os", "sys", "re", "time", "math", "argparse", "pickle", "json", "glob", "shutil", "copy",
                 "collections", "itertools", "functools", "logging", "random", "datetime", "subprocess",
                 "typing", "warnings", "inspect", "io", "pathlib", "abc", "__future__"}
    return names | {"__future__"}
