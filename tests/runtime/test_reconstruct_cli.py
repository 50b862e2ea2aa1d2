"""`decaenv reconstruct` end to end on synthetic weights: every output kind, DECA's flags, resuming, the
bad-input corpus (per-item errors, nothing partial), and the shared photos when available."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import skimage.data
from PIL import Image

from decaenv.cli import main
from decaenv.runtime.export import SAVE_KINDS
from decaenv.runtime.readback import check_item

pytestmark = pytest.mark.slow  # CLI reconstructions: `make test` only, not `make test-fast`


@pytest.fixture(scope="module")
def astronaut_256():
    return np.asarray(Image.fromarray(skimage.data.astronaut()).resize((256, 256), Image.Resampling.BOX))


def run(capsys, data_dir, *args):
    code = main(["--data-dir", str(data_dir), "reconstruct", "--rasterizer", "torch", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def no_partials(root: Path):
    return [p for p in root.rglob("*") if ".partial" in p.name or p.name.startswith(".decaenv-write-test")]


def test_every_save_kind_written_and_readable(tmp_path, capsys, reconstruct_data_dir, astronaut_256):
    photo = tmp_path / "in" / "astronaut.png"
    photo.parent.mkdir()
    Image.fromarray(astronaut_256).save(photo)
    out = tmp_path / "out"
    code, stdout, err = run(
        capsys,
        reconstruct_data_dir,
        "-i",
        photo,
        "-o",
        out,
        "--save",
        "all",
        "--render-orig",
        "--detector",
        "mtcnn",
        "--json",
    )
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["ok"] == 1 and summary["failed"] == 0 and summary["detector"] == "mtcnn"
    found = check_item(out, "astronaut", SAVE_KINDS)
    assert set(found) == set(SAVE_KINDS)
    assert (out / "astronaut_vis_original_size.jpg").is_file()
    assert (out / "astronaut" / "orig_astronaut_shape_images.jpg").is_file()
    mat = scipy.io.loadmat(out / "astronaut" / "astronaut.mat")
    kpt2d = np.loadtxt(out / "astronaut" / "astronaut_kpt2d.txt")
    assert np.allclose(mat["landmarks2d"], kpt2d, atol=1e-6) and np.abs(kpt2d).max() < 2  # normalised
    codes = np.load(out / "astronaut" / "astronaut_codes.npz")
    meta = json.loads((out / "astronaut" / "astronaut_codes.json").read_text())
    assert np.allclose(codes["full_pose"][6:9], codes["pose"][3:6]) and meta["crop"]["source"] == "detector:mtcnn"
    mtl = (out / "astronaut" / "astronaut.mtl").read_text()
    assert mtl == "newmtl FaceTexture\nmap_Kd astronaut.png\ndisp astronaut_normals.png"
    obj_head = (out / "astronaut" / "astronaut.obj").read_text().splitlines()[:3]
    assert obj_head[0] == "mtllib astronaut.mtl" and obj_head[1] == "" and obj_head[2].startswith("v ")
    assert not no_partials(out)


def test_deca_demo_flags_verbatim_and_skip_existing(tmp_path, capsys, reconstruct_data_dir, astronaut_256):
    folder = tmp_path / "TestSamples"
    folder.mkdir()
    Image.fromarray(astronaut_256).save(folder / "a.jpg")
    Image.fromarray(astronaut_256[:, ::-1].copy()).save(folder / "b.bmp")
    out = tmp_path / "results"
    args = [
        "--inputpath",
        folder,
        "--savefolder",
        out,
        "--saveObj",
        "True",
        "--saveDepth",
        "True",
        "--saveKpt",
        "True",
        "--saveMat",
        "True",
        "--saveImages",
        "True",
        "--useTex",
        "False",
        "--rasterizer_type",
        "standard",
        "--render_orig",
        "False",
        "--iscrop",
        "True",
        "--detector",
        "mtcnn",
        "--sample_step",
        "10",
    ]
    code, _, err = run(capsys, reconstruct_data_dir, *args)
    assert code == 0, err
    for name in ("a", "b"):
        assert (out / f"{name}_vis.jpg").is_file()  # saveVis defaults to True, as in DECA's demo
        for suffix in (
            ".obj",
            ".mtl",
            ".png",
            "_normals.png",
            "_detail.obj",
            "_depth.jpg",
            "_kpt2d.txt",
            "_kpt3d.txt",
            ".mat",
            "_inputs.jpg",
            "_shape_images.jpg",
            "_shape_detail_images.jpg",
            "_landmarks2d.jpg",
        ):
            assert (out / name / f"{name}{suffix}").is_file(), f"{name}{suffix}"
        assert not (out / name / f"{name}_rendered_images.jpg").exists()  # only with useTex
    stamp = (out / "a" / "a.mat").stat().st_mtime_ns
    code, stdout, err = run(capsys, reconstruct_data_dir, *args, "--skip-existing", "--json")
    assert code == 0 and json.loads(stdout)["skipped"] == 2
    assert (out / "a" / "a.mat").stat().st_mtime_ns == stamp


def _corpus(root: Path, astronaut: np.ndarray):
    """(path, expected: 'ok' or a message fragment) for every bad-input kind, plus valid awkward files."""
    from _support.media import huge_png_header, make_video

    cases = []
    (root / "empty.jpg").write_bytes(b"")
    cases.append(("empty.jpg", "is empty"))
    Image.fromarray(astronaut).save(root / "full.jpg", quality=90)
    data = (root / "full.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(data[: len(data) // 4])
    (root / "full.jpg").unlink()
    cases.append(("truncated.jpg", "truncated or damaged"))
    (root / "notes.png").write_text("these are my notes, not a picture\n")
    cases.append(("notes.png", "is a text file"))
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(root / "dot.png")
    cases.append(("dot.png", "too small"))
    huge_png_header(root / "huge.png")
    cases.append(("huge.png", "20000×20000"))
    Image.fromarray(astronaut).convert("L").save(root / "gray.png")
    cases.append(("gray.png", "ok"))
    rgba = np.concatenate([astronaut, np.full(astronaut.shape[:2] + (1,), 90, np.uint8)], 2)
    Image.fromarray(rgba).save(root / "rgba.png")
    cases.append(("rgba.png", "ok"))
    gray16 = np.asarray(Image.fromarray(astronaut).convert("L")).astype(np.uint16) * 257
    Image.fromarray(gray16).save(root / "deep16.png")
    cases.append(("deep16.png", "ok"))
    Image.fromarray(astronaut).convert("CMYK").save(root / "cmyk.jpg", quality=95)
    cases.append(("cmyk.jpg", "ok"))
    sideways = Image.fromarray(np.ascontiguousarray(np.rot90(astronaut, k=1)))
    exif = sideways.getexif()
    exif[0x0112] = 6  # stored turned left; displayed upright
    sideways.save(root / "exif.jpg", exif=exif.tobytes(), quality=95)
    cases.append(("exif.jpg", "ok"))
    Image.fromarray(np.full((200, 200, 3), 127, np.uint8)).save(root / "wall.png")
    cases.append(("wall.png", "no face found"))
    make_video(root / "nothing.avi", 0)
    cases.append(("nothing.avi", "no frames"))
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(400))
    cases.append(("broken.mp4", "cannot be decoded"))
    Image.fromarray(astronaut).save(root / "фото_宇航员 ü.png")
    cases.append(("фото_宇航员 ü.png", "ok"))
    Image.fromarray(astronaut).save(root / "web.webp")
    cases.append(("web.webp", "ok"))
    cases.append(("vanished.png", "does not exist"))
    Image.fromarray(astronaut).save(root / "badlmk.png")
    (root / "badlmk.txt").write_text("1 2\n")
    cases.append(("badlmk.png", "expected 68 points"))
    import av

    with av.open(str(root / "clip.mp4"), "w") as container:  # 3 frames of the face; --sample-step 2 keeps 0, 2
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = astronaut.shape[1], astronaut.shape[0], "yuv420p"
        for k in range(3):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.roll(astronaut, 4 * k, axis=1)), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return cases


def test_bad_input_corpus(tmp_path, capsys, monkeypatch, reconstruct_data_dir, astronaut_256):
    pytest.importorskip("av")
    from decaenv.runtime import inputs

    root = tmp_path / "corpus"
    root.mkdir()
    cases = _corpus(root, astronaut_256)
    listing = tmp_path / "inputs.txt"
    listing.write_text("\n".join(str(root / name) for name, _ in cases) + "\n", encoding="utf-8")
    locked = tmp_path / "locked"
    locked.mkdir()
    real_scandir = os.scandir
    monkeypatch.setattr(
        inputs.os,
        "scandir",
        lambda p=".": (
            (_ for _ in ()).throw(PermissionError(13, "Permission denied"))
            if not isinstance(p, int) and os.fspath(p) == os.fspath(locked)
            else real_scandir(p)
        ),
    )
    out = tmp_path / "out"
    listing.write_text(listing.read_text() + str(root / "clip.mp4") + "\n", encoding="utf-8")
    code, stdout, err = run(
        capsys,
        reconstruct_data_dir,
        "-i",
        listing,
        "-i",
        locked,
        "-o",
        out,
        "--detector",
        "mtcnn",
        "--save",
        "kpt,codes",
        "--batch-size",
        "4",
        "--sample-step",
        "2",
        "--json",
    )
    assert code == 1
    assert "Traceback" not in err
    summary = json.loads(stdout)
    outcomes = {Path(item["source"]).name: item for item in summary["items"]}
    assert len(cases) + 1 >= 15  # + the unreadable folder (the unwritable output folder is tested below)
    for name, expected in cases:
        item = outcomes[name]
        if expected == "ok":
            assert item["status"] == "ok", (name, item["message"])
            stem = Path(name).stem
            assert (out / stem / f"{stem}_codes.npz").is_file()
        else:
            assert item["status"] == "failed" and expected in item["message"], (name, item["message"])
            assert "\n" not in item["message"] and Path(name).stem in item["message"]
            assert not (out / Path(name).stem).exists()
    assert outcomes["locked"]["status"] == "failed" and "Permission denied" in outcomes["locked"]["message"]
    frames = [i for i in summary["items"] if i["source"].startswith(str(root / "clip.mp4"))]
    assert [(i["name"], i["status"]) for i in frames] == [("clip_frame0000", "ok"), ("clip_frame0002", "ok")]
    assert not no_partials(out)
    expected = [Path(n).stem for n, e in cases if e == "ok"] + ["clip_frame0000", "clip_frame0002"]
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)


def test_same_names_from_different_folders_do_not_overwrite(tmp_path, capsys, reconstruct_data_dir, astronaut_256):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.fromarray(astronaut_256).save(tmp_path / folder / "face.png")
    out = tmp_path / "out"
    code, _, err = run(
        capsys,
        reconstruct_data_dir,
        "-i",
        tmp_path / "a",
        "-i",
        tmp_path / "b",
        "-o",
        out,
        "--save",
        "codes",
        "--detector",
        "mtcnn",
    )
    assert code == 0, err
    sources = [json.loads((out / n / f"{n}_codes.json").read_text())["source"] for n in ("face", "face_2")]
    assert sources == [str(tmp_path / "a" / "face.png"), str(tmp_path / "b" / "face.png")]


def test_exif_rotation_is_applied_before_detection(tmp_path, capsys, reconstruct_data_dir, astronaut_256):
    upright = tmp_path / "upright.png"
    Image.fromarray(astronaut_256).save(upright)
    turned = Image.fromarray(np.ascontiguousarray(np.rot90(astronaut_256, k=1)))
    exif = turned.getexif()
    exif[0x0112] = 6
    turned.save(tmp_path / "turned.png", exif=exif.tobytes())
    out = tmp_path / "out"
    code, _, err = run(
        capsys,
        reconstruct_data_dir,
        "-i",
        upright,
        "-i",
        tmp_path / "turned.png",
        "-o",
        out,
        "--save",
        "codes",
        "--detector",
        "mtcnn",
    )
    assert code == 0, err
    a = np.load(out / "upright" / "upright_codes.npz")["tform"]
    b = np.load(out / "turned" / "turned_codes.npz")["tform"]
    assert np.allclose(a, b)


def test_unwritable_output_folder_is_one_clear_error(tmp_path, capsys, reconstruct_data_dir, astronaut_256):
    photo = tmp_path / "a.png"
    Image.fromarray(astronaut_256).save(photo)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run(capsys, reconstruct_data_dir, "-i", photo, "-o", blocker / "out")
    assert code == 1 and "output folder" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        code, _, err = run(capsys, reconstruct_data_dir, "-i", photo, "-o", ro)
        assert code == 1 and "not writable" in err


def test_usage_errors(capsys, reconstruct_data_dir, tmp_path):
    code, _, err = run(capsys, reconstruct_data_dir, "-o", tmp_path / "o")
    assert code == 1 and "no input given" in err
    code, _, err = run(capsys, reconstruct_data_dir, "-i", tmp_path, "-o", tmp_path / "o", "--save", "vis,stl")
    assert code == 1 and "unknown --save kind stl" in err
    code, _, err = run(capsys, reconstruct_data_dir, "-i", tmp_path, "-o", tmp_path / "o", "--saveObj", "maybe")
    assert code == 1 and "--saveObj takes true or false" in err


def test_shared_photos(tmp_path, capsys, shared_assets, reconstruct_data_dir):
    """The real photos (licensed: read in place, never copied): every one found and reconstructed."""
    images = shared_assets / "images"
    out = tmp_path / "out"
    code, stdout, err = run(
        capsys,
        reconstruct_data_dir,
        "-i",
        images,
        "-o",
        out,
        "--detector",
        "mtcnn",
        "--save",
        "vis,obj,kpt,mat,codes",  # not detail-obj (10 MB each; checked in test_every_save_kind_written_and_readable)
        "--batch-size",
        "4",
        "--json",
    )
    assert code == 0, err
    summary = json.loads(stdout)
    names = sorted(p.stem for p in images.iterdir())
    assert summary["ok"] == len(names) >= 9
    for name in names:
        check_item(out, name, ("vis", "obj", "kpt", "mat", "codes"))


@pytest.mark.parametrize("save, landmarks", [("codes", False), ("table", False), ("table", True)])
def test_codes_and_tables_run_only_what_they_need(
    tmp_path, capsys, reconstruct_data_dir, astronaut_256, monkeypatch, save, landmarks
):
    """`--save codes` / `table` run the encoders only: no detail decoder and no render, and FLAME only for the
    table's landmarks (issue 16: "only compute what the requested outputs need")."""
    from decaenv.runtime.deca import DECA

    if save == "table":
        pytest.importorskip("pyarrow")
    photo = tmp_path / "astronaut.png"
    Image.fromarray(astronaut_256).save(photo)
    monkeypatch.setattr(DECA, "detail", lambda *a, **k: pytest.fail("the detail decoder ran"))
    monkeypatch.setattr(DECA, "views", lambda *a, **k: pytest.fail("a render ran"))
    real_geometry = DECA.geometry
    ran = []
    monkeypatch.setattr(DECA, "geometry", lambda self, *a, **k: ran.append(1) or real_geometry(self, *a, **k))
    extra = ["--table-landmarks"] if landmarks else []
    code, _, err = run(capsys, reconstruct_data_dir, "-i", photo, "-o", tmp_path / "out", "--save", save, *extra)
    assert code == 0, err
    assert bool(ran) == landmarks
    written = sorted(p.name for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written == (["codes.parquet"] if save == "table" else ["astronaut_codes.json", "astronaut_codes.npz"])
