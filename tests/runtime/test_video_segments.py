"""Video segments (`decaenv.runtime.video_segments`, what `--engine ray` ships to its workers): every segment
decoded on its own, seeking to its keyframe, gives exactly the frames (indices and pixels) a local run reads
from the start, over containers and codecs with B-frames, open groups of pictures and unreliable seeking."""

import numpy as np
import pytest

from decaenv.errors import InputError
from decaenv.runtime.images import read_video_frames
from decaenv.runtime.video_segments import Segment, decode_segment, index_video, plan_segments, wanted_frames
from tests._support.media import make_gop_video, make_video

pytest.importorskip("av")

VIDEOS = {
    "h264-bframes.mp4": ("libx264", {"g": "12", "bf": "3"}, "yuv420p"),
    "h264-open-gop.mkv": ("libx264", {"g": "10", "bf": "2", "x264-params": "open-gop=1"}, "yuv420p"),
    "mpeg4-bframes.avi": ("mpeg4", {"g": "8", "bf": "2"}, "yuv420p"),
    "vp9.webm": ("libvpx-vp9", {"g": "10"}, "yuv420p"),
    "mjpeg.avi": ("mjpeg", {}, "yuvj420p"),
    "h264.mov": ("libx264", {"g": "7"}, "yuv420p"),
    "mpeg2-program-stream.mpg": ("mpeg2video", {"g": "9", "bf": "2"}, "yuv420p"),  # no index: seeks approximate
}


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    return {
        name: make_gop_video(folder / name, 50, codec, options, pix_fmt=pix)
        for name, (codec, options, pix) in VIDEOS.items()
    }


def _decode_all(path, segments):
    got = {}
    for segment in segments:
        for index, rgb in decode_segment(path, segment):
            assert index in segment.frames and index not in got
            got[index] = rgb
    return got


@pytest.mark.parametrize("name", sorted(VIDEOS))
@pytest.mark.parametrize("step, frames", [(1, 6), (3, 4), (1, 50)])
def test_segments_decoded_apart_equal_a_local_read(videos, name, step, frames):
    path = videos[name]
    local = dict(read_video_frames(path, step))
    index = index_video(path)
    assert index is not None and index.frames == 50
    assert index.seekable  # (a seek that lands late anyway is caught by the worker: the test after next)
    segments = plan_segments(index, wanted_frames(index, step, set()), frames)
    assert sorted(f for s in segments for f in s.frames) == sorted(local)
    if index.seekable and frames < 50:
        assert len(segments) > 1 and any(s.seek not in (None, index.seek_at[0]) for s in segments)
    got = _decode_all(path, segments)
    assert sorted(got) == sorted(local)
    for i, rgb in local.items():
        assert np.array_equal(got[i], rgb), i


def test_segments_end_on_keyframe_groups_and_cut_only_long_groups(videos):
    index = index_video(videos["h264-bframes.mp4"])  # a keyframe every 12 frames
    keys = list(index.keyframes)
    starts = [int(np.searchsorted(index.pts, k)) for k in keys]
    assert starts[:4] == [0, 12, 24, 36]
    segments = plan_segments(index, range(50), 20)
    # each ends where a group ends (20 frames would cut one), the last two groups (12 + 2 frames) together
    assert [s.frames[0] for s in segments] == [0, 12, 24, 36] and all(len(s.frames) <= 20 for s in segments)
    for segment in segments:
        group = keys.index(max(k for k in keys if k <= index.pts[segment.frames[0]]))
        assert segment.seek == index.seek_at[group]
    pieces = plan_segments(index, range(12), 5)  # one group of 12, longer than 5: cut, each from its keyframe
    assert [len(s.frames) for s in pieces] == [5, 5, 2] and {s.seek for s in pieces} == {index.seek_at[0]}


def test_skipped_frames_are_left_out_and_missing_ones_are_not_invented(videos):
    path = videos["h264-bframes.mp4"]
    index = index_video(path)
    wanted = wanted_frames(index, 2, done={0, 2, 30})
    assert 0 not in wanted and 30 not in wanted and 4 in wanted
    ghost = Segment(frames=(3, 99), pts=(int(index.pts[3]), 10**12), seek=int(index.seek_at[0]))
    assert [i for i, _ in decode_segment(path, ghost)] == [3]  # frame 99 does not exist: not yielded


def test_a_seek_that_lands_late_falls_back_to_counting(videos):
    path = videos["mpeg2-program-stream.mpg"]
    index = index_video(path)
    late = Segment(frames=(20, 21), pts=tuple(int(p) for p in index.pts[20:22]), seek=int(index.seek_at[-1]))
    local = dict(read_video_frames(path))
    got = dict(decode_segment(path, late))
    assert sorted(got) == [20, 21] and all(np.array_equal(got[i], local[i]) for i in got)


def test_bad_videos_are_one_line_input_errors(tmp_path):
    empty = make_video(tmp_path / "empty.mp4", 0)
    with pytest.raises(InputError, match="no video stream|no frames"):
        index_video(empty)
    (tmp_path / "text.mp4").write_text("not a video")
    with pytest.raises(InputError, match="cannot be decoded"):
        index_video(tmp_path / "text.mp4")
    with pytest.raises(InputError, match="missing"):
        index_video(tmp_path / "absent.mp4")


def test_a_video_without_timestamps_is_one_segment_read_by_counting(videos):
    from dataclasses import replace

    path = videos["h264-bframes.mp4"]
    index = index_video(path)
    counted = replace(index, pts=np.arange(50), timed=False)
    assert plan_segments(counted, [4, 1, 2], 2) == [Segment(frames=(1, 2, 4))]
    local = dict(read_video_frames(path))
    got = dict(decode_segment(path, Segment(frames=(1, 2, 4))))
    assert sorted(got) == [1, 2, 4] and all(np.array_equal(got[i], local[i]) for i in got)


@pytest.mark.parametrize("name", ["h264-bframes.mp4", "h264.mov", "mpeg4-bframes.avi"])
def test_a_segment_decodes_from_its_own_keyframe(videos, name, monkeypatch):
    import decaenv.runtime.video_segments as video_segments

    index = index_video(videos[name])
    segment = next(s for s in plan_segments(index, list(range(index.frames)), 5) if s.keyframe == index.keyframes[2])
    firsts = []
    real = video_segments.frames_from_keyframe

    def recording(path, seek, first_pts):
        decoded = real(path, seek, first_pts)
        if decoded is None:
            return None

        def first_noted():
            for k, frame in enumerate(decoded):
                if k == 0:
                    firsts.append(frame[0])
                yield frame

        return first_noted()

    monkeypatch.setattr(video_segments, "frames_from_keyframe", recording)
    got = dict(decode_segment(videos[name], segment))
    assert sorted(got) == list(segment.frames)
    assert firsts == [segment.keyframe]  # MP4/MOV seeking by decoding time started a whole group early
