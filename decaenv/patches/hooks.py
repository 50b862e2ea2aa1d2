"""Post-import hooks: run a callback right after a given module has been imported (used in `decaenv exec`
children only, never in decaenv's own process).

A shim must be applied after its target module has executed (numpy must exist before `np.int` can be added)
but before the user's code uses it (chumpy's `from numpy import bool` runs while chumpy is imported, right
after numpy). Importing every target eagerly at start-up would slow down every Python process and import
torch into programs that never use it, so a meta-path finder watches only the target names: it lets the
regular finders locate the module, wraps the loader's `exec_module` to call the callbacks once the module
has run, and puts the original loader back on the module. It is removed again by `uninstall()`.
"""

from __future__ import annotations

import importlib.machinery
import sys
import threading
from types import ModuleType
from typing import Any, Callable, Dict, List, Optional, Sequence

Callback = Callable[[ModuleType], None]


class _HookedLoader:
    """Delegates to the real loader; after `exec_module` it restores that loader and runs the callbacks.

    (Not an `importlib.abc.Loader` subclass on purpose: importing `importlib.abc` pulls in
    `importlib.resources` and costs every Python process under `decaenv exec` several milliseconds.)
    """

    def __init__(self, loader: Any, done: Callable[[ModuleType], None]):
        self._loader = loader
        self._done = done

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Optional[ModuleType]:
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        self._done(module)

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, get_data, is_package, ...
        return getattr(self._loader, name)


class PostImportHooks:
    """A `sys.meta_path` finder calling `callback(module)` after `module` is imported (immediately when it
    already is)."""

    def __init__(self) -> None:
        self._pending: Dict[str, List[Callback]] = {}
        self._busy = threading.local()

    def register(self, name: str, callback: Callback) -> None:
        """Run `callback` once module `name` has been imported."""
        module = sys.modules.get(name)
        if module is not None:
            callback(module)
        else:
            self._pending.setdefault(name, []).append(callback)

    @property
    def pending(self) -> List[str]:
        """Module names still awaited."""
        return sorted(self._pending)

    def install(self) -> None:
        """Put the finder first on `sys.meta_path` (once)."""
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)

    def uninstall(self) -> None:
        """Remove the finder; callbacks not yet run are dropped."""
        while self in sys.meta_path:
            sys.meta_path.remove(self)

    def find_spec(
        self, fullname: str, path: Optional[Sequence[str]] = None, target: Optional[ModuleType] = None
    ) -> Optional[importlib.machinery.ModuleSpec]:
        busy = getattr(self._busy, "names", None)
        if busy is None:
            busy = self._busy.names = set()
        if fullname not in self._pending or fullname in busy:
            return None
        busy.add(fullname)
        try:
            spec = self._find_with_others(fullname, path, target)
        finally:
            busy.discard(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        # typeshed wants an importlib.abc.Loader subclass; the import system takes any loader (see _HookedLoader)
        spec.loader = _HookedLoader(spec.loader, self._run_callbacks)  # type: ignore[assignment]  # typeshed too strict
        return spec

    def _find_with_others(
        self, fullname: str, path: Optional[Sequence[str]], target: Optional[ModuleType]
    ) -> Optional[importlib.machinery.ModuleSpec]:
        for finder in list(sys.meta_path):
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                return spec
        return None

    def _run_callbacks(self, module: ModuleType) -> None:
        for callback in self._pending.pop(module.__name__, []):
            callback(module)
        if not self._pending:
            self.uninstall()
