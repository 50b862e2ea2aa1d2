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
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, List

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import summarize, time_command  # noqa: E402


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
    print(f"FLAME load ({pkl.stat().st_size / 1e6:.1f} MB pickle, {npz.stat().st_size / 1e6:.1f} MB npz), "
          f"{repeat} runs")
    pkl_row = summarize("load_flame(generic_model.pkl)", _time_call(lambda: flame.load_flame(pkl), repeat))
    npz_row = summarize("load_flame(generic_model.npz)", _time_call(lambda: flame.load_flame(npz), repeat))
    pick = summarize("preferred_flame_file() (size/mtime check)",
                     _time_call(lambda: flame.preferred_flame_file(npz.parent), repeat))
    print(f"  -> npz is {pkl_row['median'] / npz_row['median']:.2f}x faster than the pickle; choosing it costs "
          f"{pick['median'] * 1000:.1f} ms")


def bench_exec(repeat: int) -> None:
    from decaenv.patches import launcher

    py = sys.executable
    code = ["-c", "import numpy"]
    env = launcher.child_env(launcher.site_dir())
    print(f"`{py} -c 'import numpy'`, {repeat} runs")
    bare = summarize("bare", time_command([py, *code], repeat))
    site = summarize("with the shims' sitecustomize", time_command([py, *code], repeat, env=env))
    full = summarize("decaenv exec -- python ...", time_command([py, "-m", "decaenv", "exec", "--", py, *code],
                                                                 repeat))
    print(f"  -> sitecustomize adds {(site['median'] - bare['median']) * 1000:.1f} ms per Python process "
          f"({site['median'] / bare['median']:.2f}x); decaenv exec adds "
          f"{(full['median'] - bare['median']) * 1000:.1f} ms once ({full['median'] / bare['median']:.2f}x)")


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
