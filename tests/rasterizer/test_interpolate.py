"""`interpolate`: DECA's attribute layout (B, D + 1, H, W), coverage channel, no renormalisation."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from _support.torch_threads import equal_on_thread_counts

from decaenv.errors import UsageError
from decaenv.runtime.rasterizer import Fragments, interpolate, rasterize
from decaenv.synthetic.heads import deca_head_face_vertices


def deca_style_interpolate(pix_to_face, bary, attributes):
    """DECA's own formulation (packed face indices, gather on the flattened batch), written independently."""
    b, f, _, d = attributes.shape
    h, w = pix_to_face.shape[1:]
    packed = torch.where(pix_to_face >= 0, pix_to_face + (torch.arange(b) * f).view(b, 1, 1), pix_to_face)
    mask = packed == -1
    idx = packed.clamp(min=0).view(b * h * w, 1, 1).expand(b * h * w, 3, d)
    values = attributes.reshape(b * f, 3, d).gather(0, idx).view(b, h, w, 3, d)
    values = (bary[..., None] * values).sum(dim=-2)
    values[mask] = 0
    return torch.cat([values.permute(0, 3, 1, 2), (~mask).float()[:, None]], dim=1)


@pytest.fixture(scope="module")
def head():
    fv = deca_head_face_vertices(batch=2, jitter=0.3)
    return fv, rasterize(fv, 64, 48, backend="torch")


def test_matches_deca_formulation(head):
    fv, frags = head
    attrs = torch.randn(2, fv.shape[1], 3, 5, generator=torch.Generator().manual_seed(0))
    out = interpolate(frags, attrs)
    assert out.shape == (2, 6, 64, 48)
    assert torch.equal(out, deca_style_interpolate(frags.pix_to_face, frags.bary, attrs))


def test_mask_channel_and_empty_pixels(head):
    fv, frags = head
    attrs = torch.full((2, fv.shape[1], 3, 2), float("nan"))  # NaN attributes must not leak into empty pixels
    out = interpolate(frags, attrs)
    covered = frags.pix_to_face >= 0
    assert torch.equal(out[:, 2], covered.float())
    assert bool((out[:, :2].permute(0, 2, 3, 1)[~covered] == 0).all())


def test_no_renormalisation_of_interpolated_normals(head):
    fv, frags = head
    normals = torch.nn.functional.normalize(torch.randn(2, fv.shape[1], 3, 3), dim=-1)
    out = interpolate(frags, normals)
    lengths = out[:, :3].norm(dim=1)[frags.pix_to_face >= 0]
    assert float(lengths.max()) <= 1.0 + 1e-6 and float(lengths.min()) < 0.99  # blends are shorter than 1


def test_batch_of_one_broadcasts(head):
    fv, frags = head
    single = Fragments(frags.pix_to_face[:1], frags.bary[:1], frags.zbuf[:1], "torch")
    attrs = torch.randn(3, fv.shape[1], 3, 2)
    out = interpolate(single, attrs)
    assert out.shape == (3, 3, 64, 48)
    assert torch.equal(out[1], interpolate(single, attrs[1:2])[0])
    assert interpolate(frags, attrs[:1]).shape == (2, 3, 64, 48)
    with pytest.raises(UsageError, match="batch sizes differ"):
        interpolate(frags, attrs)


def test_gradient_flows_to_attributes(head):
    fv, frags = head
    attrs = torch.randn(2, fv.shape[1], 3, 4, requires_grad=True)
    interpolate(frags, attrs)[:, :4].sum().backward()
    assert attrs.grad is not None and float(attrs.grad.abs().sum()) > 0


def test_bad_attribute_shapes(head):
    fv, frags = head
    with pytest.raises(UsageError, match=r"\(B, F, 3, D\)"):
        interpolate(frags, torch.zeros(2, fv.shape[1], 4, 2))
    with pytest.raises(UsageError, match="attributes have 10"):
        interpolate(frags, torch.zeros(2, 10, 3, 2))


def test_double_attributes_keep_their_dtype(head):
    fv, frags = head
    out = interpolate(frags, torch.randn(2, fv.shape[1], 3, 2, dtype=torch.float64))
    assert out.dtype == torch.float64


def _torch_path(frags, attrs, monkeypatch):
    from decaenv.runtime.rasterizer import api

    with monkeypatch.context() as patch:
        patch.setattr(api, "_compiled_interpolate", lambda *_: None)
        return interpolate(frags, attrs)


@pytest.mark.parametrize("channels", [1, 3, 12])
def test_compiled_kernel_is_bit_identical_to_torch(built_extension, monkeypatch, channels):
    """The extension's CPU kernel computes the torch path's numbers, bit for bit, on any thread count."""
    from decaenv.runtime.rasterizer import api, extension

    fv = deca_head_face_vertices(batch=3, jitter=0.3, seed=2)
    frags = rasterize(fv, 72, 56, backend="torch")
    assert bool((frags.pix_to_face < 0).any()) and bool((frags.pix_to_face >= 0).any())
    attrs = torch.randn(3, fv.shape[1], 3, channels, generator=torch.Generator().manual_seed(channels))
    assert extension.loaded_op("interpolate") is not None
    assert api._compiled_interpolate(frags, attrs) is not None
    assert equal_on_thread_counts(lambda: interpolate(frags, attrs), _torch_path(frags, attrs, monkeypatch))
    one = Fragments(frags.pix_to_face[:1], frags.bary[:1], frags.zbuf[:1], "torch")  # broadcast both ways
    assert torch.equal(interpolate(one, attrs), _torch_path(one, attrs, monkeypatch))
    assert torch.equal(interpolate(frags, attrs[:1]), _torch_path(frags, attrs[:1], monkeypatch))


def test_compiled_kernel_only_where_it_applies(built_extension, head):
    """float64 attributes, CUDA-less fallbacks and attributes that want a gradient take the torch path."""
    from decaenv.runtime.rasterizer import api

    fv, frags = head
    assert api._compiled_interpolate(frags, torch.zeros(2, fv.shape[1], 3, 2)) is not None
    assert api._compiled_interpolate(frags, torch.zeros(2, fv.shape[1], 3, 2, dtype=torch.float64)) is None
    wants_grad = torch.zeros(2, fv.shape[1], 3, 2, requires_grad=True)
    assert api._compiled_interpolate(frags, wants_grad) is None
    with torch.no_grad():
        assert api._compiled_interpolate(frags, wants_grad) is not None


def test_compiled_kernel_rejects_bad_indices(built_extension, head):
    fv, frags = head
    bad = frags.pix_to_face.clone()
    bad[0, 0, 0] = fv.shape[1]
    with pytest.raises(RuntimeError, match="fragments index face"):
        torch.ops.decaenv.interpolate(bad, frags.bary.contiguous(), torch.zeros(2, fv.shape[1], 3, 2))
