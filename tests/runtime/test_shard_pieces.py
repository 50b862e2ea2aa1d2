"""`--shard K/N` deals pictures one by one and each video in pieces of about 1/N of it: every listed item belongs
to one shard, a shard decodes only its pieces (from the keyframe before each), and a split that an earlier
decaenv started (video frames one by one) is finished the way it started."""

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import decaenv.runtime.images as images
import decaenv.runtime.video_resume as video_resume
import decaenv.runtime.video_segments as video_segments
from decaenv.runtime.images import read_video_frames
from decaenv.runtime.inputs import Item, expand_inputs
from decaenv.runtime.run_types import NameRegistry, ReconstructOptions
from decaenv.runtime.shard import LEGACY_SPLIT, MIN_PIECE, PIECES_SPLIT, Ownership, Shard
from tests._support.media import make_gop_video
from tests.runtime.test_video_segments import VIDEOS


# -- the rule --------------------------------------------------------------------------------------------------
def _listing(parts, step=1):
    """Simulated listing events for `parts` ((count, is a video) in order): ("video", path, listed) before a
    video's frames, ("item", Item) for each item."""
    events = []
    for n, (count, video) in enumerate(parts):
        if video:
            path = Path(f"v{n}.mp4")
            events.append(("video", path, count))
            events += [("item", Item(f"v{n}_frame{k * step:04d}", path, frame=k * step)) for k in range(count)]
        else:
            events += [("item", Item(f"p{n}_{j}", Path(f"p{n}_{j}.png"))) for j in range(count)]
    return events


def _taken(shard, parts, step=1):
    owner, taken = Ownership(shard, step), []
    for event in _listing(parts, step):
        if event[0] == "video":
            owner.start_video(event[1], event[2])
        elif owner.takes(event[1]):
            taken.append(event[1].name)
    return taken


def test_pictures_alone_go_to_shards_one_by_one_as_before():
    parts = [(7, False), (1, False), (5, False)]
    for count in (1, 2, 3, 5):
        for k in range(count):
            names = _taken(Shard(k, count), parts)
            everything = [e[1].name for e in _listing(parts)]
            assert names == [name for i, name in enumerate(everything) if i % count == k]


def test_a_video_goes_to_shards_in_pieces_of_about_one_nth():
    video = [(3, False), (1000, True), (2, False)]
    pieces = [_taken(Shard(k, 4), video) for k in range(4)]
    # units: p0_0 p0_1 p0_2 (0-2), the video's four pieces of 250 frames (3-6), p2_0 p2_1 (7, 8)
    assert [len([n for n in names if "_frame" in n]) for names in pieces] == [250, 250, 250, 250]
    assert pieces[3][0] == "v1_frame0000" and pieces[3][250:] == ["p2_0"]
    assert pieces[0][0] == "p0_0" and pieces[0][251:] == ["p2_1"]
    frames = [int(n[-4:]) for n in pieces[0] if "_frame" in n]
    assert frames == list(range(250, 500))  # one contiguous piece
    short = [_taken(Shard(k, 8), [(4 * MIN_PIECE + 10, True)]) for k in range(8)]  # four equal pieces, not eight
    assert [len(names) for names in short] == [MIN_PIECE + 3] * 3 + [MIN_PIECE + 1] + [0] * 4
    assert [len(_taken(Shard(k, 3), [(MIN_PIECE - 1, True)])) for k in range(3)] == [MIN_PIECE - 1, 0, 0]


