"""The known breakages of DECA's own source, as rewrite rules (one row each, with the failure it fixes).

Each rule has a `rewrite(text) -> (new_text, count)` for the forms it knows, and optionally a `leftover`
pattern: an occurrence of the breakage in a form the rule cannot rewrite safely. `decaenv patch` leaves a
file with any leftover untouched and reports the lines, so a file is either fully fixed or not changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Optional, Pattern, Tuple

PY = (".py",)
CPP = (".cu", ".cuh", ".cpp", ".cc", ".h", ".hpp")


@dataclass(frozen=True)
class Rule:
    """One rewrite.

    Attributes:
        id: stable id ("fa-landmarks-type").
        description: what it changes, in one line.
        failure: the failure-mode id and error it fixes.
        suffixes: file name endings it applies to.
        rewrite: `text -> (new text, number of replacements)`.
        leftover: matches the breakage in forms `rewrite` does not handle (None: none possible).
        exec_shim: the `decaenv exec` shim that handles such a leftover at run time (None: none does). A leftover
            it handles does not keep the file from being patched: it is reported as a line that needs
            `decaenv exec` rather than a rewrite.
        exec_paths: the files (relative path, searched) where `exec_shim` handles leftovers (None: all).
    """

    id: str
    description: str
    failure: str
    suffixes: Tuple[str, ...]
    rewrite: Callable[[str], Tuple[str, int]]
    leftover: Optional[Pattern[str]] = None
    exec_shim: Optional[str] = None
    exec_paths: Optional[Pattern[str]] = None

    def covered_by_exec(self, rel: str) -> bool:
        """Whether `decaenv exec` handles a leftover of this rule in the file `rel` (POSIX path)."""
        return self.exec_shim is not None and (self.exec_paths is None or bool(self.exec_paths.search(rel)))


def _sub(pattern: str, repl, flags: int = 0) -> Callable[[str], Tuple[str, int]]:
    compiled = re.compile(pattern, flags)
    return lambda text: compiled.subn(repl, text)


# -- face_alignment enum names ------------------------------------------------------------------------------
_FA_NAMES = {"_2D": "TWO_D", "_2halfD": "TWO_HALF_D", "_3D": "THREE_D"}
_fa = _sub(r"\bLandmarksType\.(_2D|_2halfD|_3D)\b", lambda m: f"LandmarksType.{_FA_NAMES[m.group(1)]}")

# -- the rasterizer's JIT compiler flags (list items in renderer.py) ---------------------------------------
_BAD_FLAG = re.compile(r"""^\s*(['"])(-std=c\+\+14|-ccbin=\$\$?\(which gcc-7\))\1\s*$""")
_FLAG_LIST = re.compile(r"""\[([^\[\]\n]*?(?:-std=c\+\+14|-ccbin=\$\$?\(which gcc-7\))[^\[\]\n]*)\]""")


def _drop_flags(text: str) -> Tuple[str, int]:
    count = 0

    def fix(match: "re.Match[str]") -> str:
        nonlocal count
        items = match.group(1).split(",")
        kept = [item.strip() for item in items if item.strip() and not _BAD_FLAG.match(item)]
        dropped = len([i for i in items if i.strip()]) - len(kept)
        if any(("c++14" in i or "gcc-7" in i) for i in kept):  # not a plain list of string literals
            return match.group(0)
        count += dropped
        return "[" + ", ".join(kept) + "]"

    return _FLAG_LIST.sub(fix, text), count


# -- ATen API in the CUDA/C++ sources ------------------------------------------------------------------------
_dispatch = _sub(r"(AT_DISPATCH_\w+\s*\(\s*)([A-Za-z_][\w.\->\[\]]*)\.type\(\)", r"\1\2.scalar_type()")
_data_ptr = _sub(r"\.data<(\s*[A-Za-z_][\w:]*\s*)>\(\)", r".data_ptr<\1>()")

# -- torch.load without map_location ------------------------------------------------------------------------
# One positional argument: names, attributes, subscripts, strings and calls one level deep, no top-level comma
# (`torch.load(path)`, `torch.load(cfg['model'])`, `torch.load(os.path.join(out_dir, 'model.tar'))`).
_LOAD_ARG = r"""(?:[^(),\[\]'"\n]|'[^'\n]*'|"[^"\n]*"|\[[^\[\]\n]*\]|\([^()\n]*\))+?"""
_load = _sub(rf"\btorch\.load\(\s*({_LOAD_ARG})\s*\)", r"torch.load(\1, map_location='cpu')")

# -- numpy aliases in DECA's code ------------------------------------------------------------------------------
_NP_NAMES = {"int": "int", "float": "float", "bool": "bool", "object": "object", "complex": "complex",
             "str": "str", "unicode": "str", "long": "int", "float_": "np.float64", "complex_": "np.complex128",
             "NaN": "np.nan", "NAN": "np.nan", "Inf": "np.inf", "Infinity": "np.inf", "infty": "np.inf"}
_np_alias = _sub(r"(?<![\w.])(?:np|numpy)\.(" + "|".join(sorted(_NP_NAMES, key=len, reverse=True)) + r")\b(?!\.)",
                 lambda m: _NP_NAMES[m.group(1)])

# -- scikit-image multichannel= ---------------------------------------------------------------------------------
_multichannel = _sub(r"\bmultichannel\s*=\s*(True|False)\b",
                     lambda m: "channel_axis=-1" if m.group(1) == "True" else "channel_axis=None")

#: Under `decaenv exec` DECA never compiles its rasterizer (this shim provides the module), so hard-coded gcc-7 /
#: C++14 / old-ATen lines that cannot be rewritten only matter to a hand-made build.
RASTERIZER_SHIM = "standard-rasterizer"
RASTERIZER_FILES = re.compile(r"(^|/)(rasterizer/|renderer\.py$)")

RULES: Tuple[Rule, ...] = (
    Rule("fa-landmarks-type", "face_alignment LandmarksType._2D/_2halfD/_3D → TWO_D/TWO_HALF_D/THREE_D",
         "FM12 AttributeError: _2D (face-alignment >= 1.3.5)", PY, _fa),
    Rule("rasterizer-jit-flags", "drop '-std=c++14' and '-ccbin=$$(which gcc-7)' from the JIT build flags",
         "FM02/FM04 nvcc fatal: Failed to preprocess host compiler properties; #error C++17/C++20 required",
         PY, _drop_flags, re.compile(r"""-ccbin=\$\$?\(which gcc-7\)|-std=c\+\+14|(['"])gcc-7\1|\bCC=gcc-7\b"""),
         RASTERIZER_SHIM, RASTERIZER_FILES),
    Rule("aten-scalar-type", "AT_DISPATCH_*(x.type(), ...) → x.scalar_type()",
         "FM05 no suitable conversion from DeprecatedTypeProperties to c10::ScalarType", CPP, _dispatch,
         re.compile(r"AT_DISPATCH_\w+\s*\([^,;]*\.type\(\)"), RASTERIZER_SHIM,
         RASTERIZER_FILES),
    Rule("aten-data-ptr", "tensor.data<T>() → tensor.data_ptr<T>()",
         "FM05 Tensor.data<T>() is deprecated", CPP, _data_ptr, re.compile(r"\.data<[^>\n]*>\(\)"),
         RASTERIZER_SHIM, RASTERIZER_FILES),
    Rule("torch-load-map-location", "torch.load(path) → torch.load(path, map_location='cpu')",
         "FM34 Attempting to deserialize object on a CUDA device", PY, _load,
         re.compile(r"\btorch\.load\((?!(?:[^()\n]|\([^()\n]*\))*\bmap_location\b)(?:[^()\n]|\([^()\n]*\))*\)"),
         "torch-load"),
    Rule("numpy-aliases",
         "np.int/np.float/np.bool/... → int/float/bool/...; np.float_ → np.float64, np.NaN → np.nan",
         "FM19 AttributeError: module 'numpy' has no attribute 'int'", PY, _np_alias),
    Rule("skimage-multichannel", "multichannel=True/False → channel_axis=-1/None",
         "FM18 TypeError: rescale() got an unexpected keyword argument 'multichannel'", PY, _multichannel,
         re.compile(r"\bmultichannel\s*="), "skimage-multichannel"),
)


def rules_for(name: str) -> Tuple[Rule, ...]:
    """The rules that apply to a file of this name."""
    return tuple(r for r in RULES if name.endswith(r.suffixes))
