"""Run inside a throw-away venv (with the repository on PYTHONPATH): exercise the chumpy-free FLAME loader and
the shims against that venv's Python and numpy, and print the findings as one JSON line.

Usage: python venv_probe.py FLAME_PICKLE WORK_DIR
"""

import enum
import hashlib
import json
import os
import pickle
import sys

import numpy as np


def digest(arr):
    arr = np.ascontiguousarray(arr)
    return [str(arr.dtype), list(arr.shape), hashlib.sha256(arr.tobytes()).hexdigest()]


def load_flame(pickle_path, work):
    from decaenv.loaders import flame

    model = flame.load_flame(pickle_path)
    out = {"arrays": {k: digest(v) for k, v in model.arrays().items()}, "kind": model.kind}
    npz = flame.convert_to_npz(pickle_path, os.path.join(work, "generic_model.npz"))
    again = flame.load_flame(npz)
    out["npz_same"] = all(np.array_equal(getattr(model, k), getattr(again, k)) for k in flame.REQUIRED)
    out["imported"] = sorted(m for m in ("chumpy", "scipy", "torch") if m in sys.modules)
    return out


def malicious(work):
    from decaenv.errors import UnsafeContentError
    from decaenv.loaders import flame

    marker = os.path.join(work, "pwned")

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + marker,))

    path = os.path.join(work, "evil.pkl")
    with open(path, "wb") as fh:
        pickle.dump({"v_template": Evil()}, fh, protocol=2)
    try:
        flame.load_flame(path)
        verdict = "loaded"
    except UnsafeContentError as exc:
        verdict = "refused: " + exc.one_line()
    return {"verdict": verdict, "ran": os.path.exists(marker)}


def shims():
    """apply/undo identity of the shims that need no third-party target besides numpy."""
    import inspect

    from decaenv import patches
    from decaenv.patches.face_alignment_api import add_aliases

    result = {}
    before = dict(vars(np))
    with patches.active("numpy-aliases") as applied:
        ns = {}
        exec("from numpy import bool, int, float, complex, object, unicode, str, nan, inf", ns)
        import numpy.ma  # noqa: F401 - crashed when np.bool was overwritten

        own_bool = before["bool"] if "bool" in before else np.bool_  # numpy 2's own, or the added alias
        result["numpy_aliases"] = {
            "applied": applied,
            "np_bool_untouched": vars(np).get("bool") is own_bool,
            "ma_ok": int(np.ma.masked_array([1, 2], mask=[0, 1]).sum()) == 1,
        }
    result["numpy_restored"] = all(vars(np).get(k) is v for k, v in before.items()) and not any(
        k in vars(np) for k in ("int", "unicode")
    )
    had = hasattr(inspect, "getargspec")
    with patches.active("inspect-getargspec") as applied:
        result["getargspec"] = {"applied": applied, "args": inspect.getargspec(lambda a, b=1: 0).args}
    result["getargspec_restored"] = hasattr(inspect, "getargspec") == had

    lt = enum.IntEnum("LandmarksType", [("TWO_D", 1), ("TWO_HALF_D", 2), ("THREE_D", 3)])
    members = dict(lt._member_map_)
    p = patches.Patcher()
    add_aliases(p, lt)
    ok = lt._2D is lt.TWO_D and lt["_3D"] is lt.THREE_D and len(list(lt)) == 3
    p.undo()
    result["enum_aliases"] = ok and dict(lt._member_map_) == members and not hasattr(lt, "_2D")
    return result


def main():
    pickle_path, work = sys.argv[1], sys.argv[2]
    report = {"python": "%d.%d.%d" % sys.version_info[:3], "numpy": np.__version__}
    report["flame"] = load_flame(pickle_path, work)
    report["malicious"] = malicious(work)
    try:
        import packaging  # noqa: F401 - imported only to check that it is installed
    except ImportError:
        report["shims"] = None
    else:
        report["shims"] = shims()
    sys.stdout.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