@pytest.mark.parametrize("split", [PIECES_SPLIT, LEGACY_SPLIT])
def test_every_item_belongs_to_one_shard_and_the_share_counts_them(split):
    rng = np.random.default_rng(0)
    for _ in range(40):
        parts = [(int(rng.integers(1, 400)), bool(rng.random() < 0.4)) for _ in range(int(rng.integers(1, 6)))]
        everything = [e[1].name for e in _listing(parts) if e[0] == "item"]
        for count in (1, 2, 3, 7):
            shards = [Shard(k, count, split=split) for k in range(count)]
            taken = [_taken(shard, parts) for shard in shards]
            assert sorted(n for names in taken for n in names) == sorted(everything), (parts, count)
            assert [Ownership(shard).share(parts) for shard in shards] == [len(names) for names in taken]
            if split == LEGACY_SPLIT:  # frames one by one: item i to shard i mod N
                assert taken[count - 1] == everything[count - 1 :: count]
            else:  # a shard's frames of a video are one piece: consecutive
                for names in taken:
                    videos = {n.split("_frame")[0] for n in names if "_frame" in n}
                    for video in videos:
                        frames = [int(n[-4:]) for n in names if n.startswith(f"{video}_frame")]
                        assert frames == list(range(frames[0], frames[0] + len(frames))), (parts, count)


def test_a_failure_inside_a_video_goes_to_the_shard_of_the_frame_it_stopped_at():
    owner = Ownership(Shard(1, 2))
    owner.start_video(Path("v.mp4"), 400)  # pieces of 200: frames 0-199 shard 0, 200-399 shard 1
    assert not owner.takes(Item("v_frame0199", Path("v.mp4"), frame=199))
    assert owner.takes(Item("v", Path("v.mp4")))  # reading stopped after frame 199: frame 200's piece
    owner.start_video(Path("bad.mp4"), None)  # a video that cannot be indexed: one unit (unit 2: shard 0)
    assert not owner.takes(Item("bad", Path("bad.mp4")))
    assert owner.takes(Item("p", Path("p.png")))  # unit 3


# -- decoding only the pieces ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("piece-videos")
    return {name: make_gop_video(folder / name, 60, *VIDEOS[name][:2], pix_fmt=VIDEOS[name][2]) for name in VIDEOS}


@pytest.mark.parametrize("name", sorted(VIDEOS))
def test_runs_of_needed_frames_apart_come_with_the_pixels_of_a_full_read(videos, name, monkeypatch):
    path = videos[name]
    local = dict(read_video_frames(path, 1))
    runs = lambda i: i < 5 or 24 <= i < 30 or 50 <= i < 53  # noqa: E731 (three runs, two keyframe groups apart)
    seeks, converted = [], []
    decoded = _counting_decoder(monkeypatch, seeks)
    real_rgb = images.frame_rgb
    monkeypatch.setattr(images, "frame_rgb", lambda frame, path, i: converted.append(i) or real_rgb(frame, path, i))
    items = list(expand_inputs([path], 1, needed=lambda item, k: runs(item.frame)))
    if video_resume.index_video(path).seekable:
        # a seek per run (an MPEG program stream's may land late: then it decodes on), not frames 0-52 all
        assert len(seeks) == (2 if "program-stream" in name else 3) and len(decoded) < 53, (seeks, len(decoded))
    else:  # decoded from the start, counted, up to frame 52; only the runs converted
        assert seeks == [] and converted == [i for i in range(60) if runs(i)]
    assert [item.frame for item in items] == sorted(local)
    for item in items:
        if runs(item.frame):
            assert item.error is None and np.array_equal(item.pixels, local[item.frame]), item.frame
        else:
            assert item.pixels is None and item.error is None


@pytest.mark.parametrize("name", ["h264-bframes.mp4", "mpeg2-program-stream.mpg", "vp9.webm"])
@pytest.mark.parametrize("timed", [True, False])
def test_a_video_that_cannot_seek_is_counted_up_to_the_last_needed_frame(videos, name, timed, monkeypatch):
    import dataclasses

    path = videos[name]
    local = dict(read_video_frames(path, 2))
    index = video_resume.index_video(path)
    unseekable = dataclasses.replace(index, seekable=False, timed=timed)
    monkeypatch.setattr(video_resume, "index_video", lambda p: unseekable)
    converted = []
    real_rgb = images.frame_rgb
    monkeypatch.setattr(images, "frame_rgb", lambda frame, p, i: converted.append(i) or real_rgb(frame, p, i))
    for module in (video_resume, video_segments):
        monkeypatch.setattr(module, "frames_from_keyframe", lambda *a: pytest.fail("seeks"))
    wanted = lambda i: 10 <= i < 20 or i == 40  # noqa: E731
    items = list(expand_inputs([path], 2, needed=lambda item, k: wanted(item.frame)))
    assert [item.frame for item in items] == sorted(local)
    for item in items:
        assert item.error is None
        assert np.array_equal(item.pixels, local[item.frame]) if wanted(item.frame) else item.pixels is None
    assert converted == [i for i in sorted(local) if wanted(i)]  # nothing else converted, nothing after frame 40


