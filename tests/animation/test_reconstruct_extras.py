"""`decaenv reconstruct` beyond DECA's demo: --save video (frame count, rate, failed frames), --smooth (the
documented moving average, checked by hand), --faces all, --save report, and the GLB / PLY / detail-uv
meshes read back with an independent reader (trimesh)."""

import html.parser
import json
from pathlib import Path

import numpy as np
import pytest

from decaenv.cli import main
from decaenv.runtime.inputs import Item
from decaenv.runtime.smoothing import VideoSmoother


def run(capsys, data_dir, *args):
    code = main(
        ["--data-dir", str(data_dir), "reconstruct", "--rasterizer", "torch", "--device", "cpu", *map(str, args)]
    )
    out = capsys.readouterr()
    return code, out.out, out.err


def test_box_smoothing_is_the_documented_average():
    smoother = VideoSmoother(alpha=0.25)

    def frame(k, src="a.mp4"):
        return Item(name=f"a_frame{k}", source=Path(src), frame=k)

    assert smoother.box(frame(0), (0, 0, 100, 100)) == (0, 0, 100, 100)
    assert smoother.box(frame(1), (40, 0, 140, 100)) == pytest.approx((10, 0, 110, 100))
    assert smoother.box(frame(2), (40, 0, 140, 100)) == pytest.approx((17.5, 0, 117.5, 100))
    assert smoother.box(frame(0, "b.mp4"), (5, 5, 50, 50)) == (5, 5, 50, 50)  # one state per video
    still = Item(name="photo", source=Path("p.jpg"))
    assert smoother.box(still, (1, 2, 3, 4)) == (1, 2, 3, 4)  # images are never smoothed


@pytest.mark.slow
def test_smoothed_codes_match_a_hand_built_average(tmp_path, capsys, reconstruct_data_dir, face_video):
    raw_out, smooth_out = tmp_path / "raw", tmp_path / "smooth"
    common = ["-i", face_video, "--iscrop", "false", "--save", "codes", "--sample-step", "2", "--batch-size", "2"]
    code, _, err = run(capsys, reconstruct_data_dir, *common, "-o", raw_out)
    assert code == 0, err
    code, _, err = run(capsys, reconstruct_data_dir, *common, "-o", smooth_out, "--smooth", "--smooth-alpha", "0.5")
    assert code == 0, err

    def load(root, k):
        return np.load(root / f"clip_frame{k:04d}" / f"clip_frame{k:04d}_codes.npz")

    for key in ("shape", "exp", "pose", "cam", "light", "detail"):
        r0, r2, r4 = (load(raw_out, k)[key] for k in (0, 2, 4))
        expected = [r0, 0.5 * r2 + 0.5 * r0]
        expected.append(0.5 * r4 + 0.5 * expected[1])
        for k, want in zip((0, 2, 4), expected):
            assert np.allclose(load(smooth_out, k)[key], want, atol=1e-5), (key, k)
    assert not np.allclose(load(raw_out, 4)["exp"], load(smooth_out, 4)["exp"])


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs, self.srcs = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "href" in attrs:
            self.hrefs.append(attrs["href"])
        if "src" in attrs:
            self.srcs.append(attrs["src"])


def _video_run(capsys, data_dir, video, out, save: str, *extra):
    """`reconstruct` of `video` into `out` with MTCNN, `--save save`, `extra` flags and `--json`."""
    return run(capsys, data_dir, "-i", video, "-o", out, "--detector", "mtcnn", "--save", save, *extra, "--json")


