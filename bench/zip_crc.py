"""Benchmark the zip CRC pass that guards DECA's checkpoint against flipped bytes, against its baselines.

    .venv/bin/python bench/zip_crc.py [--path deca_model.tar] [--repeat 5]

Without `--path`, a full-size synthetic checkpoint (434 MB, DECA's layout with optimizer state) is written
to a temporary folder first. All runs read the same page-cached file in the same process, alternating:

* `verify_zip_crc` with ISA-L's crc32 (`isal`, what decaenv uses when installed);
* `verify_zip_crc` with zlib's crc32 (decaenv's fallback without `isal`);
* `zipfile` reading every member (the standard library's own CRC check): the baseline;
* sha256 of the whole file (`decaenv.fetch.hashes.file_sha256`), for scale;
* the whole `deca-checkpoint` validator (structure + pickle limits + CRC), what `fetch` runs before installing.

Target: the CRC pass verifies a 434 MB checkpoint at ≥ 1 GB/s.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    wanted = [f for f in ("sse4_2", "pclmulqdq", "avx2", "avx512f", "vpclmulqdq", "sha_ni") if f in flags]
    return f"{model}; flags: {' '.join(wanted)}; {os.cpu_count()} cpus"


def zipfile_read(path: Path) -> None:
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            with zf.open(info) as member:
                while member.read(4 << 20):
                    pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--path", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from decaenv.fetch.hashes import file_sha256
    from decaenv.fetch.manifest import Validator
    from decaenv.fetch.validators import validate
    from decaenv.fetch.zipcheck import crc32_function, verify_zip_crc

    tmp = None
    path = args.path
    if path is None:
        from decaenv.synthetic.checkpoint import write_checkpoint

        tmp = tempfile.TemporaryDirectory()
        path = Path(tmp.name) / "deca_model.tar"
        write_checkpoint(path, 0, with_optimizer=True)
    size = path.stat().st_size
    isal = crc32_function()
    print(f"python {platform.python_version()}, zlib {zlib.ZLIB_RUNTIME_VERSION}, crc32 from "
          f"{getattr(isal, '__module__', '?')}; {cpu_flags()}")
    print(f"file: {path} ({size / 1e6:,.1f} MB)")
    runs = {
        "verify_zip_crc, isal crc32": lambda: verify_zip_crc(path, crc32=isal),
        "verify_zip_crc, zlib crc32": lambda: verify_zip_crc(path, crc32=zlib.crc32),
        "zipfile reads every member (baseline)": lambda: zipfile_read(path),
        "sha256 of the file": lambda: file_sha256(path),
        "deca-checkpoint validator (all checks)": lambda: validate(path, Validator("deca-checkpoint", ())),
    }
    file_sha256(path)  # warm the page cache
    times = {name: [] for name in runs}
    for _ in range(args.repeat):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["zipfile reads every member (baseline)"])
    for name, sample in times.items():
        med = statistics.median(sample)
        print(f"  {name:<42} median {med:6.3f} s  {size / med / 1e9:5.2f} GB/s  "
              f"(min {min(sample):.3f}, max {max(sample):.3f}, n={len(sample)})  {base / med:4.1f}x the baseline")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