@pytest.mark.parametrize("name", sorted(VIDEOS))
def test_a_seek_starts_at_the_keyframe_before_the_first_needed_frame(videos, name, monkeypatch):
    index = video_resume.index_video(videos[name])
    if not index.seekable or index.keyframes.shape[0] < 3:
        pytest.skip("decoded from the start")
    decoded = _counting_decoder(monkeypatch)
    first = int(np.searchsorted(index.pts, index.keyframes[2])) + 1  # just after the third keyframe
    keyframe = index.keyframes[np.searchsorted(index.keyframes, index.pts[first], side="right") - 1]
    items = list(expand_inputs([videos[name]], 1, needed=lambda item, k: item.frame == first))
    assert [item.frame for item in items if item.pixels is not None] == [first], name
    if "program-stream" in name:  # its seeks land late: counted from the start, only the needed frame converted
        assert decoded == []
    else:
        assert decoded[0] == int(keyframe), name  # not a group early (MP4 seeking by decoding time)


def _counting_decoder(monkeypatch, seeks=None):
    """Count the frames decoded on the resumed path (and in `seeks`, the seeks that landed)."""
    decoded = []
    real = video_resume.frames_from_keyframe

    def counting(*args):
        frames = real(*args)
        if frames is None:
            return None
        if seeks is not None:
            seeks.append(args[1])

        def counted():
            for frame in frames:
                decoded.append(frame[0])
                yield frame

        return counted()

    for module in (video_resume, video_segments):  # (a seek from the start, or to a keyframe)
        monkeypatch.setattr(module, "frames_from_keyframe", counting)
    return decoded


def _runner(tmp_path, inputs, shard, save="codes", **options):
    from decaenv.runtime.pipeline import Reconstructor

    opts = ReconstructOptions(inputs=list(inputs), out_dir=tmp_path / "out", shard=shard, save=save, **options)
    return Reconstructor(opts, lazy=True)


def _my_items(runner):
    return [(name, item) for name, item in runner._my_items(NameRegistry(quiet=True))]


@pytest.mark.parametrize("step", [1, 3])
def test_shards_of_photos_and_videos_take_every_item_once_and_decode_only_their_pieces(tmp_path, monkeypatch, step):
    long = make_gop_video(tmp_path / "long.mp4", 600, options={"g": "25", "bf": "2"})
    short = make_gop_video(tmp_path / "short.mkv", 40, options={"g": "10"})
    for k in range(3):
        Image.fromarray(np.full((16, 16, 3), 40 * k, np.uint8)).save(tmp_path / f"p{k}.png")
    inputs = [tmp_path / "p0.png", long, tmp_path / "p1.png", short, tmp_path / "p2.png"]
    whole = [(name, item) for name, item in _my_items(_runner(tmp_path, inputs, None, sample_step=step))]
    pixels = {name: item.pixels for name, item in whole}
    decoded = _counting_decoder(monkeypatch)
    taken, per_shard, spans_of = [], [], []
    for k in range(3):
        runner = _runner(tmp_path, inputs, Shard(k, 3), sample_step=step)
        before = len(decoded)
        mine = _my_items(runner)
        per_shard.append(len(decoded) - before)
        spans_of.append(_spans(mine))
        assert runner.expected_items() == len(mine)  # the progress bar's count
        for name, item in mine:
            assert item.pixels is None or np.array_equal(item.pixels, pixels[name]), name
            assert (item.pixels is None) == (item.frame is None), name  # frames decoded; pictures read later
        taken += [name for name, _ in mine]
    assert sorted(taken) == sorted(name for name, _ in whole)
    # each shard decodes the frames its pieces span, from the keyframe before each (x264 puts one about every 25
    # frames; a seek may land one group early), not the whole videos
    for k, (decoded_here, spans) in enumerate(zip(per_shard, spans_of)):
        assert decoded_here <= sum(span + 2 * 25 for span in spans.values()), (k, decoded_here, spans)
    assert sum(per_shard) <= 640 + 3 * 2 * 25, per_shard