@pytest.mark.slow
def test_save_video_and_report(tmp_path, capsys, reconstruct_data_dir, face_video):
    from decaenv.runtime.video_out import read_frames

    out = tmp_path / "out"
    code, stdout, err = _video_run(
        capsys, reconstruct_data_dir, face_video, out, "vis,kpt,video,report", "--sample-step", 2
    )
    assert code == 1  # frame 2 is blank
    summary = json.loads(stdout)
    assert summary["run_files"] == ["clip_reconstruction.mp4", "report.html"]
    frames = read_frames(out / "clip_reconstruction.mp4")
    assert len(frames) == 3 and frames[0].shape == (224, 448, 3)  # frames 0, 2, 4: overlay | shape
    import av

    with av.open(str(out / "clip_reconstruction.mp4")) as container:
        assert float(container.streams.video[0].average_rate) == pytest.approx(3.0)  # 6 fps / step 2
    assert abs(frames[1][:, :224].astype(float).mean() - 128) < 6 and frames[1][:, 224:].max() < 40  # failed frame
    assert frames[0][:, 224:].max() > 100 and frames[2][:, 224:].max() > 100  # the shape is drawn
    assert not [p for p in out.rglob("*") if p.name.startswith(".decaenv-video") or ".partial" in p.name]

    page = (out / "report.html").read_text(encoding="utf-8")
    links = _Links()
    links.feed(page)
    assert all(src.startswith("data:image/jpeg;base64,") for src in links.srcs) and len(links.srcs) == 2
    assert "http" not in page  # self-contained: no external resource
    for href in links.hrefs:
        assert (out / href).is_file(), href
    assert "clip_frame0000/clip_frame0000_kpt2d.txt" in links.hrefs
    for item in summary["items"]:
        assert item["name"] in page and item["status"] in page
    assert "no face found" in page


@pytest.mark.slow
def test_shards_write_their_own_video_and_report(tmp_path, capsys, reconstruct_data_dir, face_video, monkeypatch):
    from decaenv.runtime.video_out import read_frames

    monkeypatch.setattr("decaenv.runtime.shard.MIN_PIECE", 2)  # five frames: pieces of 3 and 2
    out, shown = tmp_path / "out", {}
    for k in (0, 1):
        code, stdout, err = _video_run(
            capsys, reconstruct_data_dir, face_video, out, "video,report", "--shard", f"{k}/2"
        )
        summary = json.loads(stdout)
        assert summary["run_files"] == [f"clip_reconstruction-{k}-of-2.mp4", f"report-{k}-of-2.html"], err
        shown[k] = read_frames(out / f"clip_reconstruction-{k}-of-2.mp4")
    assert [len(frames) for frames in shown.values()] == [3, 2]  # frames 0-2 | 3-4: each shard its piece
    assert shown[0][2][:, 224:].max() < 40 and shown[1][0][:, 224:].max() > 100  # frame 2 blank, frame 3 drawn
    assert sorted(p.name for p in out.iterdir() if p.suffix in (".mp4", ".html")) == [
        "clip_reconstruction-0-of-2.mp4",
        "clip_reconstruction-1-of-2.mp4",
        "report-0-of-2.html",
        "report-1-of-2.html",
    ]


def test_faces_all(tmp_path, capsys, reconstruct_data_dir, faces, face_video):
    from PIL import Image

    images = [np.asarray(Image.open(p).convert("RGB").resize((224, 224))) for p in faces]
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(np.concatenate(images, 1)).save(folder / "pair.png")
    out = tmp_path / "out"
    code, stdout, err = run(
        capsys,
        reconstruct_data_dir,
        "-i",
        folder,
        "-o",
        out,
        "--detector",
        "mtcnn",
        "--faces",
        "all",
        "--save",
        "codes",
        "--json",
    )
    assert code == 0, err
    items = json.loads(stdout)["items"]
    assert [i["name"] for i in items] == ["pair_face0", "pair_face1"]
    boxes = [json.loads((out / n / f"{n}_codes.json").read_text())["crop"]["box"] for n in ("pair_face0", "pair_face1")]
    centres = sorted((b[0] + b[2]) / 2 for b in boxes)
    assert centres[0] < 224 < centres[1]  # one face in each half
    code, stdout, _ = run(
        capsys,
        reconstruct_data_dir,
        "-i",
        folder,
        "-o",
        tmp_path / "one",
        "--detector",
        "mtcnn",
        "--save",
        "codes",
        "--json",
    )
    assert [i["name"] for i in json.loads(stdout)["items"]] == ["pair"]  # default: DECA's single face
    code, _, err = run(capsys, reconstruct_data_dir, "-i", face_video, "-o", tmp_path / "v", "--faces", "all")
    assert code == 1 and "--faces all works on images only" in err
    code, _, err = run(capsys, reconstruct_data_dir, "-i", folder, "-o", tmp_path / "v", "--faces", "some")
    assert code == 1 and "--faces takes largest or all" in err


