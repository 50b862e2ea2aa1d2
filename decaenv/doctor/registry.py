"""The registry of checks: registration by decorator, validation, selection by id or category, ordering.

Check modules under `decaenv.doctor.checks` register into `REGISTRY` with `@check(...)`; tests build their
own `Registry` with fake checks.
"""

from __future__ import annotations

import re
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from decaenv.doctor.model import CATEGORIES, Check, CheckFunc
from decaenv.errors import UsageError

_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_FM = re.compile(r"^FM(0[1-9]|[1-3][0-9]|4[0-7])$")
_CATEGORY_ORDER = {name: i for i, (name, _title) in enumerate(CATEGORIES)}


class Registry:
    """An ordered set of checks with stable kebab-case ids."""

    def __init__(self) -> None:
        self._checks: Dict[str, Check] = {}

    def add(self, item: Check) -> Check:
        """Register a check; ids must be unique kebab-case, categories known, FM ids well-formed."""
        if not _ID.match(item.id):
            raise ValueError(f"check id {item.id!r} is not kebab-case")
        if item.id in self._checks:
            raise ValueError(f"check id {item.id!r} registered twice")
        if item.category not in _CATEGORY_ORDER:
            raise ValueError(f"check {item.id!r}: unknown category {item.category!r}")
        bad = [f for f in item.fm if not _FM.match(f)]
        if bad:
            raise ValueError(f"check {item.id!r}: bad failure-mode ids {bad}")
        self._checks[item.id] = item
        return item

    def check(
        self,
        id: str,
        *,
        title: str,
        category: str,
        requires: Sequence[str] = (),
        slow: bool = False,
        fm: Sequence[str] = (),
        cache: Optional[Sequence[str]] = None,
        probes: Sequence[str] = (),
        cpu_blocker: bool = False,
        symptoms: Sequence[str] = (),
        cause: str = "",
        fix: str = "",
        link: Optional[str] = None,
    ) -> Callable[[CheckFunc], CheckFunc]:
        """Decorator registering `func(ctx) -> CheckResult` under `id` (see `Check` for the fields)."""

        def deco(func: CheckFunc) -> CheckFunc:
            self.add(
                Check(
                    id=id,
                    title=title,
                    category=category,
                    func=func,
                    requires=tuple(requires),
                    slow=slow,
                    fm=tuple(fm),
                    cache=None if cache is None else tuple(cache),
                    probes=tuple(probes),
                    cpu_blocker=cpu_blocker,
                    symptoms=tuple(symptoms),
                    cause=cause,
                    fix=fix,
                    link=link,
                )
            )
            return func

        return deco

    def replace(self, item: Check) -> Check:
        """Swap the registered check with `item`'s id for `item` (tests); returns the one it replaces."""
        old = self._checks[item.id]
        self._checks[item.id] = item
        return old

    def __contains__(self, check_id: str) -> bool:
        return check_id in self._checks

    def __len__(self) -> int:
        return len(self._checks)

    def get(self, check_id: str) -> Check:
        return self._checks[check_id]

    def all(self) -> List[Check]:
        """Every check in display order: category order, then registration order."""
        position = {cid: i for i, cid in enumerate(self._checks)}
        return sorted(self._checks.values(), key=lambda c: (_CATEGORY_ORDER[c.category], position[c.id]))

    def validate(self) -> None:
        """Every requirement exists and there is no cycle (raises ValueError)."""
        for item in self._checks.values():
            missing = [r for r in item.requires if r not in self._checks]
            if missing:
                raise ValueError(f"check {item.id!r} requires unknown checks {missing}")
        self.topological(self._checks)

    def topological(self, ids: Iterable[str]) -> List[Check]:
        """The given checks ordered so requirements come first; slow checks last among equals."""
        wanted = set(ids)
        order: List[Check] = []
        state: Dict[str, int] = {}

        def visit(cid: str, trail: Tuple[str, ...]) -> None:
            if state.get(cid) == 2:
                return
            if state.get(cid) == 1:
                raise ValueError(f"requirement cycle: {' -> '.join(trail + (cid,))}")
            state[cid] = 1
            for req in self._checks[cid].requires:
                if req in wanted:
                    visit(req, trail + (cid,))
            state[cid] = 2
            order.append(self._checks[cid])

        display = [c.id for c in self.all() if c.id in wanted]
        for cid in [c for c in display if not self._checks[c].slow] + [c for c in display if self._checks[c].slow]:
            visit(cid, ())
        return order

    def select(self, names: Sequence[str] = ()) -> Tuple[List[Check], List[Check]]:
        """Resolve `decaenv doctor NAME...` (check ids or category names; empty = everything).

        Returns:
            (shown, needed): the checks to display, and those to run (shown plus their requirements).
        Raises:
            UsageError: an unknown name (with the closest match suggested).
        """
        if not names:
            everything = self.all()
            return everything, everything
        chosen: List[str] = []
        for name in names:
            if name in self._checks:
                chosen.append(name)
            elif name in _CATEGORY_ORDER:
                chosen += [c.id for c in self.all() if c.category == name]
            else:
                import difflib

                choices = list(self._checks) + list(_CATEGORY_ORDER)
                close = difflib.get_close_matches(name, choices, n=1)
                hint = f"did you mean `{close[0]}`? " if close else ""
                raise UsageError(
                    f"no check or category named {name!r}", hint=f"{hint}run `decaenv doctor --list-checks` for the ids"
                )
        needed = set(chosen)
        stack = list(chosen)
        while stack:
            for req in self._checks[stack.pop()].requires:
                if req not in needed:
                    needed.add(req)
                    stack.append(req)
        shown_ids = set(chosen)
        return [c for c in self.all() if c.id in shown_ids], [c for c in self.all() if c.id in needed]


#: The registry `decaenv doctor` uses; `decaenv.doctor.checks` fills it on import.
REGISTRY = Registry()
check = REGISTRY.check
