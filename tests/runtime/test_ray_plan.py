"""`--engine ray`'s work without a cluster: the driver's plan (names, skips and failures as a local run has
them; videos indexed, not decoded, and cut into keyframe segments) and `DecaPredictor` decoding its video
units itself, with the rows a local run writes."""

import json

import numpy as np
import pytest
import skimage.data
from PIL import Image

from decaenv.errors import UsageError
from decaenv.runtime.inputs import expand_inputs
from decaenv.runtime.ray_plan import plan_work
from decaenv.runtime.run_types import NameRegistry
from tests._support.media import make_gop_video
from tests._support.runs import codes_options

pytest.importorskip("av")


def _face(side=128, shift=0):
    base = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((side, side), Image.Resampling.BOX))
    return np.ascontiguousarray(np.roll(base, shift, axis=1))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    for name in ("a", "b", "clip"):
        Image.fromarray(_face(64)).save(folder / f"{name}.png")
    make_gop_video(folder / "clip.mp4", 30, options={"g": "8", "bf": "2"}, picture=_face())
    (folder / "broken.mp4").write_text("not a video")
    return folder


def _units(plan, workers, batch):
    return [json.loads(u) for u in plan.units(workers, batch)]


def test_the_plan_names_skips_and_fails_items_as_a_local_run_does(inputs, tmp_path):
    sources = [inputs / "a.png", inputs / "b.png", inputs / "clip.png", inputs / "clip.mp4", inputs / "broken.mp4"]
    options = codes_options(tmp_path, inputs, tmp_path / "out", batch_size=2, sample_step=2)
    options.inputs = sources
    registry = NameRegistry(quiet=True)
    local = [registry.unique(item) for item in expand_inputs(sources, 2)]  # decodes the video, as a local run
    assert "clip_2_frame0028" in local and "broken" in local
    plan = plan_work(options, done={"a", "clip_2_frame0002", "clip_2_frame0003"})
    assert plan.skipped == 2  # a, and frame 2 (frame 3 is not a 2nd frame)
    assert [(row["name"], row["status"]) for row in plan.failed] == [("broken", "failed")]
    assert "cannot be decoded" in str(plan.failed[0]["error"])
    units = _units(plan, workers=3, batch=1)
    images = [name for u in units if u["kind"] == "images" for name, _ in u["items"]]
    frames = [f"{u['base']}_frame{f:04d}" for u in units if u["kind"] == "video" for f in u["frames"]]
    assert sorted(images + frames + ["a", "clip_2_frame0002", "broken"]) == sorted(local)
    assert [len(u["items"]) for u in units if u["kind"] == "images"] == [2]  # b, clip: one unit of --batch-size
    videos = [u for u in units if u["kind"] == "video"]
    assert len(videos) >= 2 and all(u["seek"] is not None and u["pts"] for u in videos)  # spread, by keyframe
    assert len([u for u in _units(plan, workers=1, batch=1) if u["kind"] == "video"]) == 1  # 13 frames < 64
    assert plan_work(options, done=set(local)).empty()


