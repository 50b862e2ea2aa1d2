"""Global options anywhere on the line: `decaenv fetch --data-dir D -q` means `decaenv --data-dir D -q fetch`.

click only parses an option at the level that declares it. Before click runs, the global options found after
the command path are moved in front of it, unless the command declares an option of the same name itself
(`decaenv build -v` keeps its own `--verbose`). Nothing after `--`, and nothing after the first argument of a
command that stops at its first argument (`decaenv exec`), is touched.
"""

from __future__ import annotations

import re
from typing import Dict, List, Sequence, Set, Tuple

#: The root's options that may also be written after the command: name -> number of values it takes.
GLOBAL_OPTIONS: Dict[str, int] = {"--data-dir": 1, "--verbose": 0, "-v": 0, "--quiet": 0, "-q": 0, "--no-progress": 0}
_REPEATED_SHORT = re.compile(r"^-([vq])\1+$")  # -vv, -qq


def _option_arity(command) -> Dict[str, int]:
    """Every option name of a click command -> how many values follow it (0 for flags and counters)."""
    arity: Dict[str, int] = {}
    for param in getattr(command, "params", []):
        if getattr(param, "param_type_name", "") != "option":
            continue
        takes = 0 if (getattr(param, "is_flag", False) or getattr(param, "count", False)) else param.nargs
        for name in list(param.opts) + list(param.secondary_opts):
            arity[name] = takes
    return arity


def _walk_to_leaf(root, args: Sequence[str]) -> Tuple[object, int]:
    """Follow the subcommand names in `args`; returns (deepest command, index of its first own argument)."""
    command, i = root, 0
    while hasattr(command, "commands"):
        arity = _option_arity(command)
        while i < len(args) and args[i].startswith("-") and args[i] != "--":
            name = args[i].split("=", 1)[0]
            i += 1 + (arity.get(name, 0) if "=" not in args[i] else 0)
        if i >= len(args) or args[i] not in command.commands:
            return command, i
        command, i = command.commands[args[i]], i + 1
    return command, i


def _global_name(token: str, own: Set[str]) -> Tuple[str, List[str]]:
    """(global option name, the tokens it expands to) when `token` is a global option the command lacks."""
    name = token.split("=", 1)[0]
    if name in GLOBAL_OPTIONS and name not in own:
        return name, [token]
    match = _REPEATED_SHORT.match(token)
    if match and f"-{match.group(1)}" not in own:
        return f"-{match.group(1)}", [f"-{match.group(1)}"] * (len(token) - 1)
    return "", []


def hoist_global_options(root, args: Sequence[str]) -> List[str]:
    """Move the global options written after the command path in front of it (see the module docstring).

    Args:
        root: the click group of the whole CLI. args: the command line without the program name.
    Returns:
        the rewritten argument list (a copy; `args` itself when there is nothing to move).
    """
    leaf, start = _walk_to_leaf(root, args)
    if start == 0 or leaf is root:
        return list(args)
    own_arity = _option_arity(leaf)
    own = set(own_arity)
    settings = getattr(leaf, "context_settings", None) or {}
    stops_at_argument = (
        settings.get("allow_interspersed_args", True) is False
        or getattr(leaf, "allow_interspersed_args", True) is False
    )
    moved: List[str] = []
    kept: List[str] = list(args[:start])
    i = start
    while i < len(args):
        token = args[i]
        if token == "--":
            kept.extend(args[i:])
            break
        name, expanded = _global_name(token, own) if token.startswith("-") else ("", [])
        if name:
            takes = GLOBAL_OPTIONS[name] if "=" not in token else 0
            moved.extend(expanded + list(args[i + 1 : i + 1 + takes]))
            i += 1 + takes
            continue
        if not token.startswith("-") and stops_at_argument:
            kept.extend(args[i:])
            break
        takes = own_arity.get(token.split("=", 1)[0], 0) if token.startswith("-") and "=" not in token else 0
        kept.extend(args[i : i + 1 + takes])
        i += 1 + takes
    return moved + kept if moved else list(args)
