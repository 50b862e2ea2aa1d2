"""The CUDA kernel on a GPU (markers `cuda` and `ext`; skipped without a CUDA device).

Built once per session by the `built_extension` fixture (the CUDA variant, which also holds the CPU
kernels). The CUDA kernel must equal the reference and, compiled without fused multiply-adds, the CPU
kernel bit for bit; it must give the same answer on every run (no lost-write races) and at batch 64.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from decaenv.runtime.rasterizer import interpolate, rasterize  # noqa: E402
from decaenv.runtime.rasterizer.api import pixel_centres, prepare_face_vertices  # noqa: E402
from decaenv.runtime.rasterizer.reference import rasterize_reference  # noqa: E402
from decaenv.runtime.rasterizer.vectorized import rasterize_vectorized  # noqa: E402
from decaenv.runtime.rasterizer.verify import compare, random_face_vertices  # noqa: E402
from decaenv.synthetic.heads import deca_head_face_vertices  # noqa: E402

pytestmark = [pytest.mark.cuda, pytest.mark.ext]


def _inputs(fv, h, w, device="cuda"):
    fv = prepare_face_vertices(fv, h, w)
    xs, ys = pixel_centres(h, w)
    return fv.to(device), xs.to(device), ys.to(device)


@pytest.mark.parametrize("h,w", [(80, 80), (72, 104)])
def test_cuda_equals_reference_on_random_flame_sized_meshes(cuda_op, h, w):
    fv, xs, ys = _inputs(random_face_vertices(9976, batch=2, seed=11), h, w)
    expected = rasterize_reference(fv.cpu(), xs.cpu(), ys.cpu())
    diff = compare(expected, cuda_op(fv, xs, ys))
    assert diff.within(1e-5), diff.describe()


def test_cuda_equals_reference_on_the_head(cuda_op):
    fv, xs, ys = _inputs(deca_head_face_vertices(batch=1, scale=9.0), 96, 128)
    diff = compare(rasterize_reference(fv.cpu(), xs.cpu(), ys.cpu()), cuda_op(fv, xs, ys))
    assert diff.within(1e-5), diff.describe()


@pytest.mark.parametrize("h,w", [(224, 224), (1024, 1024), (150, 310)])
def test_cuda_equals_the_cpu_kernel_bit_for_bit(cuda_op, h, w):
    fv, xs, ys = _inputs(deca_head_face_vertices(batch=4, jitter=0.5, seed=2), h, w)
    assert compare(cuda_op(fv.cpu(), xs.cpu(), ys.cpu()), cuda_op(fv, xs, ys)).identical


def test_cuda_is_deterministic_across_runs(cuda_op):
    # Many faces on few pixels: heavy contention on the atomics, exact depth ties included.
    fv, xs, ys = _inputs(random_face_vertices(9976, batch=3, seed=12), 32, 32)
    first = cuda_op(fv, xs, ys)
    for _ in range(5):
        again = cuda_op(fv, xs, ys)
        assert all(torch.equal(a, b) for a, b in zip(first, again))


def test_batch_64_equals_single_images_and_the_cpu_kernel(cuda_op):
    fv, xs, ys = _inputs(deca_head_face_vertices(batch=64, jitter=0.6, seed=3), 224, 224)
    batched = cuda_op(fv, xs, ys)
    for b in (0, 17, 63):
        single = cuda_op(fv[b:b + 1].contiguous(), xs, ys)
        assert all(torch.equal(x[b:b + 1], y) for x, y in zip(batched, single))
    assert compare(cuda_op(fv.cpu(), xs.cpu(), ys.cpu()), batched).identical


def test_torch_backend_on_cuda_equals_the_cuda_kernel(cuda_op):
    fv, xs, ys = _inputs(deca_head_face_vertices(batch=2, jitter=0.3), 224, 224)
    diff = compare(cuda_op(fv, xs, ys), rasterize_vectorized(fv, xs, ys))
    assert diff.within(1e-5), diff.describe()


def test_auto_picks_cuda_and_outputs_stay_on_the_device(cuda_op):
    fv = deca_head_face_vertices(batch=2).cuda()
    frags = rasterize(fv, 224, 224)
    assert frags.backend == "cuda" and frags.pix_to_face.is_cuda and frags.bary.is_cuda
    image = interpolate(frags, fv)
    assert image.is_cuda and image.shape == (2, 4, 224, 224)


def test_non_default_device_and_stream(cuda_op):
    fv, xs, ys = _inputs(deca_head_face_vertices(batch=1), 64, 64)
    expected = cuda_op(fv, xs, ys)
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        got = cuda_op(fv, xs, ys)
    stream.synchronize()
    assert all(torch.equal(a, b) for a, b in zip(expected, got))
    if torch.cuda.device_count() > 1:
        other = [t.to("cuda:1") for t in (fv, xs, ys)]
        moved = cuda_op(*other)
        assert moved[0].device == other[0].device
        assert all(torch.equal(a, b.to(a.device)) for a, b in zip(expected, moved))
