"""Parse a benchmark's command line and stop: `bench/gpu_check.sh`'s dry run (`GPU_CHECK_DRY=1`), which CI runs
on machines without a GPU so that the GPU script's command lines keep up with the benchmarks' flags.

    python bench/_parse_only.py bench/reconstruct.py --device cuda --batch-sizes 64 ...

Runs the script as `__main__` with `argparse` stopping right after a successful parse (exit 0, one "parsed:"
line); an unknown flag or a bad value exits 2 with argparse's message, as the real run would.
"""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path


def main() -> int:
    if len(sys.argv) < 2:
        print("usage: _parse_only.py SCRIPT [ARGS...]", file=sys.stderr)
        return 2
    script, args = sys.argv[1], sys.argv[2:]
    parse = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, *positional, **keywords):
        parse(self, *positional, **keywords)
        print(f"parsed: {script} {' '.join(args)}")
        raise SystemExit(0)

    argparse.ArgumentParser.parse_args = parse_then_stop  # type: ignore[method-assign]
    sys.argv = [script, *args]
    sys.path.insert(0, str(Path(script).resolve().parent))  # (the benchmarks import `_common`)
    runpy.run_path(script, run_name="__main__")
    print(f"{script} finished without parsing a command line", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
