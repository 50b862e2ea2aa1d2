"""Keep start-up fast on typer >= 0.29, which coerces every option through pydantic.

Why the old `typer<0.29` cap existed: typer 0.29 validates each non-bool parameter with a pydantic
`TypeAdapter`, built lazily the first time the parameter is processed. click processes every parameter of the
invoked command and of the root (even when it was not given), so any real command (`decaenv doctor`,
`decaenv fetch --list`, even `decaenv doctor --help`) imported pydantic and built one adapter per option:
+150-300 ms on this project's machines. `decaenv --help` and `--version` were not affected (they exit first).

What this does instead of the cap: decaenv's options only use plain types (bool, str, int, float, Path, optionally
in a list, optionally with min/max). For exactly those, each parameter gets a light coercer implementing
typer's own `RuntimeParam` contract, so pydantic is never imported. Any parameter with another type or
constraint keeps typer's coercion. On typer < 0.29 (click's own types, no pydantic) nothing is changed.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from pathlib import Path
from typing import Any, Optional, Union, get_args, get_origin

_PLAIN = (bool, str, int, float, Path)
_TRUE, _FALSE = ("1", "true", "t", "yes", "y", "on"), ("0", "false", "f", "no", "n", "off", "")
# ParameterInfo settings the light coercer does not implement: a parameter using one keeps typer's coercion.
_UNHANDLED = {
    "parser": None,
    "click_type": None,
    "exists": False,
    "resolve_path": False,
    "writable": False,
    "allow_dash": False,
    "path_type": None,
    "clamp": False,
    "formats": None,
    "mode": None,
}


def _unwrap(annotation: Any):
    """(inner type, is_list) of X, Optional[X], List[X] or Optional[List[X]]."""
    if get_origin(annotation) is Union:
        args = [a for a in get_args(annotation) if a is not type(None)]
        annotation = args[0] if len(args) == 1 else annotation
    if get_origin(annotation) is list and len(get_args(annotation)) == 1:
        return get_args(annotation)[0], True
    return annotation, False


def _handled(annotation: Any, info: Any) -> bool:
    inner, _ = _unwrap(annotation)
    if inner not in _PLAIN:
        return False
    return all(getattr(info, name, default) in (default, None) for name, default in _UNHANDLED.items())


def _bad(param_types, message: str, param, ctx):
    return param_types.BadParameter(message, ctx=ctx, param=param)


def _one(kind: type, info: Any, value: Any, param, ctx, errors) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise _bad(errors, f"{value!r} is not a valid boolean.", param, ctx)
    if kind is str:
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    if kind is Path:
        path = value if isinstance(value, Path) else Path(os.fsdecode(value))
        if getattr(info, "readable", True) and path.exists() and not os.access(path, os.R_OK):
            raise _bad(errors, f"Path {str(path)!r} is not readable.", param, ctx)
        return path
    if isinstance(value, kind) and not isinstance(value, bool):
        number = value
    else:
        try:
            number = kind(str(value).strip())
        except ValueError:
            name = "integer" if kind is int else "float"
            raise _bad(errors, f"{value!r} is not a valid {name}.", param, ctx) from None
    low, high = getattr(info, "min", None), getattr(info, "max", None)
    if (low is not None and number < low) or (high is not None and number > high):
        bounds = " and ".join(
            b for b in (f"x>={low}" if low is not None else "", f"x<={high}" if high is not None else "") if b
        )
        raise _bad(errors, f"{number} is not in the range {bounds}.", param, ctx)
    return number


def _light_class() -> Optional[type]:
    """A `typer._coercion.RuntimeParam` subclass for plain types, or None on typer < 0.29 (or a changed API)."""
    try:  # by name: typer < 0.29 has no such module, and mypy checks against whichever typer is installed
        _coercion = importlib.import_module("typer._coercion")
    except ImportError:
        return None
    base = getattr(_coercion, "RuntimeParam", None)
    if base is None or not dataclasses.is_dataclass(base) or not hasattr(_coercion, "BadParameter"):
        return None

    @dataclasses.dataclass(frozen=True)
    class PlainRuntimeParam(base):  # type: ignore[misc, valid-type]
        """Coerces bool/str/int/float/Path values (and lists of them) without pydantic."""

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            kind, is_list = _unwrap(self.annotation)
            if is_list:
                items = value if isinstance(value, (list, tuple)) else [value]
                return [_one(kind, self.parameter_info, v, param, ctx, _coercion) for v in items]
            return _one(kind, self.parameter_info, value, param, ctx, _coercion)

    return PlainRuntimeParam


def _commands(command):
    yield command
    for sub in getattr(command, "commands", {}).values():
        yield from _commands(sub)


def _give(light: type, param) -> bool:
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None or getattr(param, "_runtime_param", "absent") is not None:
        return False
    if not _handled(descriptor.annotation, descriptor.parameter_info):
        return False
    param._runtime_param = light(parameter_info=descriptor.parameter_info, annotation=descriptor.annotation)
    return True


def _help_option_wrapper(light: type, original):
    def get_help_option(ctx):  # click makes the --help option on demand, one per context
        option = original(ctx)
        if option is not None:
            _give(light, option)
        return option

    return get_help_option


def avoid_pydantic(command) -> int:
    """Give every plain parameter of `command` and its subcommands (and their `--help`) the light coercer.

    Returns:
        how many declared parameters were given it (0 on typer < 0.29).
    """
    light = _light_class()
    if light is None:
        return 0
    count = 0
    for cmd in _commands(command):
        count += sum(_give(light, param) for param in getattr(cmd, "params", []))
        if hasattr(cmd, "get_help_option"):
            cmd.get_help_option = _help_option_wrapper(light, cmd.get_help_option)
    return count
