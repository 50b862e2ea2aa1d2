"""`decaenv animate`: DECA's teaser sequences (angles, Euler convention, code composition by hand), and the
mp4/gif written with the expected frame counts and sizes."""

import json

import numpy as np
import pytest
import torch

from decaenv.cli import main
from decaenv.runtime import animate


def test_deca_teaser_angles():
    yaws = animate.yaw_angles(30, 5)
    assert len(yaws) == 24 and yaws[:7] == [0, 5, 10, 15, 20, 25, 30] and yaws[-6:] == [-30, -25, -20, -15, -10, -5]
    assert animate.jaw_angles(30, 2) == list(range(0, 31, 2))
    with pytest.raises(Exception, match="max-yaw"):
        animate.yaw_angles(0, 5)


def _quaternion_axis_angle(euler_deg):
    """DECA's euler_to_quaternion + quaternion_to_angle_axis, re-derived by hand for one (x, y, z)."""
    x, y, z = np.radians(euler_deg) / 2
    cx, cy, cz, sx, sy, sz = np.cos(x), np.cos(y), np.cos(z), np.sin(x), np.sin(y), np.sin(z)
    w = cx * cy * cz - sx * sy * sz
    v = np.array([cx * sy * sz + cy * cz * sx, cx * cz * sy - sx * cy * sz, cx * cy * sz + sx * cz * sy])
    return v / np.linalg.norm(v) * 2 * np.arctan2(np.linalg.norm(v), w)


def test_euler_convention_is_decas():
    angles = torch.tensor([[0.0, 25.0, 0.0], [14.0, 0.0, 0.0], [10.0, -20.0, 30.0]])
    got = animate.euler_to_axis_angle(angles).numpy()
    for row, euler in zip(got, angles.numpy()):
        assert np.allclose(row, _quaternion_axis_angle(euler), atol=1e-6)
    assert np.allclose(got[0], [0, np.radians(25), 0], atol=1e-7)  # one axis: the angle itself


def _codes():
    g = torch.Generator().manual_seed(3)
    codes = {k: torch.randn(1, n, generator=g) for k, n in {"shape": 100, "exp": 50, "pose": 6, "cam": 3}.items()}
    codes["light"] = torch.randn(1, 9, 3, generator=g)
    return codes


def test_head_turn_and_expression_codes_by_hand():
    codes = _codes()
    turn = animate.head_turn_codes(codes, [0, 15, -30])
    assert turn["pose"].shape == (3, 6) and torch.allclose(turn["cam"], torch.tensor([[8.0, 0, 0]] * 3))
    assert torch.allclose(turn["pose"][1, :3], torch.tensor([0, np.radians(15), 0], dtype=torch.float32))
    assert torch.equal(turn["pose"][:, 3:], codes["pose"][:, 3:].expand(3, 3))  # jaw and exp kept
    assert torch.equal(turn["exp"], codes["exp"].expand(3, -1)) and torch.equal(turn["shape"][2], codes["shape"][0])
    plain = animate.expression_codes(codes, [0, 10, 20])
    assert plain["pose"].shape[0] == 3 and torch.all(plain["pose"][:, :3] == 0)
    assert torch.allclose(plain["pose"][2, 3:], torch.tensor([np.radians(20), 0, 0], dtype=torch.float32))
    targets = {"exp": torch.randn(2, 50), "pose": torch.randn(2, 6)}
    mixed = animate.expression_codes(codes, [0, 10, 20], targets)
    assert mixed["exp"].shape[0] == 4  # DECA: the last jaw frame is replaced by the first expression
    assert torch.equal(mixed["exp"][2:], targets["exp"]) and torch.equal(mixed["pose"][2:, 3:], targets["pose"][:, 3:])
    assert torch.equal(mixed["exp"][:2], codes["exp"].expand(2, -1)) and torch.all(mixed["pose"][:, :3] == 0)
    assert torch.equal(codes["pose"], _codes()["pose"])  # not modified in place


