"""The one undo stack every shim changes the world through (pytest's `MonkeyPatch` model).

Each `setattr`/`delattr`/`setitem`/`delitem` records `(target, name, old value or NOTSET, new value)` and
`undo()` replays the records in reverse. Records carry the id of the shim that made them, so one shim can be
undone while others stay applied. For classes and modules the old value is read from `vars(target)`: a
`staticmethod` or `classmethod` is restored as the descriptor it was, an inherited attribute or one a module
provides lazily (`__getattr__`) is restored by deleting the override. Patching a name that does not exist is
refused unless `raising=False` says that adding it is the point (the numpy aliases, the Enum aliases).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import threading
from dataclasses import dataclass
from typing import Any, Iterator, List, MutableMapping, Optional, Tuple

log = logging.getLogger("decaenv")


class _NotSet:
    """Marks "the attribute or key was absent" (as opposed to holding None)."""

    _instance: Optional["_NotSet"] = None

    def __new__(cls) -> "_NotSet":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<NOTSET>"

    def __bool__(self) -> bool:
        return False


NOTSET: Any = _NotSet()


@dataclass(frozen=True)
class Change:
    """One recorded change.

    Attributes:
        kind: "attr" (target is an object, name an attribute name) or "item" (target is a mapping).
        target: the object or mapping changed.
        name: the attribute name or mapping key.
        old: the value before, or NOTSET if it was absent.
        new: the value set, or NOTSET for a deletion.
        owner: id of the shim that made the change (None outside any shim).
    """

    kind: str
    target: Any
    name: Any
    old: Any
    new: Any
    owner: Optional[str]

    def describe(self) -> str:
        where = getattr(self.target, "__name__", type(self.target).__name__)
        return f"{where}.{self.name}" if self.kind == "attr" else f"{where}[{self.name!r}]"


def _own_value(target: Any, name: str) -> Any:
    """The attribute as stored on `target` itself (classes, modules), else as `getattr` sees it."""
    if inspect.isclass(target) or inspect.ismodule(target):
        return vars(target).get(name, NOTSET)
    return getattr(target, name, NOTSET)


class Patcher:
    """An undo stack of attribute and item changes (thread-safe).

    Use `owned_by(id)` to tag the changes of one shim; `undo(owner=id)` then reverts only those.
    """

    def __init__(self) -> None:
        self._changes: List[Change] = []
        self._owner: Optional[str] = None
        self._lock = threading.RLock()

    @property
    def changes(self) -> Tuple[Change, ...]:
        """The recorded changes, oldest first."""
        return tuple(self._changes)

    def __len__(self) -> int:
        return len(self._changes)

    @contextlib.contextmanager
    def owned_by(self, owner: str) -> Iterator["Patcher"]:
        """Tag every change made inside the block with `owner`."""
        with self._lock:
            previous, self._owner = self._owner, owner
            try:
                yield self
            finally:
                self._owner = previous

    def setattr(self, target: Any, name: str, value: Any, *, raising: bool = True) -> None:
        """Set `target.name = value`, remembering the old value.

        Raises:
            AttributeError: `target` has no attribute `name` and `raising` is true.
        """
        with self._lock:
            if raising and not hasattr(target, name):
                raise AttributeError(f"{target!r} has no attribute {name!r} (pass raising=False to add it)")
            old = _own_value(target, name)
            setattr(target, name, value)
            self._changes.append(Change("attr", target, name, old, value, self._owner))

    def delattr(self, target: Any, name: str, *, raising: bool = True) -> None:
        """Delete `target.name`, remembering it; a missing name raises unless `raising` is false."""
        with self._lock:
            old = _own_value(target, name)
            if old is NOTSET:
                if raising:
                    raise AttributeError(f"{target!r} has no attribute {name!r} of its own to delete")
                return
            delattr(target, name)
            self._changes.append(Change("attr", target, name, old, NOTSET, self._owner))

    def setitem(self, mapping: MutableMapping, key: Any, value: Any, *, raising: bool = False) -> None:
        """Set `mapping[key] = value`, remembering the old value (adding a key is allowed by default)."""
        with self._lock:
            if raising and key not in mapping:
                raise KeyError(key)
            old = mapping.get(key, NOTSET) if hasattr(mapping, "get") else NOTSET
            mapping[key] = value
            self._changes.append(Change("item", mapping, key, old, value, self._owner))

    def delitem(self, mapping: MutableMapping, key: Any, *, raising: bool = True) -> None:
        """Delete `mapping[key]`, remembering it; a missing key raises unless `raising` is false."""
        with self._lock:
            if key not in mapping:
                if raising:
                    raise KeyError(key)
                return
            old = mapping[key]
            del mapping[key]
            self._changes.append(Change("item", mapping, key, old, NOTSET, self._owner))

    def undo(self, owner: Optional[str] = None) -> int:
        """Revert the changes (of `owner` only, when given), newest first; returns how many were reverted."""
        with self._lock:
            mine = [c for c in self._changes if owner is None or c.owner == owner]
            for change in reversed(mine):
                self._check_not_shadowed(change)
                _revert(change)
                self._changes.remove(change)
            return len(mine)

    def _check_not_shadowed(self, change: Change) -> None:
        later = self._changes[self._changes.index(change) + 1 :]
        for other in later:
            if other.kind == change.kind and other.target is change.target and other.name == change.name:
                raise RuntimeError(
                    f"cannot undo {change.describe()} of {change.owner}: {other.owner} changed it "
                    "later and is still applied (undo that one first)"
                )

    @classmethod
    @contextlib.contextmanager
    def context(cls) -> Iterator["Patcher"]:
        """A fresh Patcher whose changes are undone when the block exits, also on exceptions."""
        patcher = cls()
        try:
            yield patcher
        finally:
            patcher.undo()


def _current(change: Change) -> Any:
    if change.kind == "attr":
        return _own_value(change.target, change.name)
    return change.target.get(change.name, NOTSET) if hasattr(change.target, "get") else NOTSET


def _revert(change: Change) -> None:
    current = _current(change)
    if current is not change.new:
        log.warning(
            "%s was changed by someone else after decaenv's shim %s set it; restoring the original anyway",
            change.describe(),
            change.owner,
        )
    if change.kind == "attr":
        if change.old is NOTSET:
            if _own_value(change.target, change.name) is not NOTSET:
                delattr(change.target, change.name)
        else:
            setattr(change.target, change.name, change.old)
    elif change.old is NOTSET:
        change.target.pop(change.name, None)
    else:
        change.target[change.name] = change.old
