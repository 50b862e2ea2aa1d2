"""Benchmarks of the compatibility layer, each against its baseline in the same run.

1. FLAME model load: the chumpy-free pickle reader vs the converted npz (why the runtime prefers the npz).
2. `decaenv exec` start-up cost: a Python program importing numpy, run bare, with only the generated
   sitecustomize active (what every Python process under `decaenv exec` pays), and through `decaenv exec`
   (adds decaenv's own CLI start-up once).

Usage: python bench/compat.py [--repeat N] [--flame PATH]   (default: a synthetic FLAME-size model)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import summarize


def _time_call(fn: Callable[[], object], repeat: int) -> List[float]:
    fn()  # warm-up (page cache, imports)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def bench_flame(pkl: Path, work: Path, repeat: int) -> None:
    from decaenv.loaders import flame

    npz = flame.convert_to_npz(pkl, work / "generic_model.npz")
    print(
        f"FLAME load ({pkl.stat().st_size / 1e6:.1f} MB pickle, {npz.stat().st_size / 1e6:.1f} MB npz), {repeat} runs"
    )
    pkl_row = summarize("load_flame(generic_model.pkl)", _time_call(lambda: flame.load_flame(pkl), repeat))
    npz_row = summarize("load_flame(generic_model.npz)", _time_call(lambda: flame.load_flame(npz), repeat))
    pick = summarize(
        "preferred_flame_file() (size/mtime check)", _time_call(lambda: flame.preferred_flame_file(npz.parent), repeat)
    )
    print(
        f"  -> npz is {pkl_row['median'] / npz_row['median']:.2f}x faster than the pickle; choosing it costs "
        f"{pick['median'] * 1000:.1f} ms"
    )


def _interleaved(commands: Dict[str, Tuple[List[str], Dict[str, str]]], repeat: int) -> Dict[str, List[float]]:
    """Wall-clock seconds per command, the commands taking turns (so load changes hit them alike)."""
    times: Dict[str, List[float]] = {name: [] for name in commands}
    for round_ in range(repeat + 1):  # round 0 is an untimed warm-up
        for name, (argv, env) in commands.items():
            start = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True, env=env)
            if round_:
                times[name].append(time.perf_counter() - start)
    return times


def bench_exec(repeat: int) -> None:
    from decaenv.patches import launcher

    py = sys.executable
    code = [py, "-c", "import numpy"]
    plain_env = dict(os.environ)
    commands = {
        "bare": (code, plain_env),
        "with the shims' sitecustomize": (code, launcher.child_env(launcher.site_dir())),
        "decaenv exec -- python ...": ([py, "-m", "decaenv", "exec", "--", *code], plain_env),
    }
    print(f"`{py} -c 'import numpy'`, {repeat} interleaved runs")
    rows = {name: summarize(name, t) for name, t in _interleaved(commands, repeat).items()}
    bare, site, full = (rows[name]["median"] for name in commands)
    print(
        f"  -> the sitecustomize adds {(site - bare) * 1000:.1f} ms to each Python process ({site / bare:.2f}x); "
        f"decaenv exec adds {(full - bare) * 1000:.1f} ms once ({full / bare:.2f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--flame", type=Path, help="a FLAME pickle (default: a synthetic one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ.setdefault("DECAENV_HOME", str(work / "home"))
        pkl = args.flame
        if pkl is None:
            import numpy as np

            from decaenv.synthetic import flame, topology

            pkl = work / "generic_model.pkl"
            arrays = flame.flame_arrays(topology.procedural_head(), np.random.default_rng(0))
            pkl.write_bytes(flame.flame_pickle_bytes(arrays))
        bench_flame(pkl, work, args.repeat)
        bench_exec(args.repeat)


if __name__ == "__main__":
    main()