def run(capsys, data_dir, *args):
    code = main(
        [
            "--data-dir",
            str(data_dir),
            "animate",
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


@pytest.mark.slow
def test_animate_writes_mp4_and_gif(tmp_path, capsys, reconstruct_data_dir, faces, face_video):
    from decaenv.runtime.video_out import read_frames

    out = tmp_path / "out"
    # yaws [0, 10, 0, -10]; jaws [0, 10, 20] → [0, 10] + 2 expression frames (video frames 0 and 4; 2 is blank)
    code, stdout, err = run(
        capsys,
        reconstruct_data_dir,
        "-i",
        faces[0],
        "-o",
        out,
        "--max-yaw",
        "10",
        "--yaw-step",
        "10",
        "--max-jaw",
        "20",
        "--jaw-step",
        "10",
        "--expressions",
        face_video,
        "--sample-step",
        "2",
        "--render",
        "shape,detail,texture",
        "--fps",
        "5",
        "--json",
    )
    assert code == 1, err  # the blank expression frame is reported
    summary = json.loads(stdout)
    name = faces[0].stem
    ok = [i for i in summary["items"] if i["status"] == "ok"]
    assert [i["name"] for i in ok] == [name] and ok[0]["files"] == [f"{name}_teaser.mp4", f"{name}_teaser.gif"]
    assert [i["name"] for i in summary["items"] if i["status"] == "failed"] == ["expressions:clip_frame0002"]
    assert summary["frames"] == 4
    video, gif = read_frames(out / f"{name}_teaser.mp4"), read_frames(out / f"{name}_teaser.gif")
    assert len(video) == 4 and video[0].shape == (3 * 224, 4 * 224, 3)  # 3 styles × (input|recon|turn|expr)
    assert len(gif) == 4 and gif[0].shape == (round(3 * 224 * 0.6), round(4 * 224 * 0.6), 3)
    import av

    with av.open(str(out / f"{name}_teaser.mp4")) as container:
        assert float(container.streams.video[0].average_rate) == pytest.approx(5.0)
    turn = [f[:224, 448:672].astype(float) for f in video]
    assert np.abs(turn[1] - turn[3]).mean() > 2  # +10° and −10° differ
    assert np.abs(turn[0] - turn[2]).mean() < 2  # both 0°
    assert not list(out.glob("*.partial*"))


def test_bad_options(tmp_path, capsys, small_data_dir, faces):
    code, _, err = run(capsys, small_data_dir, "-i", faces[0], "-o", tmp_path / "o", "--render", "wire")
    assert code == 1 and "unknown --render style wire" in err
    code, _, err = run(capsys, small_data_dir, "-i", faces[0], "-o", tmp_path / "o", "--format", "avi")
    assert code == 1 and "unknown --format avi" in err
    code, _, err = run(capsys, small_data_dir, "-o", tmp_path / "o")
    assert code == 1 and "no input given" in err


def test_use_tex_adds_the_texture_row():
    assert animate.Animator._styles(animate.AnimateOptions(inputs=[], out_dir=".")) == ("shape", "detail")
    with_tex = animate.AnimateOptions(inputs=[], out_dir=".", use_tex=True)
    assert animate.Animator._styles(with_tex) == ("shape", "detail", "texture")


@pytest.mark.slow
def test_animate_with_an_albedo_model(tmp_path, capsys, reconstruct_data_dir, faces):
    """--use-tex: the data dir also holds an albedo model (a small BFM-layout space); three rows are rendered."""
    from _support.assets import write_texture_space

    from decaenv.runtime.video_out import read_frames

    data = tmp_path / "data"
    data.mkdir()
    for path in reconstruct_data_dir.iterdir():
        (data / path.name).symlink_to(path)
    write_texture_space(data / "FLAME_albedo_from_BFM.npz", "BFM")
    out = tmp_path / "out"
    code, stdout, err = run(
        capsys,
        data,
        "-i",
        faces[0],
        "-o",
        out,
        "--use-tex",
        "--max-yaw",
        "10",
        "--yaw-step",
        "10",
        "--max-jaw",
        "0",
        "--format",
        "mp4",
        "--json",
    )
    assert code == 0, err
    frames = read_frames(out / f"{faces[0].stem}_teaser.mp4")
    assert len(frames) == 4 and frames[0].shape == (3 * 224, 4 * 224, 3)
    assert not (out / f"{faces[0].stem}_teaser.gif").exists()
    texture_row = frames[0][448:, 224:448].astype(float)
    assert texture_row.std() > 10  # the textured head, not an empty panel
