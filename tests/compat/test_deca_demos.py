"""Acceptance: DECA's own, unmodified demos run under `decaenv exec` on a machine without CUDA, and their numbers
equal `decaenv reconstruct`'s.

A copy of DECA's checkout (`$DECAENV_TEST_ASSETS/deca-src`, a user's checkout: read, never copied into the repo)
gets a synthetic `data/` (DECA's public topology, synthetic FLAME and checkpoint) and runs in the DECA env of
`tests/compat/deca_env.py` (torch 2.14.1 + torchvision 0.29.1, built by `make test`'s set-up). face_alignment's
weight files are random, in a temporary TORCH_HOME, with an S3FD that finds no face, so DECA crops the whole
image (its "no face detected" path). decaenv reconstructs the same images from landmark files that give exactly
that crop. DECA's default `--rasterizer_type standard` is served by the `standard-rasterizer` shim (no JIT
build). Skipped only when the DECA checkout is absent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
#: One square and one non-square photo (DECA's whole-image crop swaps height and width: exercised).
IMAGES = ("IMG_0392_inputs.jpg", "alfw1.png")
#: Coordinates in DECA's .obj files and .mat arrays equal decaenv's to this (absolute, after DECA's known
#: differences are undone; measured: see docs/compat-with-deca.md).
ATOL = 1e-4
RTOL = 1e-4


def _assets() -> Path:
    value = os.environ.get("DECAENV_TEST_ASSETS")
    return Path(value) if value else HERE.parents[2].parent / "shared" / "assets"


def _deca_python() -> Path:
    import importlib.util

    spec = importlib.util.spec_from_file_location("deca_env", HERE / "deca_env.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        return module.ensure()
    except LookupError as exc:
        pytest.fail(f"the DECA env is missing: {exc}")


def _run(argv, cwd: Path, env: Dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess:
    out = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, f"{' '.join(map(str, argv[:6]))} ... exit {out.returncode}\n" \
                                f"{out.stdout[-3000:]}\n{out.stderr[-6000:]}"
    return out


def _whole_image_landmarks(image: Path, target: Path) -> None:
    """A 68-point file whose box is DECA's no-face box: x in [0, h-1], y in [0, w-1] (DECA swaps h and w)."""
    from PIL import Image

    with Image.open(image) as im:
        w, h = im.size
    lines = ["0 0"] * 34 + [f"{h - 1} {w - 1}"] * 34
    target.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory):
    """Run both DECA demos under `decaenv exec`, and `decaenv reconstruct` on the same images."""
    deca_src = _assets() / "deca-src"
    if not (deca_src / "decalib").is_dir():
        pytest.skip(f"no DECA checkout at {deca_src} (set DECAENV_TEST_ASSETS)")
    deca_python = _deca_python()
    from decaenv.synthetic import make_assets

    tmp = tmp_path_factory.mktemp("deca-demos")
    checkout = tmp / "DECA"
    shutil.copytree(deca_src, checkout)
    make_assets(checkout / "data", seed=0, public_dir=_assets() / "deca-data", with_optimizer=False)
    torch_home = tmp / "torch-home"
    env = dict(os.environ, TORCH_HOME=str(torch_home), DECAENV_HOME=str(tmp / "decaenv-home"),
               PYTHONDONTWRITEBYTECODE="1")
    _run([deca_python, HERE / "fan_background_weights.py", torch_home], tmp, env)
    deca_in, ours_in = tmp / "inputs-deca", tmp / "inputs-decaenv"
    deca_in.mkdir()
    ours_in.mkdir()
    for name in IMAGES:
        shutil.copyfile(_assets() / "images" / name, deca_in / name)
        shutil.copyfile(_assets() / "images" / name, ours_in / name)
        _whole_image_landmarks(deca_in / name, ours_in / (Path(name).stem + ".txt"))
    exec_ = [sys.executable, "-m", "decaenv", "exec", "--", deca_python]
    flags = ["--device", "cpu", "--saveObj", "True", "--saveKpt", "True", "--saveMat", "True", "--saveVis", "True"]
    recon = _run([*exec_, "demos/demo_reconstruct.py", "-i", deca_in, "-s", tmp / "out-deca", *flags],
                 checkout, env)
    transfer = _run([*exec_, "demos/demo_transfer.py", "-i", deca_in / IMAGES[0], "-e", deca_in / IMAGES[1],
                     "-s", tmp / "out-transfer", "--device", "cpu"], checkout, env)
    ours = _run([sys.executable, "-m", "decaenv", "--data-dir", checkout / "data", "reconstruct", "-i", ours_in,
                 "-o", tmp / "out-decaenv", "--save", "obj,detail-obj,kpt,mat", "--detector", "none",
                 "--device", "cpu"], tmp, env)
    return {"tmp": tmp, "recon": recon, "transfer": transfer, "ours": ours}


