"""A run that needs only some frames of a video (--skip-existing after a kill, a finished run run again, a
shard) decodes only from the keyframe before the first frame it needs, and gets the same frames and names."""

import numpy as np
import pytest
import skimage.data
from PIL import Image

import decaenv.runtime.video_resume as video_resume
from decaenv.runtime.images import read_video_frames
from decaenv.runtime.inputs import expand_inputs
from tests._support.media import make_gop_video
from tests.runtime.test_video_segments import VIDEOS

pytest.importorskip("av")


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("resume-videos")
    return {name: make_gop_video(folder / name, 40, *VIDEOS[name][:2], pix_fmt=VIDEOS[name][2]) for name in VIDEOS}


def _decoded(monkeypatch):
    """Count the frames converted to RGB on the resumed path."""
    calls = []
    real = video_resume.frame_rgb

    def counting(frame, path, index):
        calls.append(index)
        return real(frame, path, index)

    monkeypatch.setattr(video_resume, "frame_rgb", counting)
    return calls


@pytest.mark.parametrize("name", sorted(VIDEOS))
def test_needed_frames_come_with_the_pixels_of_a_full_read(videos, name, monkeypatch):
    path = videos[name]
    local = dict(read_video_frames(path, 2))
    calls = _decoded(monkeypatch)
    items = list(expand_inputs([path], 2, needed=lambda item, k: item.frame >= 22 and k % 3 != 0))
    assert [item.frame for item in items] == sorted(local)  # every listed frame, in order, named as before
    assert [item.name for item in items] == [f"{path.stem}_frame{i:04d}" for i in sorted(local)]
    for item in items:
        if item.frame >= 22 and (item.frame // 2) % 3 != 0:
            assert item.error is None and np.array_equal(item.pixels, local[item.frame]), item.frame
        else:
            assert item.pixels is None and item.error is None
    assert calls == [i for i in sorted(local) if i >= 22 and (i // 2) % 3 != 0]  # nothing else converted


def test_a_finished_run_decodes_nothing_and_a_first_run_decodes_as_before(videos, monkeypatch):
    path = videos["h264-bframes.mp4"]
    calls = _decoded(monkeypatch)
    items = list(expand_inputs([path], 1, needed=lambda item, k: False))
    assert len(items) == 40 and all(item.pixels is None for item in items) and calls == []
    with pytest.raises(Exception, match="was not decoded"):
        items[0].load()  # a frame listed without pixels is never read as an image
    everything = list(expand_inputs([path], 1, needed=lambda item, k: True))
    assert calls == [] and all(item.pixels is not None for item in everything)  # the plain decode from the start


def test_the_cli_resumes_a_killed_video_run_and_skips_a_finished_one(tmp_path, reconstruct_data_dir, monkeypatch):
    pytest.importorskip("pyarrow")
    import pyarrow as pa
    import pyarrow.parquet as pq

    from decaenv.cli import main
    from decaenv.runtime.table import read_codes

    face = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((160, 160), Image.Resampling.BOX))
    video = make_gop_video(tmp_path / "clip.mp4", 12, options={"g": "4", "bf": "2"}, picture=face)
    out = tmp_path / "out"
    args = ["--data-dir", str(reconstruct_data_dir), "-q", "reconstruct", "-i", str(video), "-o", str(out)]
    args += ["--save", "table", "--detector", "mtcnn", "--rasterizer", "torch", "--batch-size", "4", "--skip-existing"]
    assert main(args) == 0
    full = read_codes(out, status="all")
    table = pq.read_table(out / "codes.parquet")
    keep = pa.array([int(f) < 7 for f in table.column("frame").to_pylist()])
    pq.write_table(table.filter(keep), out / "codes.parquet")  # killed after frames 0-6
    calls = _decoded(monkeypatch)
    assert main(args) == 0
    # only the frames left were decoded (the first one also by the listings that decide whether work is left)
    assert sorted(set(calls)) == list(range(7, 12)) and all(calls.count(i) == 1 for i in range(8, 12))
    resumed = read_codes(out, status="all")
    order = np.argsort(resumed["name"]), np.argsort(full["name"])
    assert list(resumed["name"][order[0]]) == list(full["name"][order[1]])
    got, expected = resumed["shape"][order[0]], full["shape"][order[1]]  # (other batches: summation order)
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()
    calls.clear()
    monkeypatch.setattr("decaenv.runtime.inputs.read_video_frames", lambda *a: pytest.fail("decoded again"))
    assert main(args) == 0 and calls == []  # finished: nothing decoded
