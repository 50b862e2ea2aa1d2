"""Time to write a synthetic DECA data dir, next to the I/O floor of copying the same bytes.

Target (issue 2): the full-size checkpoint (with optimizer state, ≈434 MB) in < 10 s. Run:
    .venv/bin/python bench/synthetic_assets.py [--public-dir ../shared/assets/deca-data]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

TARGET_CHECKPOINT_S = 10.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--public-dir", type=Path, default=None, help="DECA's public files (real topology)")
    args = parser.parse_args()
    from decaenv.synthetic import checkpoint, make_assets

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        checkpoint.write_checkpoint(tmp / "ckpt.tar", seed=0, with_optimizer=True)
        t_ckpt = time.perf_counter() - start
        size = (tmp / "ckpt.tar").stat().st_size
        start = time.perf_counter()
        shutil.copyfile(tmp / "ckpt.tar", tmp / "copy.tar")
        t_copy = time.perf_counter() - start
        report = make_assets(tmp / "data", seed=0, public_dir=args.public_dir, with_optimizer=True)
        total = sum(p.stat().st_size for p in (tmp / "data").iterdir())
    print(f"topology: {report.topology}")
    print(f"  checkpoint alone        {t_ckpt:6.2f} s  ({size / 1e6:.0f} MB, {size / 1e6 / t_ckpt:.0f} MB/s)")
    print(f"  copy of the same bytes  {t_copy:6.2f} s  (I/O floor; checkpoint/copy = {t_ckpt / t_copy:.1f}x)")
    print(f"  whole data dir          {report.seconds:6.2f} s  ({len(report.files)} files, {total / 1e6:.0f} MB)")
    ok = t_ckpt < TARGET_CHECKPOINT_S
    print(f"  target checkpoint < {TARGET_CHECKPOINT_S:.0f} s: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