def _spans(items):
    """{video: frames from its first taken frame to its last}."""
    frames = {}
    for _, item in items:
        if item.frame is not None:
            frames.setdefault(item.source, []).append(item.frame)
    return {source: max(f) - min(f) + 1 for source, f in frames.items()}


def test_a_shard_does_not_read_the_videos_it_owns_no_piece_of(tmp_path, monkeypatch):
    clips = [make_gop_video(tmp_path / f"clip{k}.mp4", 40, options={"g": "10"}) for k in range(3)]
    webm = make_gop_video(tmp_path / "clip3.webm", 40, "libvpx-vp9", {"g": "10"})  # declares no frame count
    (tmp_path / "photos").mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "photos" / "clip0.png")  # named as clip0
    inputs = [*clips, webm, tmp_path / "photos"]
    whole = [name for name, _ in _my_items(_runner(tmp_path, inputs, None))]
    opened = []
    real = video_segments._index_video
    monkeypatch.setattr(video_segments, "_index_video", lambda p: opened.append(Path(p).name) or real(p))
    taken = []
    for k in range(3):
        video_segments._index_video_of.cache_clear()
        opened.clear()
        mine = _my_items(_runner(tmp_path, inputs, Shard(k, 3)))
        taken += [name for name, _ in mine]
        # 40 frames: one piece each (units 0-3 → shards 0, 1, 2, 0); the webm is indexed by all to count its frames
        owned = {0: {"clip0.mp4"}, 1: {"clip1.mp4"}, 2: {"clip2.mp4"}}[k]
        assert set(opened) - {"clip3.webm"} == owned and "clip3.webm" in opened, (k, opened)
    # the photo is clip0_2 in every shard: one that skips clip0 unread still holds its name
    assert sorted(taken) == sorted(whole) and len(whole) == 161 and "clip0_2" in whole


# -- a split started by an earlier decaenv --------------------------------------------------------------------------
def _table(path, frames, split=None):
    from decaenv.runtime.table import TableWriter

    writer = TableWriter(path, split=split)
    rows = [
        {"name": f"v_frame{f:04d}" if f >= 0 else "p", "source": "x", "frame": f, "status": "failed"} for f in frames
    ]
    writer.add(rows)
    writer.close()


def test_a_split_started_before_pieces_is_continued_one_frame_at_a_time(tmp_path, caplog):
    pytest.importorskip("pyarrow")
    from decaenv.runtime.table import split_in

    out = tmp_path / "out"
    out.mkdir()
    assert split_in(out, 2) is None
    _table(out / "codes-0-of-2.parquet", [-1])  # pictures only: either way deals them alike
    assert split_in(out, 2) is None
    _table(out / "codes-0-of-3.parquet", [0, 3])  # an earlier decaenv's 3-way split, with video frames
    assert split_in(out, 3) == LEGACY_SPLIT and split_in(out, 2) is None
    with caplog.at_level(logging.WARNING, logger="decaenv"):
        runner = _runner(tmp_path, [tmp_path], Shard(1, 3), save="table")
    runner.table.close()
    assert runner.options.shard.split == LEGACY_SPLIT and "earlier decaenv" in caplog.text
    fresh = _runner(tmp_path, [tmp_path], Shard(1, 2), save="table")
    fresh.table.add([{"name": "q", "source": "x", "frame": 0, "status": "failed"}])
    fresh.table.close()
    assert fresh.options.shard.split == PIECES_SPLIT and split_in(out, 2) == PIECES_SPLIT  # marked
    for split in (PIECES_SPLIT, LEGACY_SPLIT):  # a marked table says which, whatever its rows
        (tmp_path / split).mkdir()
        _table(tmp_path / split / "codes-0-of-2.parquet", [-1], split=split)
        assert split_in(tmp_path / split, 2) == split