@pytest.mark.slow
def test_glb_ply_and_detail_uv_read_back_with_trimesh(tmp_path, capsys, reconstruct_data_dir, faces):
    """trimesh (an independent, widely used reader) loads every file; contents match DECA's OBJ outputs."""
    trimesh = pytest.importorskip("trimesh")
    from PIL import Image

    from decaenv.meshio import read_obj

    out = tmp_path / "out"
    code, _, err = run(
        capsys,
        reconstruct_data_dir,
        "-i",
        faces[0],
        "-o",
        out,
        "--detector",
        "mtcnn",
        "--save",
        "obj,detail-obj,glb,ply",
        "--json",
    )
    assert code == 0, err
    name = faces[0].stem
    folder = out / name
    coarse = read_obj(folder / f"{name}.obj")
    texture = np.asarray(Image.open(folder / f"{name}.png").convert("RGB"))

    glb = trimesh.load(folder / f"{name}.glb", force="mesh", process=False)
    index_pairs = np.unique(np.stack([coarse.f.ravel(), coarse.ft.ravel()], 1), axis=0)
    want = np.concatenate([coarse.v[index_pairs[:, 0]], coarse.vt[index_pairs[:, 1]]], 1)
    have = np.concatenate([glb.vertices, glb.visual.uv], 1)
    assert have.shape == want.shape and len(glb.faces) == len(coarse.f)
    from scipy.spatial import cKDTree

    distance, _ = cKDTree(want).query(have)
    assert distance.max() < 1e-5  # every corner keeps its position and its OBJ uv
    assert np.array_equal(np.asarray(glb.visual.material.baseColorTexture.convert("RGB")), texture)
    assert np.allclose(np.linalg.norm(glb.vertex_normals, axis=1), 1, atol=1e-3)

    dense = read_obj(folder / f"{name}_detail.obj")
    dense_colours = np.array(
        [
            line.split()[4:7]
            for line in (folder / f"{name}_detail.obj").read_text().splitlines()
            if line.startswith("v ")
        ],
        dtype=np.uint8,
    )
    dglb = trimesh.load(folder / f"{name}_detail.glb", force="mesh", process=False)
    assert np.allclose(dglb.vertices, dense.v, atol=1e-5) and np.array_equal(dglb.faces, dense.f)
    from decaenv.runtime.mesh_kinds import sample_texture

    assert np.array_equal(sample_texture(texture, np.asarray(dglb.visual.uv)), dense_colours)  # mapped like coarse

    ply = trimesh.load(folder / f"{name}_detail.ply", process=False)
    assert np.allclose(ply.vertices, dense.v, atol=1e-5) and np.array_equal(ply.faces, dense.f)
    assert np.array_equal(ply.visual.vertex_colors[:, :3], dense_colours)
    cply = trimesh.load(folder / f"{name}.ply", process=False)
    assert np.allclose(cply.vertices, coarse.v, atol=1e-5) and np.array_equal(cply.faces, coarse.f)

    code, _, err = run(
        capsys,
        reconstruct_data_dir,
        "-i",
        faces[0],
        "-o",
        out / "uv",
        "--detector",
        "mtcnn",
        "--save",
        "detail-uv",
        "--json",
    )
    assert code == 0, err
    uv_obj = trimesh.load(out / "uv" / name / f"{name}_detail.obj", force="mesh", process=False)
    # trimesh keeps the vertices the faces use (v/vt pairs): the procedural dense template leaves some unused,
    # DECA's own (DECAENV_TEST_ASSETS) none; our reader below sees every one
    used = len(np.unique(dense.f))
    assert len(uv_obj.vertices) == used and uv_obj.visual.uv.shape == (used, 2) and len(uv_obj.faces) == len(dense.f)
    assert "map_Kd" in (out / "uv" / name / f"{name}_detail.mtl").read_text()
    own = read_obj(out / "uv" / name / f"{name}_detail.obj")
    assert np.allclose(own.v, dense.v) and len(own.vt) == len(dense.v)
    assert np.array_equal(own.ft, own.f) and np.array_equal(sample_texture(texture, own.vt), dense_colours)