@pytest.mark.slow
@pytest.mark.parametrize("beside", [False, True], ids=["inline", "input-thread"])
def test_the_predictor_decodes_video_units_into_a_local_runs_rows(
    inputs, tmp_path, reconstruct_data_dir, monkeypatch, beside
):
    pytest.importorskip("pyarrow")
    import pyarrow as pa

    import decaenv.runtime.overlap as overlap

    # where the next batch is read beside the networks (more than two CPUs, or a GPU) and where not (here)
    monkeypatch.setattr(overlap, "overlap_pays", lambda device, cpus=None: beside)

    from decaenv.runtime.pipeline import Reconstructor
    from decaenv.runtime.ray_engine import DecaPredictor
    from decaenv.runtime.table import read_codes

    video = inputs / "clip.mp4"
    local_out = tmp_path / "local"
    options = codes_options(reconstruct_data_dir, video, local_out, batch_size=4, sample_step=3, save=["table"])
    Reconstructor(options).run()
    local = read_codes(local_out, status="all")
    plan = plan_work(options, done=set())
    units = plan.units(workers=3, batch_size=2)
    ghost = json.loads(units[-1])
    ghost.update(frames=ghost["frames"] + [99], pts=ghost["pts"] + [10**9])  # a frame the video does not have
    gone = dict(ghost, source=str(tmp_path / "gone.mp4"), frames=[0, 3], pts=[0, 1], base="gone")
    fields = {k: ([str(p) for p in v] if k == "inputs" else v) for k, v in vars(options).items()}
    fields["out_dir"] = str(fields["out_dir"])
    fields["data_dir"] = {"path": str(reconstruct_data_dir), "source": "flag"}
    predictor = DecaPredictor(fields)
    predictor({"unit": np.array([units[0]], dtype=object)})
    assert predictor._input_in_thread is beside
    lost = json.dumps({"kind": "images", "items": [["lost", str(tmp_path / "lost.png")]]})
    out = predictor({"unit": np.array(units[:-1] + [json.dumps(ghost), json.dumps(gone), lost], dtype=object)})
    rows = pa.ipc.open_stream(out["payload"][0]).read_all().to_pylist()
    by_name = {row["name"]: row for row in rows}
    assert by_name["clip_frame0099"]["status"] == "failed" and "not decoded" in by_name["clip_frame0099"]["error"]
    assert {by_name["gone_frame0000"]["status"], by_name["gone_frame0003"]["status"]} == {"failed"}
    assert "is not on this worker, though the driver found it" in by_name["gone_frame0000"]["error"]
    assert "every node mounts" in by_name["gone_frame0000"]["error"]
    assert by_name["lost"]["status"] == "failed" and "is not on this worker" in by_name["lost"]["error"]
    assert list(local["status"]).count("ok") >= 5
    for i, name in enumerate(local["name"]):
        row = by_name[name]
        assert (row["status"], row["error"], row["frame"]) == (local["status"][i], local["error"][i], local["frame"][i])
        if row["status"] == "ok":
            np.testing.assert_allclose(row["shape"], local["shape"][i], rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(row["tform"], local["tform"][i].reshape(-1), rtol=1e-6, atol=1e-9)
    assert len(rows) == len(local["name"]) + 4
    # the item-column format of your own pipelines (docs/cluster.md): a file, and pixels you decoded yourself
    from decaenv.runtime.images import read_video_frames

    first = next(read_video_frames(video))[1]
    batch = {
        "name": np.array(["file", "pixels"], dtype=object),
        "source": np.array([str(inputs / "b.png"), str(video)], dtype=object),
        "frame": np.array([-1, 0]),
        "pixels": np.array([np.zeros(0, np.uint8), first], dtype=object),
    }
    own = pa.ipc.open_stream(predictor(batch)["payload"][0]).read_all().to_pylist()
    assert [(row["name"], row["frame"]) for row in own] == [("file", -1), ("pixels", 0)]
    expected = local["shape"][list(local["name"]).index("clip_frame0000")]
    np.testing.assert_allclose(own[1]["shape"], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("flag", [["--faces", "all"], ["--smooth"], ["--shard", "0/2"]])
def test_local_only_flags_are_refused_with_one_line(flag, inputs, tmp_path, capsys, reconstruct_data_dir):
    from decaenv.cli import main

    args = [
        "--data-dir",
        str(reconstruct_data_dir),
        "reconstruct",
        "-i",
        str(inputs / "clip.mp4"),
        "-o",
        str(tmp_path / "out"),
        "--save",
        "table",
    ]
    code = main([*args, "--engine", "ray", *flag])
    err = capsys.readouterr().err
    assert code == 1 and "--engine ray" in err and "Traceback" not in err and len(err.strip().splitlines()) <= 2
    assert not (tmp_path / "out").exists()


def test_segments_are_whole_keyframe_groups_when_there_are_enough_to_go_round():
    from decaenv.runtime.ray_plan import SEGMENT_FRAMES, segment_frames
    from decaenv.runtime.video_segments import VideoIndex, plan_segments

    def index(frames, group):
        stamps = np.arange(frames, dtype=np.int64) * 512
        return VideoIndex(pts=stamps, keyframes=stamps[::group], seek_at=stamps[::group], seekable=True)

    long, short = index(10_000, 250), index(1_000, 250)  # x264's default group of pictures
    assert segment_frames(long, 10_000, workers=8, batch_size=8) == 250  # 40 groups for 8 workers: no cutting
    assert segment_frames(short, 1_000, workers=8, batch_size=8) == SEGMENT_FRAMES  # 4 groups: cut to spread
    assert segment_frames(short, 40, workers=8, batch_size=8) == 8  # a short run: --batch-size, not less
    assert segment_frames(long, 5_000, workers=8, batch_size=8) == 125  # every 2nd frame: 125 of a group
    segments = plan_segments(long, range(10_000), segment_frames(long, 10_000, 8, 8))
    assert len(segments) == 40 and {len(s.frames) for s in segments} == {250}
    assert [s.seek for s in segments] == list(long.seek_at)


def _plan_summary(plan):
    videos = [(source, name, index.frames, list(wanted)) for source, name, index, wanted in plan.videos]
    return plan.images, videos, [(r["name"], r["error"]) for r in plan.failed], plan.skipped, plan.image_items


@pytest.mark.parametrize("ahead, listed", [(32, 4096), (1, 2)])
def test_videos_indexed_side_by_side_give_the_plan_indexed_one_by_one(inputs, tmp_path, monkeypatch, ahead, listed):
    """Names (a picture and a video of one stem, a broken video among them), order, skips and failures are those
    of indexing each video in turn, however far ahead the driver reads."""
    import decaenv.runtime.ray_plan as ray_plan

    sources = [inputs / "clip.png", inputs / "clip.mp4", inputs / "broken.mp4", inputs / "a.png", inputs / "clip.mp4"]
    sources += [inputs / "b.png", inputs / "broken.mp4", inputs / "clip.png"]
    options = codes_options(tmp_path, inputs, tmp_path / "out", batch_size=2, sample_step=3)
    options.inputs = sources
    done = {"clip_2_frame0003", "a"}
    monkeypatch.setattr(ray_plan, "INDEX_AHEAD", 0)  # each video indexed before the next item is listed
    one_by_one = _plan_summary(plan_work(options, done))
    monkeypatch.setattr(ray_plan, "INDEX_AHEAD", ahead)
    monkeypatch.setattr(ray_plan, "LISTED_AHEAD", listed)
    assert _plan_summary(plan_work(options, done)) == one_by_one
    assert [name for name, _ in one_by_one[2]] == ["broken", "broken_2"] and one_by_one[3] == 3  # a, frame 3 twice


def test_the_driver_reads_videos_side_by_side(inputs, tmp_path, monkeypatch):
    """Two videos are indexed at once (a barrier that only two threads together pass), in the listing's order."""
    import threading

    import decaenv.runtime.ray_plan as ray_plan

    barrier, real = threading.Barrier(2, timeout=30), ray_plan._indexed
    monkeypatch.setattr(ray_plan, "_indexed", lambda source: barrier.wait() is None or real(source))
    options = codes_options(tmp_path, inputs, tmp_path / "out", batch_size=2)
    options.inputs = [inputs / "clip.mp4", inputs / "a.png", inputs / "clip.mp4"]
    plan = plan_work(options, done=set())
    assert [name for _, name, _, _ in plan.videos] == ["clip", "clip"] and plan.images


def test_a_machine_without_ray_gets_a_one_line_error_before_any_work(tmp_path, inputs, monkeypatch):
    import importlib.util

    from decaenv.runtime.ray_job import RayJob

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    options = codes_options(tmp_path, inputs, tmp_path / "out", save=["table"])
    with pytest.raises(UsageError, match="needs Ray") as caught:
        RayJob(options, "ray")
    assert "decaenv[ray]" in caught.value.hint and not (tmp_path / "out").exists()


def test_the_job_counts_its_items_for_the_progress_bar_before_ray_starts(inputs, tmp_path):
    pytest.importorskip("ray")
    pytest.importorskip("pyarrow")
    from decaenv.runtime.ray_job import RayJob

    sources = [inputs / "a.png", inputs / "b.png", inputs / "clip.mp4", inputs / "broken.mp4"]
    options = codes_options(tmp_path, inputs, tmp_path / "out", sample_step=2, save=["table"])
    options.inputs = sources
    job = RayJob(options, "ray")
    assert job.expected_items() == 2 + 15 + 1  # two photos, every 2nd of 30 frames, the broken video's row
    assert job.plan().items() == 17 and len(job.plan().failed) == 1
    with pytest.raises(UsageError, match="unknown --engine"):
        RayJob(options, "dask")
