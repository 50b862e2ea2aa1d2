"""`decaenv transfer`: DECA's code composition checked against a hand-built expectation, DECA's file layout,
video targets (frame count and rate), per-item failures and usage errors."""

import json

import numpy as np
import pytest
import torch

from decaenv.cli import main
from decaenv.runtime.transfer import compose_codes


def run(capsys, data_dir, *args):
    code = main(
        [
            "--data-dir",
            str(data_dir),
            "transfer",
            "--rasterizer",
            "torch",
            "--detector",
            "mtcnn",
            "--device",
            "cpu",
            *map(str, args),
        ]
    )
    out = capsys.readouterr()
    return code, out.out, out.err


def _codes(seed, batch=1):
    g = torch.Generator().manual_seed(seed)
    sizes = {"shape": 100, "tex": 50, "exp": 50, "pose": 6, "cam": 3, "detail": 128}
    codes = {k: torch.randn(batch, n, generator=g) for k, n in sizes.items()}
    codes["light"] = torch.randn(batch, 9, 3, generator=g)
    return codes


def test_compose_codes_is_demo_transfer():
    source, target = _codes(1), _codes(2, batch=3)
    out = compose_codes(source, target)
    for key in ("shape", "tex", "cam", "light", "detail"):
        assert torch.equal(out[key], source[key].expand_as(out[key])), key
    assert torch.equal(out["exp"], target["exp"])
    assert torch.equal(out["pose"][:, :3], source["pose"][:, :3].expand(3, 3))  # global pose stays the source's
    assert torch.equal(out["pose"][:, 3:], target["pose"][:, 3:])  # jaw pose from the target
    with_pose = compose_codes(source, target, pose=True)
    assert torch.equal(with_pose["pose"], target["pose"]) and torch.equal(with_pose["cam"], out["cam"])
    assert not torch.equal(source["exp"], out["exp"][:1])  # the inputs are not modified (DECA mutates in place)
    assert torch.equal(source["pose"], _codes(1)["pose"])


def _hand_built(deca, source_path, target_path, data_dir):
    """Encode both photos through the same crop rules, compose by hand (DECA's demo lines), decode."""
    from decaenv.runtime.datasets import crop_image
    from decaenv.runtime.detectors.mtcnn import MtcnnDetector
    from decaenv.runtime.images import read_image

    detector = MtcnnDetector("cpu", data_dir)
    crops = [crop_image(read_image(p), p, iscrop=True, detector=detector) for p in (source_path, target_path)]
    with torch.no_grad():
        src = deca.encode(torch.from_numpy(crops[0].image)[None])
        tgt = deca.encode(torch.from_numpy(crops[1].image)[None])
        expected = {k: v.clone() for k, v in src.items()}
        expected["pose"][:, 3:] = tgt["pose"][:, 3:]
        expected["exp"] = tgt["exp"]
        opdict = deca.decode(expected, return_vis=False)
    return expected, opdict


