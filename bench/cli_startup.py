"""Start-up cost of the CLI: `decaenv --help` against a bare `python -c pass`, side by side in one run; also a
command (`decaenv doctor --help`: the root's and the command's options are processed) with and without
`decaenv.cli._typer_compat` (on typer >= 0.29, without it every command imports pydantic).

Target: `decaenv --help` ≤ 0.3 s wall on the project machine (2 cores). Run:
    .venv/bin/python bench/cli_startup.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import summarize, time_command

TARGET_S = 0.3
#: `decaenv doctor --help` with typer's own option coercion (the light coercer switched off).
NO_COMPAT = (
    "import sys\nimport decaenv.cli._typer_compat as compat\ncompat.avoid_pydantic = lambda command: 0\n"
    "from decaenv.cli import main\nsys.exit(main(['doctor', '--help']))"
)


def cpu_ms(argv, repeat: int) -> float:
    """Median CPU time (user + sys) of a child run, in ms: steadier than wall time on a loaded machine."""
    samples = []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(argv, check=True, capture_output=True, env=dict(os.environ))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        samples.append(1000 * (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime))
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    script = shutil.which("decaenv", path=str(Path(sys.executable).parent)) or shutil.which("decaenv")
    from importlib.metadata import version

    print(f"python {sys.version.split()[0]}; typer {version('typer')}; decaenv entry point {script}")
    base = summarize("python -c pass (baseline)", time_command([sys.executable, "-c", "pass"], args.repeat))
    mod = summarize("python -m decaenv --help", time_command([sys.executable, "-m", "decaenv", "--help"], args.repeat))
    cli = summarize("decaenv --help", time_command([script, "--help"], args.repeat))
    cmd = summarize("decaenv doctor --help", time_command([script, "doctor", "--help"], args.repeat))
    raw = summarize("  same, typer's own coercion", time_command([sys.executable, "-c", NO_COMPAT], args.repeat))
    print(
        f"  decaenv --help / python -c pass = {cli['median'] / base['median']:.1f}x; "
        f"overhead {1000 * (cli['median'] - base['median']):.0f} ms; python -m form {mod['median'] * 1000:.0f} ms"
    )
    print(
        f"  decaenv doctor --help: {cmd['median'] * 1000:.0f} ms; without decaenv.cli._typer_compat "
        f"{raw['median'] * 1000:.0f} ms ({1000 * (raw['median'] - cmd['median']):+.0f} ms)"
    )
    print(
        f"  CPU time (user+sys, median): decaenv --help {cpu_ms([script, '--help'], args.repeat):.0f} ms; "
        f"decaenv doctor --help {cpu_ms([script, 'doctor', '--help'], args.repeat):.0f} ms; without "
        f"_typer_compat {cpu_ms([sys.executable, '-c', NO_COMPAT], args.repeat):.0f} ms; python -c pass "
        f"{cpu_ms([sys.executable, '-c', 'pass'], args.repeat):.0f} ms; load average {os.getloadavg()[0]:.1f}"
    )
    ok = cli["median"] <= TARGET_S
    print(f"  target decaenv --help <= {TARGET_S:.1f} s: {'met' if ok else 'MISSED'} ({cli['median']:.3f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
