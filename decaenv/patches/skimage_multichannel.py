"""Shim: scikit-image's removed `multichannel=` keyword (DECA's `demo_teaser.py` calls
`rescale(..., multichannel=True)`).

scikit-image 0.19 replaced `multichannel=True/False` by `channel_axis=-1/None` and 0.20 removed the old
keyword (`TypeError: rescale() got an unexpected keyword argument 'multichannel'`). The shim wraps the
functions of `skimage.transform` that had it and translates the keyword; functions that still accept it are
left alone. Code that did `from skimage.transform import rescale` before the shim was applied keeps the
unwrapped function (under `decaenv exec` the shim is applied as soon as `skimage.transform` is imported).
Upstream: https://github.com/scikit-image/scikit-image/pull/6583
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, List, Tuple

from decaenv.patches._model import Patch, PatchConfig, Target, versions
from decaenv.patches._patcher import Patcher

#: Functions of skimage.transform that took `multichannel` before 0.20.
FUNCTIONS: Tuple[str, ...] = ("rescale", "pyramid_reduce", "pyramid_expand", "pyramid_gaussian", "pyramid_laplacian")


def translate_multichannel(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap `func` so that `multichannel=True/False` becomes `channel_axis=-1/None`."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if "multichannel" in kwargs:
            multichannel = kwargs.pop("multichannel")
            if "channel_axis" in kwargs:
                raise TypeError(f"{func.__name__}() got both multichannel and channel_axis")
            kwargs["channel_axis"] = -1 if multichannel else None
        return func(*args, **kwargs)

    vars(wrapper)["__decaenv_wrapped__"] = func  # marks decaenv's wrapper and keeps the original
    return wrapper


def functions_to_wrap(module: Any) -> List[str]:
    """Names in FUNCTIONS that `module` has with `channel_axis` but without `multichannel`."""
    names = []
    for name in FUNCTIONS:
        func = getattr(module, name, None)
        try:
            params = inspect.signature(func).parameters if func is not None else {}
        except (TypeError, ValueError):
            continue
        if "channel_axis" in params and "multichannel" not in params:
            names.append(name)
    return names


def _apply(patcher: Patcher, config: PatchConfig) -> None:
    import skimage.transform as transform

    for name in functions_to_wrap(transform):
        patcher.setattr(transform, name, translate_multichannel(getattr(transform, name)))


PATCH = Patch(
    id="skimage-multichannel",
    title="skimage.transform multichannel= → channel_axis=",
    reason="scikit-image 0.20 removed the multichannel keyword that DECA's demo_teaser.py passes to rescale() "
    "(TypeError: unexpected keyword argument 'multichannel')",
    link="https://github.com/scikit-image/scikit-image/pull/6583",
    target=Target("scikit-image", "skimage.transform"),
    needed_for=versions(minimum="0.20"),
    apply=_apply,
)