def test_demo_reconstruct_writes_every_file(demo_runs):
    out = demo_runs["tmp"] / "out-deca"
    assert "no face detected! run original image" in demo_runs["recon"].stdout
    for name in (Path(n).stem for n in IMAGES):
        expected = [f"{name}_vis.jpg", f"{name}_vis_original_size.jpg"] + [
            f"{name}/{name}{suffix}" for suffix in (".obj", ".mtl", ".png", "_normals.png", "_detail.obj",
                                                     "_kpt2d.txt", "_kpt3d.txt", ".mat")]
        for rel in expected:
            assert (out / rel).is_file() and (out / rel).stat().st_size > 0, rel


def test_demo_transfer_writes_its_animation(demo_runs):
    name = Path(IMAGES[0]).stem
    assert (demo_runs["tmp"] / "out-transfer" / f"{name}_animation.jpg").stat().st_size > 0


def test_no_extension_was_compiled(demo_runs):
    """The standard rasterizer came from the shim: nothing under TORCH_EXTENSIONS' default folders."""
    assert not list((demo_runs["tmp"] / "torch-home").glob("**/standard_rasterize_cuda*"))
    err = demo_runs["recon"].stderr
    assert "Error building extension" not in err and "CUDA_HOME" not in err


def _obj_vertices(path: Path) -> np.ndarray:
    rows = [line.split()[1:] for line in path.read_text().splitlines() if line.startswith("v ")]
    return np.array(rows, dtype=np.float64)


@pytest.mark.parametrize("suffix", [".obj", "_detail.obj"])
def test_obj_numbers_equal_decaenv_reconstruct(demo_runs, suffix):
    for name in (Path(n).stem for n in IMAGES):
        deca = _obj_vertices(demo_runs["tmp"] / "out-deca" / name / f"{name}{suffix}")
        ours = _obj_vertices(demo_runs["tmp"] / "out-decaenv" / name / f"{name}{suffix}")
        assert deca.shape == ours.shape, (name, suffix)
        np.testing.assert_allclose(deca, ours, rtol=RTOL, atol=ATOL, err_msg=f"{name}{suffix}")


def _deca_to_ours(key: str, value: np.ndarray) -> np.ndarray:
    """Undo DECA's documented CPU differences (docs/compat-with-deca.md): landmarks in crop pixels, and
    `trans_verts` z shifted by +30 by its in-place renders."""
    value = np.array(value, dtype=np.float64)
    if key in ("landmarks2d", "landmarks3d"):
        value[..., :2] = (value[..., :2] - 112.0) / 112.0
    if key == "trans_verts":
        value[..., 2] -= 30.0
    return value


def test_mat_numbers_equal_decaenv_reconstruct(demo_runs):
    from scipy.io import loadmat

    for name in (Path(n).stem for n in IMAGES):
        deca = loadmat(demo_runs["tmp"] / "out-deca" / name / f"{name}.mat")
        ours = loadmat(demo_runs["tmp"] / "out-decaenv" / name / f"{name}.mat")
        keys = sorted(k for k in deca if not k.startswith("__"))
        assert keys == sorted(k for k in ours if not k.startswith("__")), name
        for key in keys:
            expected = np.asarray(ours[key], dtype=np.float64)
            got = _deca_to_ours(key, deca[key])
            assert got.shape == expected.shape, (name, key)
            np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL, err_msg=f"{name}.mat {key}")
