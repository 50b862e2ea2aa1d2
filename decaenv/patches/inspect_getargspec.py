"""Shim: `inspect.getargspec`, removed in Python 3.11, for chumpy 0.70 (`ch.py` calls it at import).

chumpy only reads `.args`; this restores the historical function on top of `inspect.getfullargspec`, with its
named-tuple result and its refusal of keyword-only parameters and annotations.
Upstream: https://github.com/mattloper/chumpy/issues/51
"""

from __future__ import annotations

import collections
import inspect
from typing import Any, Callable

from decaenv.patches._model import Patch, PatchConfig, Target, versions
from decaenv.patches._patcher import Patcher

ArgSpec = collections.namedtuple("ArgSpec", "args varargs keywords defaults")


def getargspec(func: Callable[..., Any]) -> ArgSpec:
    """`inspect.getargspec` as it was in Python <= 3.10 (names, *args, **kwargs, defaults).

    Raises:
        ValueError: the function has keyword-only parameters or annotations (as the original did).
    """
    full = inspect.getfullargspec(func)
    if full.kwonlyargs or full.annotations:
        raise ValueError(
            "Function has keyword-only parameters or annotations, use inspect.signature() API which can support them"
        )
    return ArgSpec(full.args, full.varargs, full.varkw, full.defaults)


def _apply(patcher: Patcher, config: PatchConfig) -> None:
    if not hasattr(inspect, "getargspec"):
        patcher.setattr(inspect, "getargspec", getargspec, raising=False)


PATCH = Patch(
    id="inspect-getargspec",
    title="inspect.getargspec for chumpy",
    reason="chumpy 0.70 calls inspect.getargspec while importing; Python 3.11 removed it "
    "(AttributeError: module 'inspect' has no attribute 'getargspec')",
    link="https://github.com/mattloper/chumpy/issues/51",
    target=Target("python", "inspect"),
    needed_for=versions(minimum="3.11"),
    apply=_apply,
)
