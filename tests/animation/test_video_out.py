"""The MP4 / GIF writers: frame counts, rate, odd sizes, atomicity; read back with PyAV and Pillow."""

import numpy as np
import pytest

from decaenv.errors import DecaenvError
from decaenv.runtime import video_out

av = pytest.importorskip("av")


def _frames(count, h=37, w=50):
    return [np.full((h, w, 3), 20 * k, np.uint8) for k in range(count)]


def test_mp4_frames_rate_and_odd_size_padding(tmp_path):
    path = video_out.write_mp4(tmp_path / "clip.mp4", _frames(7), fps=29.97)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        assert float(stream.average_rate) == pytest.approx(29.97, abs=1e-3)
    assert len(frames) == 7 and frames[0].shape == (38, 50, 3)  # one black row added (yuv420p)
    assert abs(frames[6][:37].astype(float).mean() - 120) < 3 and frames[6][37:].max() < 20
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]  # no temporary left


def test_mp4_refuses_a_frame_of_another_size_and_leaves_nothing(tmp_path):
    with pytest.raises(DecaenvError, match="frame 2 of clip.mp4 is 20×20"):
        video_out.write_mp4(tmp_path / "clip.mp4", _frames(2) + [np.zeros((20, 20, 3), np.uint8)], fps=10)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DecaenvError, match="positive"):
        video_out.Mp4Writer(tmp_path / "x.mp4", fps=0)


def test_gif_frames_scale_and_delay(tmp_path):
    from PIL import Image

    path = video_out.write_gif(tmp_path / "a.gif", _frames(5, 40, 60), fps=10, scale=0.5)
    frames = video_out.read_frames(path)
    assert len(frames) == 5 and frames[0].shape == (20, 30, 3)
    with Image.open(path) as img:
        assert img.info["duration"] == 100 and img.info.get("loop") == 0