@pytest.mark.slow
def test_transfer_matches_hand_built_codes_and_writes_deca_layout(
    tmp_path, capsys, reconstruct_data_dir, small_deca, faces
):
    source, target = faces
    out = tmp_path / "out"
    code, stdout, err = run(
        capsys,
        reconstruct_data_dir,
        "--source",
        source,
        "--target",
        target,
        "-o",
        out,
        "--save",
        "vis,obj,detail-obj,mat,codes,glb,ply",
        "--json",
    )
    assert code == 0, err
    summary = json.loads(stdout)
    name = source.stem
    assert summary["ok"] == 1 and summary["command"] == "transfer" and summary["items"][0]["name"] == name
    assert (out / f"{name}_animation.jpg").is_file()
    from PIL import Image

    assert Image.open(out / f"{name}_animation.jpg").size == (3 * 224, 224)  # inputs | source | transferred
    for side in ("reconstruction", "animation"):
        for suffix in (
            ".obj",
            ".mtl",
            ".png",
            "_normals.png",
            "_detail.obj",
            ".mat",
            "_codes.npz",
            ".glb",
            "_detail.glb",
            ".ply",
            "_detail.ply",
        ):
            assert (out / name / side / f"{name}{suffix}").is_file(), f"{side}/{name}{suffix}"
    assert f"{name}/reconstruction/{name}.obj" in summary["source_files"]

    expected, expected_op = _hand_built(small_deca, source, target, reconstruct_data_dir)
    got = np.load(out / name / "animation" / f"{name}_codes.npz")
    for key in ("shape", "tex", "exp", "pose", "cam", "detail"):
        assert np.allclose(got[key], expected[key][0].numpy(), atol=1e-5), key
    assert np.allclose(got["light"], expected["light"][0].numpy(), atol=1e-5)
    recon = np.load(out / name / "reconstruction" / f"{name}_codes.npz")
    assert not np.allclose(recon["exp"], got["exp"]) and np.allclose(recon["shape"], got["shape"])
    import scipy.io

    mat = scipy.io.loadmat(out / name / "animation" / f"{name}.mat")
    assert np.allclose(mat["verts"], expected_op["verts"][0].numpy(), atol=1e-4)
    assert np.allclose(mat["displacement_map"], expected_op["displacement_map"][0].numpy(), atol=1e-4)
    # DECA keeps the source's texture on the transferred mesh
    rec_png = np.asarray(Image.open(out / name / "reconstruction" / f"{name}.png"))
    ani_png = np.asarray(Image.open(out / name / "animation" / f"{name}.png"))
    assert np.array_equal(rec_png, ani_png)


@pytest.mark.slow
def test_video_target_gives_a_video_at_the_source_rate(tmp_path, capsys, reconstruct_data_dir, faces, face_video):
    import av

    out = tmp_path / "out"
    code, stdout, err = run(
        capsys,
        reconstruct_data_dir,
        "-i",
        faces[1],
        "-e",
        face_video,
        "-o",
        out,
        "--sample-step",
        "2",
        "--batch-size",
        "2",
        "--json",
    )
    assert code == 1  # frame 2 is blank: reported, the run goes on
    summary = json.loads(stdout)
    name = f"{faces[1].stem}_clip"
    assert summary["videos"] == [f"{name}_animation.mp4"]
    statuses = {i["name"]: i["status"] for i in summary["items"]}
    assert statuses == {f"{name}_frame0000": "ok", f"{name}_frame0002": "failed", f"{name}_frame0004": "ok"}
    assert "no face found" in [i for i in summary["items"] if i["status"] == "failed"][0]["message"]
    with av.open(str(out / f"{name}_animation.mp4")) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        assert float(stream.average_rate) == pytest.approx(3.0)  # 6 fps / --sample-step 2
    assert len(frames) == 3 and frames[0].shape == (224, 672, 3)
    assert frames[1][:, 448:].max() < 40  # the failed frame's transferred panel is black
    assert frames[0][:, 448:].max() > 100
    assert not list(out.glob("*.partial*"))


def test_usage_errors(tmp_path, capsys, reconstruct_data_dir, faces):
    code, _, err = run(capsys, reconstruct_data_dir, "--target", faces[0], "-o", tmp_path / "o")
    assert code == 1 and "no source image given" in err
    code, _, err = run(capsys, reconstruct_data_dir, "--source", faces[0], "-o", tmp_path / "o")
    assert code == 1 and "no target given" in err
    code, _, err = run(
        capsys, reconstruct_data_dir, "--source", tmp_path / "nope.jpg", "--target", faces[0], "-o", tmp_path / "o"
    )
    assert code == 1 and "source" in err and "does not exist" in err and "Traceback" not in err
    code, _, err = run(
        capsys, reconstruct_data_dir, "--source", faces[0].parent, "--target", faces[0], "-o", tmp_path / "o"
    )
    assert code == 1 and "is not an image" in err
