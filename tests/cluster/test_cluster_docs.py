"""docs/cluster.md's Slurm array script, run as a Slurm array would: every task with its
SLURM_ARRAY_TASK_ID/COUNT, all into one folder; the shards' tables together hold every photo once, and a
resubmitted task finishes without loading a network."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

pytest.importorskip("pyarrow")
from decaenv.runtime.table import read_codes

DOC = Path(__file__).resolve().parents[2] / "docs" / "cluster.md"


def slurm_script() -> str:
    text = DOC.read_text()
    match = re.search(r"<!-- slurm-script[^>]*-->\s*```bash\n(.*?)```", text, re.S)
    assert match, "docs/cluster.md lost its marked Slurm script"
    return match.group(1)


def test_script_uses_shard_auto_and_resume():
    script = slurm_script()
    assert "--shard auto" in script and "--skip-existing" in script and "--save table" in script
    assert re.search(r"#SBATCH --array=0-(\d+)", script)


@pytest.mark.slow
def test_slurm_array_tasks_cover_every_item_once(tmp_path, reconstruct_data_dir):
    photos = tmp_path / "photos"
    photos.mkdir()
    base = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((256, 256), Image.Resampling.BOX))
    for k in range(3):
        Image.fromarray(np.ascontiguousarray(np.roll(base, 5 * k, axis=1))).save(photos / f"f{k}.png")
    script = tmp_path / "deca-array.sh"
    script.write_text(slurm_script())
    out = tmp_path / "out"
    env = dict(
        os.environ,
        INPUTS=str(photos),
        OUT=str(out),
        DECAENV_DATA_DIR=str(reconstruct_data_dir),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        SLURM_ARRAY_TASK_COUNT="2",
        SLURM_ARRAY_TASK_MIN="0",
        SLURM_CPUS_PER_TASK="1",
    )
    for task in ("0", "1"):
        done = subprocess.run(
            ["bash", str(script)], env=dict(env, SLURM_ARRAY_TASK_ID=task), capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["codes-0-of-2.parquet", "codes-1-of-2.parquet"]
    codes = read_codes(out)
    assert sorted(codes["name"]) == ["f0", "f1", "f2"]
    again = subprocess.run(
        ["bash", str(script)], env=dict(env, SLURM_ARRAY_TASK_ID="1"), capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0 and "skipped 1" in again.stderr and "loading DECA" not in again.stderr
