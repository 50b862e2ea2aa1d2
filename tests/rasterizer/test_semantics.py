"""Hand-built triangles with known coverage, run on every backend (spec §6.2 semantics).

Expected coverage is computed with exact rational arithmetic (fractions) from the documented rule:
pixel (i, j) samples x = -1 + (2j + 1) / W, y = -1 + (2i + 1) / H and is covered when all three
barycentrics are > 0. Coordinates are dyadic, so float32 evaluates them exactly too.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

torch = pytest.importorskip("torch")

from decaenv.errors import UsageError
from decaenv.runtime.rasterizer import interpolate, pixel_centres, rasterize

BACKENDS = [
    "reference",
    "torch",
    pytest.param("cpu", marks=pytest.mark.ext),
    pytest.param("cuda", marks=[pytest.mark.ext, pytest.mark.cuda]),
]


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    if request.param == "cpu":
        request.getfixturevalue("cpu_op")
    if request.param == "cuda":
        request.getfixturevalue("cuda_op")
    return request.param


def run(tris, h, w, backend):
    """Rasterize a list of meshes (each a list of ((x, y, z), (x, y, z), (x, y, z)))."""
    fv = torch.tensor(tris, dtype=torch.float32).reshape(len(tris), -1, 3, 3)
    if backend == "cuda":
        fv = fv.cuda()
    frags = rasterize(fv, h, w, backend=backend)
    assert frags.backend == backend
    return frags.pix_to_face.cpu(), frags.bary.cpu(), frags.zbuf.cpu()


def edge(p, a, b):
    return (p[0] - a[0]) * (b[1] - a[1]) - (p[1] - a[1]) * (b[0] - a[0])


def exact_barycentrics(tri, h, w, i, j):
    p = (Fraction(2 * j + 1, w) - 1, Fraction(2 * i + 1, h) - 1)
    v0, v1, v2 = [(Fraction(v[0]), Fraction(v[1])) for v in tri]
    area = edge(v2, v0, v1)
    return edge(p, v1, v2) / area, edge(p, v2, v0) / area, edge(p, v0, v1) / area


def exact_mask(tri, h, w):
    return torch.tensor([[all(b > 0 for b in exact_barycentrics(tri, h, w, i, j)) for j in range(w)] for i in range(h)])


ASYMMETRIC = ((-1.0, -1.0, 10.0), (1.0, -1.0, 10.0), (-1.0, 0.5, 10.0))  # right angle at the top left


def test_pixel_centres_follow_deca_convention():
    xs, ys = pixel_centres(4, 8)  # h=4, w=8: the long axis (x) is scaled by 2 like DECA's wrapper
    assert xs.tolist() == [2 * (-1 + (2 * j + 1) / 8) for j in range(8)]
    assert ys.tolist() == [-1 + (2 * i + 1) / 4 for i in range(4)]
    xs, ys = pixel_centres(224, 224)
    expected = torch.tensor([-1 + (2 * j + 1) / 224 for j in range(224)], dtype=torch.float64)
    assert torch.allclose(xs.double(), expected, atol=1e-7, rtol=0)
    assert torch.equal(xs, ys)
    assert bool((xs[1:] > xs[:-1]).all())


@pytest.mark.parametrize("h,w", [(8, 8), (6, 10), (12, 4)])
def test_asymmetric_triangle_orientation_and_coverage(backend, h, w):
    p2f, bary, zbuf = run([[ASYMMETRIC]], h, w, backend)
    mask = p2f[0] == 0
    assert torch.equal(mask, exact_mask(ASYMMETRIC, h, w))
    assert bool(mask[0, 0]) and not bool(mask[-1, -1])  # y points down, x right: row 0 is the top
    assert mask[0].sum() > mask[h // 2].sum() and mask[:, 0].sum() > mask[:, -1].sum()
    assert torch.equal(p2f[0][~mask], torch.full_like(p2f[0][~mask], -1))
    assert torch.allclose(zbuf[0][mask], torch.tensor(10.0), atol=1e-5) and bool((zbuf[0][~mask] == -1).all())
    assert bool((bary[0][~mask] == 0).all())


def test_barycentrics_are_screen_space_and_ordered_like_the_vertices(backend):
    tri = ((-0.9, -0.7, 9.0), (0.8, -0.5, 10.0), (-0.2, 0.9, 12.0))
    h, w = 16, 12
    p2f, bary, zbuf = run([[tri]], h, w, backend)
    for i, j in [(3, 3), (5, 6), (9, 4)]:
        assert int(p2f[0, i, j]) == 0
        expected = [float(b) for b in exact_barycentrics(tri, h, w, i, j)]
        assert bary[0, i, j].tolist() == pytest.approx(expected, abs=1e-6)
        z = sum(b * v[2] for b, v in zip(expected, tri))  # linear, not perspective-corrected
        assert float(zbuf[0, i, j]) == pytest.approx(z, abs=1e-5)


def test_shared_edge_splits_pixels_without_gaps_or_overlap(backend):
    # A quad split along a diagonal that passes through no pixel centre: every pixel has one owner.
    a, b, c, d = (-1.0, -1.0, 10.0), (1.0, -1.0, 10.0), (1.0, 1.0, 10.0), (-1.0, 1.0, 10.0)
    h, w = 5, 8
    p2f, _, _ = run([[(a, b, c), (a, c, d)]], h, w, backend)
    assert bool((p2f[0] >= 0).all())
    for i in range(h):
        for j in range(w):
            x, y = -1 + (2 * j + 1) / w, -1 + (2 * i + 1) / h
            assert int(p2f[0, i, j]) == (0 if x > y else 1)


def test_pixel_centre_exactly_on_a_shared_edge_is_empty(backend):
    # Square image: the diagonal x = y runs through the centres of the diagonal pixels; the strict
    # inside test gives those centres to neither triangle (the documented silhouette rule).
    a, b, c, d = (-1.0, -1.0, 10.0), (1.0, -1.0, 10.0), (1.0, 1.0, 10.0), (-1.0, 1.0, 10.0)
    p2f, _, _ = run([[(a, b, c), (a, c, d)]], 8, 8, backend)
    diagonal = torch.eye(8, dtype=torch.bool)
    assert bool((p2f[0][diagonal] == -1).all())
    assert bool((p2f[0][~diagonal] >= 0).all())
    assert int((p2f[0] == 0).sum()) == int((p2f[0] == 1).sum()) == 28


def test_nearest_face_wins_whatever_the_order(backend):
    near = ((-1.0, -1.0, 9.0), (1.0, -1.0, 9.0), (-1.0, 1.0, 9.0))
    far = ((-1.0, -1.0, 11.0), (1.0, -1.0, 11.0), (-1.0, 1.0, 11.0))
    p2f, _, zbuf = run([[far, near], [near, far]], 8, 8, backend)
    mask = exact_mask(near, 8, 8)
    assert bool((p2f[0][mask] == 1).all()) and bool((p2f[1][mask] == 0).all())
    assert torch.allclose(zbuf[:, mask], torch.tensor(9.0), atol=1e-5)


def test_depth_ties_keep_the_lowest_face_index(backend):
    tri = ((-1.0, -1.0, 10.0), (1.0, -1.0, 10.0), (-1.0, 1.0, 10.0))
    other = ((1.0, 1.0, 10.0), (-1.0, 1.0, 10.0), (1.0, -1.0, 10.0))  # same plane, overlaps at the centre
    p2f, _, _ = run([[tri, other, tri]], 8, 8, backend)
    first = exact_mask(tri, 8, 8)
    assert bool((p2f[0][first] == 0).all())  # never the later copy (index 2), nor face 1 where they overlap
    assert bool((p2f[0][~first & exact_mask(other, 8, 8)] == 1).all())
    assert int((p2f[0] == 2).sum()) == 0


def test_faces_behind_the_camera_and_negative_depths_are_skipped(backend):
    behind = ((-1.0, -1.0, -1.0), (1.0, -1.0, -2.0), (-1.0, 1.0, -0.5))
    crossing = ((-1.0, -1.0, -1.0), (1.0, -1.0, 1.0), (-1.0, 1.0, -1.0))  # depth z = x
    p2f, _, zbuf = run([[behind], [crossing]], 8, 8, backend)
    assert bool((p2f[0] == -1).all())
    covered = p2f[1] == 0
    assert bool(covered.any()) and bool((zbuf[1][covered] >= 0).all())
    xs, _ = pixel_centres(8, 8)
    expected = exact_mask(crossing, 8, 8) & (xs >= 0)[None, :].expand(8, 8)
    assert torch.equal(covered, expected)


def test_degenerate_and_non_finite_faces_are_skipped(backend):
    line = ((-1.0, -1.0, 10.0), (0.0, 0.0, 10.0), (1.0, 1.0, 10.0))
    tiny = ((0.0, 0.0, 10.0), (1e-4, 0.0, 10.0), (0.0, 5e-5, 10.0))  # |area| = 5e-9 <= 1e-8
    nan = ((float("nan"), -1.0, 10.0), (1.0, -1.0, 10.0), (-1.0, 1.0, 10.0))
    inf = ((float("inf"), -1.0, 10.0), (1.0, -1.0, 10.0), (-1.0, 1.0, 10.0))
    p2f, _, _ = run([[line, tiny, nan, inf]], 8, 8, backend)
    assert bool((p2f == -1).all())


def test_both_windings_cover_the_same_pixels(backend):
    ccw = ((-0.9, -0.8, 10.0), (0.7, -0.6, 10.0), (-0.3, 0.9, 10.0))
    cw = (ccw[0], ccw[2], ccw[1])
    p2f, bary, _ = run([[ccw], [cw]], 10, 10, backend)
    assert torch.equal(p2f[0], p2f[1]) and bool((p2f[0] == 0).any())
    assert torch.allclose(bary[0][..., [0, 2, 1]], bary[1], atol=1e-6)


def test_offscreen_parts_are_clipped_and_batches_are_independent(backend):
    huge = ((-5.0, -5.0, 10.0), (5.0, -5.0, 10.0), (0.0, 8.0, 10.0))
    outside = ((2.0, 2.0, 10.0), (3.0, 2.0, 10.0), (2.0, 3.0, 10.0))
    p2f, _, _ = run([[huge, outside], [outside, huge]], 6, 9, backend)
    assert bool((p2f[0] == 0).all()) and bool((p2f[1] == 1).all())


def test_empty_mesh_gives_empty_fragments(backend):
    fv = torch.zeros((2, 0, 3, 3))
    if backend == "cuda":
        fv = fv.cuda()
    frags = rasterize(fv, 5, 7, backend=backend)
    assert frags.pix_to_face.shape == (2, 5, 7) and bool((frags.pix_to_face == -1).all())
    assert frags.bary.shape == (2, 5, 7, 3) and frags.zbuf.shape == (2, 5, 7)


def test_interpolated_positions_land_on_pixel_centres(backend):
    tri = ((-0.95, -0.9, 9.0), (0.9, -0.7, 10.0), (0.1, 0.95, 11.0))
    h, w = 9, 13
    fv = torch.tensor([[tri]], dtype=torch.float32)
    dev = "cuda" if backend == "cuda" else "cpu"
    frags = rasterize(fv.to(dev), h, w, backend=backend)
    image = interpolate(frags, fv.to(dev)).cpu()  # attributes = the vertex positions themselves
    mask = image[0, 3] == 1
    assert bool(mask.any())
    x = torch.tensor([-1 + (2 * j + 1) / w for j in range(w)])
    y = torch.tensor([-1 + (2 * i + 1) / h for i in range(h)])
    assert torch.allclose(image[0, 0][mask], x.expand(h, w)[mask], atol=1e-6)
    assert torch.allclose(image[0, 1][mask], y[:, None].expand(h, w)[mask], atol=1e-6)


@pytest.mark.parametrize(
    "args, message",
    [
        ((torch.zeros(1, 3, 3), 4, 4), "shape (B, F, 3, 3)"),
        ((torch.zeros(1, 1, 3, 3, dtype=torch.int32), 4, 4), "floating"),
        ((torch.zeros(1, 1, 3, 3), 0, 4), "h must be a positive int"),
        ((torch.zeros(1, 1, 3, 3), 4, 2.5), "w must be a positive int"),
        (([[0.0]], 4, 4), "must be a torch.Tensor"),
    ],
)
def test_bad_arguments_are_one_line_usage_errors(args, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        rasterize(*args)


def test_numpy_and_tensor_sizes_are_accepted():
    np = pytest.importorskip("numpy")
    frags = rasterize(torch.zeros(1, 1, 3, 3), np.int64(4), torch.tensor(6), backend="torch")
    assert frags.pix_to_face.shape == (1, 4, 6)


def test_unknown_backend_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown rasterizer backend 'fast'"):
        rasterize(torch.zeros(1, 1, 3, 3), 4, 4, backend="fast")
