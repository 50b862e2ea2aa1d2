"""Start-up cost of the CLI: `decaenv --help` against a bare `python -c pass`, side by side in one run.

Target: `decaenv --help` ≤ 0.3 s wall on the project machine (2 cores). Run:
    .venv/bin/python bench/cli_startup.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import summarize, time_command

TARGET_S = 0.3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    script = shutil.which("decaenv", path=str(Path(sys.executable).parent)) or shutil.which("decaenv")
    print(f"python {sys.version.split()[0]}; decaenv entry point {script}")
    base = summarize("python -c pass (baseline)", time_command([sys.executable, "-c", "pass"], args.repeat))
    mod = summarize("python -m decaenv --help", time_command([sys.executable, "-m", "decaenv", "--help"], args.repeat))
    cli = summarize("decaenv --help", time_command([script, "--help"], args.repeat))
    print(
        f"  decaenv --help / python -c pass = {cli['median'] / base['median']:.1f}x; "
        f"overhead {1000 * (cli['median'] - base['median']):.0f} ms; python -m form {mod['median'] * 1000:.0f} ms"
    )
    ok = cli["median"] <= TARGET_S
    print(f"  target decaenv --help <= {TARGET_S:.1f} s: {'met' if ok else 'MISSED'} ({cli['median']:.3f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
