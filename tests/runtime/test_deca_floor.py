"""`bench/_deca_floor.py`: the benchmarks' floor as DECA runs it — E_flame, E_detail and D_detail alone in a fresh
process, built by DECA's own code (a checkout) or decaenv's eager modules, loaded from the data dir's checkpoint
(strictly: every key of DECA's networks, none left over) and timed on the crops the benchmark wrote."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "_deca_floor.py"


def _save_crops(path: Path, sizes) -> None:
    import torch

    spec = importlib.util.spec_from_file_location("_deca_floor", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    generator = torch.Generator().manual_seed(0)
    batches = [
        (torch.rand(n, 3, 224, 224, generator=generator), torch.randn(n, 181, generator=generator)) for n in sizes
    ]
    module.save_crops(path, batches)


def _floor(tmp_path: Path, data_dir: Path, *extra: str) -> dict:
    crops = tmp_path / "crops.pt"
    _save_crops(crops, (2, 1))
    command = [sys.executable, str(SCRIPT), "--crops", str(crops), "--checkpoint", str(data_dir / "deca_model.tar")]
    done = subprocess.run([*command, "--rounds", "2", "--threads", "1", *extra], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_floor_process_times_decaenvs_eager_modules(tmp_path, synthetic_data_dir):
    row = _floor(tmp_path, synthetic_data_dir)
    assert row["code"] == "decaenv's eager modules"
    assert (row["images"], row["rounds"], row["threads"]) == (3, 2, 1)
    assert 0 < row["floor_per_image"] < 60 and row["page_faults_per_image"] >= 0


def test_the_floor_process_runs_decas_own_network_code(tmp_path, synthetic_data_dir, shared_assets):
    """DECA's `decalib.models` from the checkout build the networks (torchvision stood in for where it cannot
    import) and take the synthetic checkpoint with strict loading: our file has exactly DECA's keys and shapes."""
    row = _floor(tmp_path, synthetic_data_dir, "--deca-src", str(shared_assets / "deca-src"))
    assert row["code"].startswith("DECA's code")
    assert row["images"] == 3 and row["floor_per_image"] > 0


def test_a_checkpoint_missing_weights_fails(tmp_path):
    """Strict loading: a network whose weights are not all in the checkpoint is an error, not a random floor."""
    import torch

    torch.save({"E_flame": {}, "E_detail": {}, "D_detail": {}}, tmp_path / "deca_model.tar")
    crops = tmp_path / "crops.pt"
    _save_crops(crops, (1,))
    command = [sys.executable, str(SCRIPT), "--crops", str(crops), "--checkpoint", str(tmp_path / "deca_model.tar")]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode != 0 and "Missing key(s)" in done.stderr
