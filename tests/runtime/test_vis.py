"""The visualisation strip and the landmark panels against plain references (decaenv.runtime.vis): the strip is
cat → ×255 → clamp → uint8, the panels are DECA's drawing (a white line between consecutive points of a facial
part, a dot per point, green or red by visibility) on the whole image."""

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from decaenv.runtime.vis import GREEN, PART_ENDS, RED, WHITE, make_grid, tensor_vis_landmarks, visualize_grid


def _panels(seed: int, sizes) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {f"p{k}": torch.rand(size, generator=generator) * 1.4 - 0.2 for k, size in enumerate(sizes)}


def _reference_strip(visdict: dict, size: int, dim: int) -> np.ndarray:
    panels = []
    for value in visdict.values():
        _, _, h, w = value.shape
        new_h, new_w = (size, int(w * size / h)) if dim == 2 else (int(h * size / w), size)
        panels.append(make_grid(torch.nn.functional.interpolate(value, [new_h, new_w])))
    grid = torch.cat(panels, dim)
    return (grid * 255.0).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


@pytest.mark.parametrize("dim", [1, 2])
def test_strip_equals_cat_scale_clamp_truncate(dim):
    same = _panels(0, [(1, 3, 224, 224)] * 5)
    assert np.array_equal(visualize_grid(same, dim=dim), _reference_strip(same, 224, dim))
    for batch in (1, 3):  # panels to resize; several images per panel are gridded
        mixed = _panels(batch, [(batch, 3, 100, 100), (batch, 3, 64, 64), (batch, 3, 50, 80), (batch, 3, 80, 50)])
        got = visualize_grid(mixed, size=64, dim=dim)
        assert got.dtype == np.uint8 and got.flags.c_contiguous
        assert np.array_equal(got, _reference_strip(mixed, 64, dim))


def test_strip_of_panels_that_do_not_fit_is_an_error():
    with pytest.raises(RuntimeError, match="panels of different"):
        visualize_grid(_panels(2, [(1, 3, 32, 32), (2, 3, 32, 32)]), size=32, dim=2)


def _reference_panel(image: np.ndarray, points: np.ndarray, radius: int) -> np.ndarray:
    """Segment by segment on a canvas of the whole image."""
    height, width = image.shape[1:]
    canvas = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    pixels = np.nan_to_num(points[:, :2], nan=-1e6, posinf=1e6, neginf=-1e6).astype(np.int64)
    for i in range(len(points) - 1):
        if i not in PART_ENDS:
            draw.line([tuple(pixels[i]), tuple(pixels[i + 1])], fill=WHITE + (255,), width=radius)
    for i, (x, y) in enumerate(pixels):
        colour = GREEN if points.shape[1] < 4 or points[i, 3] > 0.5 else RED
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour + (255,))
    drawn = np.asarray(canvas)
    colours = drawn[..., :3].transpose(2, 0, 1).astype(np.float32) / 255.0
    return np.where(drawn[..., 3][None] > 0, colours, image)


@pytest.mark.parametrize("columns", [2, 3, 4])
def test_landmark_panels_equal_drawing_on_the_whole_image(columns):
    generator = torch.Generator().manual_seed(columns)
    images = torch.rand(4, 3, 224, 200, generator=generator)
    landmarks = (torch.rand(4, 68, columns, generator=generator) - 0.5) * 1.6  # some points off the image
    landmarks[1, 10:20, :2] *= 0.05  # a crowded part
    landmarks[2, 5, 0] = float("nan")
    landmarks[3, :, :2] = landmarks[3, :, :2] * 0.1 + 1.05  # every point past the right and bottom edges
    before = landmarks.clone()
    got = tensor_vis_landmarks(images, landmarks)
    assert torch.allclose(landmarks, before, equal_nan=True, rtol=0, atol=0)
    radius = max(int(min(224, 200) / 200), 1)
    for b in range(4):
        points = landmarks[b].numpy().copy()
        points[:, 0] = points[:, 0] * 200 / 2 + 200 / 2
        points[:, 1] = points[:, 1] * 224 / 2 + 224 / 2
        expected = _reference_panel(images[b].numpy(), points, radius)
        assert np.array_equal(got[b].numpy(), expected), b
    assert not torch.equal(got[0], images[0])  # something was drawn
    large = torch.rand(1, 3, 800, 600, generator=generator)  # radius 3: wide lines and larger dots
    marks = (torch.rand(1, 68, 4, generator=generator) - 0.5) * 1.2
    points = marks[0].numpy().copy()
    points[:, 0] = points[:, 0] * 300 + 300
    points[:, 1] = points[:, 1] * 400 + 400
    assert np.array_equal(tensor_vis_landmarks(large, marks)[0].numpy(), _reference_panel(large[0].numpy(), points, 3))
