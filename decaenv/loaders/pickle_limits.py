"""Bound what a pickle may build before any unpickler runs on it (no numpy, no torch: `fetch.structure` uses it).

An allowlist stops code execution, not denial of service: a 414-byte pickle of lists that share references
("billion laughs") unpickles instantly into an object graph whose *tree* has 10^30 nodes, and every consumer
that walks it as a tree (numpy's `asarray`, `_plain`, a validator) runs out of memory; a 200k-deep nesting
makes them raise RecursionError. `check_pickle` replays the pickle's opcodes (`pickletools.genops`, which
executes nothing) on a stack of (tree size, depth) cells — a memo reference shares its cell, a mutation
(`APPEND`, `SETITEMS`, `BUILD`) grows the cell in place — and refuses the file as soon as the expanded tree,
its depth, the memo references, one container or the opcode count passes `Limits`. Linear in the pickle's
length, constant memory per opcode.

The defaults are derived from DECA's and FLAME's real files (docs/RELIABILITY.md has the measurements): the
largest, DECA's checkpoint with optimizer state, has 34,607 opcodes, 5,895 memo references, a tree of
23,477 nodes, depth 8 and at most 659 objects on the stack; FLAME's pickle has 405 opcodes and depth 7.
"""

from __future__ import annotations

import pickletools
from dataclasses import dataclass
from typing import BinaryIO, Dict, List

from decaenv.errors import DataError


@dataclass(frozen=True)
class Limits:
    """What one pickle may hold.

    Attributes:
        ops: opcodes (bounds the scan's time: about 150k/s on a slow core).
        memo_refs: memo references (GET opcodes).
        elements: nodes of the fully expanded object tree (shared references counted every time they occur).
        depth: nesting depth of that tree, and of the unpickler's stack.
        container: items added to one container by one opcode (APPENDS, SETITEMS, TUPLE, ...).
        stack: objects on the unpickler's stack at once (pickle batches containers by 1,000 items).
    """

    ops: int = 200_000
    memo_refs: int = 60_000
    elements: int = 400_000
    depth: int = 64
    container: int = 100_000
    stack: int = 10_000


DEFAULT_LIMITS = Limits()


class PickleLimitError(DataError):
    """A pickle that would build more than `Limits` allows (a denial-of-service attempt or a wrong file)."""


class _Cell:
    __slots__ = ("size", "depth")

    def __init__(self, size: int = 1, depth: int = 0):
        self.size, self.depth = size, depth


_MUTATORS = frozenset({"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"})
_GETS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})


def check_pickle(fh: BinaryIO, what: str, limits: Limits = DEFAULT_LIMITS) -> None:
    """Replay the pickle at `fh`'s position (see the module docstring); the position is restored.

    Raises:
        PickleLimitError: the pickle passes one of `limits` (one line naming which, and the file).
        ValueError, EOFError, ...: the opcode stream is damaged (as `pickle.Unpickler` would raise them;
            the callers turn them into their own "damaged file" message).
    """
    start = fh.tell()
    try:
        _Replay(what, limits).run(fh)
    finally:
        fh.seek(start)


class _Replay:
    def __init__(self, what: str, limits: Limits):
        self.what, self.limits = what, limits
        self.stack: List[_Cell] = []
        self.marks: List[int] = []  # stack heights at each open MARK (O(1) per mark, whatever the stack)
        self.memo: Dict[int, _Cell] = {}
        self.refs = 0

    def refuse(self, text: str, limit: int) -> PickleLimitError:
        return PickleLimitError(f"{self.what} refused: its pickle {text} (limit {limit:,}); no DECA or FLAME file "
                                "comes near this", hint="this is not a genuine data file: get it again from its "
                                                        "official source")

    def run(self, fh: BinaryIO) -> None:
        for count, (op, arg, _pos) in enumerate(pickletools.genops(fh), 1):
            if count > self.limits.ops:
                raise self.refuse(f"has more than {self.limits.ops:,} opcodes", self.limits.ops)
            if op.name == "STOP":
                return
            self.step(op, arg)
            if len(self.stack) + len(self.marks) > self.limits.stack:
                raise self.refuse(f"keeps more than {self.limits.stack:,} objects open (nesting)", self.limits.stack)

    def step(self, op, arg) -> None:
        name = op.name
        if name in _PUTS:
            self.memo[arg] = self._top()
            return
        if name == "MEMOIZE":
            self.memo[len(self.memo)] = self._top()
            return
        if name in _GETS:
            self.refs += 1
            if self.refs > self.limits.memo_refs:
                raise self.refuse(f"has more than {self.limits.memo_refs:,} memo references", self.limits.memo_refs)
            self.stack.append(self.memo.get(arg) or _Cell())
            return
        if name == "DUP":
            self.stack.append(self._top())
            return
        if name == "MARK":
            self.marks.append(len(self.stack))
            return
        popped = self._pop(op)
        if name == "POP" or name == "POP_MARK" or not op.stack_after:
            return
        if name in _MUTATORS and popped:
            target, items = popped[0], popped[1:]
        else:
            target, items = _Cell(), popped
        if len(items) > self.limits.container:
            raise self.refuse(f"builds a container of {len(items):,} items", self.limits.container)
        for item in items:
            target.size += item.size
            target.depth = max(target.depth, item.depth + 1)
        if target.size > self.limits.elements:
            raise self.refuse(f"expands to more than {self.limits.elements:,} objects (shared references "
                              "counted each time)", self.limits.elements)
        if target.depth > self.limits.depth:
            raise self.refuse(f"nests deeper than {self.limits.depth} levels", self.limits.depth)
        self.stack.extend(target for _ in op.stack_after)

    def _top(self) -> _Cell:
        return self.stack[-1] if self.stack else _Cell()

    def _pop(self, op) -> List[_Cell]:
        before = op.stack_before
        if pickletools.markobject in before:
            cut = min(self.marks.pop() if self.marks else 0, len(self.stack))
            sliced = self.stack[cut:]
            del self.stack[cut:]
            head = before.index(pickletools.markobject)
            lead = [self.stack.pop() for _ in range(min(head, len(self.stack)))][::-1]
            return lead + sliced
        count = min(len(before), len(self.stack))
        popped = self.stack[len(self.stack) - count:] if count else []
        del self.stack[len(self.stack) - count:]
        return popped