# -- end to end ---------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_shards_of_a_video_write_the_rows_of_the_whole_run(tmp_path, reconstruct_data_dir, monkeypatch):
    pytest.importorskip("pyarrow")
    import skimage.data

    import decaenv.runtime.shard as shard_module
    from decaenv.cli import main
    from decaenv.runtime.table import read_codes

    face = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((160, 160), Image.Resampling.BOX))
    video = make_gop_video(tmp_path / "clip.mp4", 12, options={"g": "3", "bf": "2"}, picture=face)
    base = ["--data-dir", str(reconstruct_data_dir), "-q", "reconstruct", "-i", str(video), "--save", "table"]
    base += ["--detector", "mtcnn", "--rasterizer", "torch", "--batch-size", "3"]
    assert main([*base, "-o", str(tmp_path / "whole")]) == 0
    monkeypatch.setattr(shard_module, "MIN_PIECE", 2)  # pieces of 12/3 = 4 frames
    for k in range(3):
        assert main([*base, "-o", str(tmp_path / "split"), "--shard", f"{k}/3"]) == 0
        frames = sorted(read_codes(tmp_path / "split" / f"codes-{k}-of-3.parquet")["frame"])
        assert frames == list(range(4 * k, 4 * k + 4))  # one piece each
    whole, split = read_codes(tmp_path / "whole"), read_codes(tmp_path / "split")
    order = np.argsort(whole["name"]), np.argsort(split["name"])
    assert list(whole["name"][order[0]]) == list(split["name"][order[1]])
    got, expected = split["shape"][order[1]], whole["shape"][order[0]]  # (other batches: summation order)
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()


def test_a_task_of_a_large_split_reads_one_tables_schema(tmp_path, monkeypatch):
    pytest.importorskip("pyarrow")
    import decaenv.runtime.table as table

    for k in range(6):
        _table(tmp_path / f"codes-{k}-of-6.parquet", [k], split=PIECES_SPLIT)
    asked = []
    real = table._split_mark
    monkeypatch.setattr(table, "_split_mark", lambda path: asked.append(path.name) or real(path))
    assert table.split_in(tmp_path, 6, first=tmp_path / "codes-4-of-6.parquet") == PIECES_SPLIT
    assert asked == ["codes-4-of-6.parquet"]


def test_skip_existing_counts_the_rows_of_other_splits_and_reads_none_of_its_own(tmp_path, monkeypatch):
    pytest.importorskip("pyarrow")
    import decaenv.runtime.table as table

    def write(name, rows):
        writer = table.TableWriter(tmp_path / name)
        writer.add([{"name": n, "source": "x", "frame": -1, "status": status} for n, status in rows])
        writer.close()

    write("codes-0-of-4.parquet", [("a", "ok"), ("b", "failed")])  # an earlier 4-way split of the job
    write("codes.parquet", [("c", "ok")])  # and an unsharded run
    write("codes-1-of-2.parquet", [("d", "ok")])  # this split's other shard
    journal_only = table.TableWriter(tmp_path / "codes-3-of-4.parquet")
    journal_only.add([{"name": "e", "source": "x", "frame": -1, "status": "ok"}])  # still running (or killed)
    journal_only._sink.close()
    read = []
    real = table._with_journal
    monkeypatch.setattr(
        table, "_with_journal", lambda pa, pq, path, columns=None: read.append(path.name) or real(pa, pq, path, columns)
    )
    writer = table.TableWriter(tmp_path / "codes-0-of-2.parquet")
    writer.add([{"name": "f", "source": "x", "frame": -1, "status": "ok"}])
    writer.close()
    assert writer.done_names() == {"a", "c", "e", "f"}  # "b" failed: tried again; "d" is the other shard's
    assert "codes-1-of-2.parquet" not in read
    whole = table.TableWriter(tmp_path / "codes.parquet")
    assert whole.done_names() == {"a", "c", "d", "e", "f"}
