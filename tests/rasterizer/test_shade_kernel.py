"""The extension's `shade_directional` kernel: DECA's shape-image shading, bit-identical to the torch path."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F
from _support.torch_threads import equal_on_thread_counts

from decaenv.runtime import shading


def _inputs(batch: int, h: int, w: int, seed: int = 0, lights=None):
    """A normal map with background zeros, NaN-free unit and non-unit normals; grey and alpha as the renderer
    makes them; a coloured backdrop."""
    generator = torch.Generator().manual_seed(seed)
    normals = F.normalize(torch.randn(batch, 3, h, w, generator=generator), dim=1)
    normals = normals * (torch.rand(batch, 1, h, w, generator=generator) * 1.5) * (torch.rand(batch, 1, h, w) > 0.2)
    grey = shading.SHAPE_GREY * torch.rand(batch, 1, h, w, generator=generator)
    alpha = (torch.rand(batch, 1, h, w, generator=generator) > 0.4).float()
    backdrop = torch.rand(batch, 3, h, w, generator=generator)
    if lights is None:
        lights = shading.default_shape_lights(batch, "cpu")
    return normals, lights, grey, alpha, backdrop


@pytest.mark.parametrize(
    "shape,lights",
    [((3, 224, 224), "deca"), ((2, 37, 301), "random"), ((1, 5, 7), "one")],
    ids=["deca-lights", "random-lights-odd-size", "one-light-tiny"],
)
def test_kernel_shading_is_bit_identical_to_torch(built_extension, shape, lights):
    batch, h, w = shape
    generator = torch.Generator().manual_seed(4)
    custom = {
        "deca": None,
        "random": torch.cat(
            [torch.randn(batch, 4, 3, generator=generator), torch.rand(batch, 4, 3, generator=generator) * 2], 2
        ),
        "one": torch.tensor([[[0.3, -0.2, 1.0, 1.7, 0.5, 1.0]]]),
    }[lights]
    normals, lights_, grey, alpha, backdrop = _inputs(batch, h, w, lights=custom)
    op = torch.ops.decaenv.shade_directional
    directions = F.normalize(lights_[:, :, :3], dim=2).contiguous()
    intensities = lights_[:, :, 3:].contiguous()
    expected = shading._torch_shape_shading(normals, lights_, grey, alpha, backdrop)
    assert equal_on_thread_counts(lambda: op(normals, directions, intensities, grey, alpha, backdrop), expected)
    assert bool(((expected - backdrop).abs() > 0.05).any())  # the light changed the picture


def test_shape_shading_uses_the_kernel_only_where_it_applies(built_extension, monkeypatch):
    normals, lights, grey, alpha, backdrop = _inputs(2, 16, 24)
    monkeypatch.setattr(shading, "_KERNEL_AGREES", {})
    with torch.no_grad():
        assert shading._compiled_shading(normals, lights, grey, alpha, backdrop) is not None
        assert shading._KERNEL_AGREES == {((2, 3, 16, 24), 5): True}  # checked on its first call
        calls = []
        real = shading._torch_shape_shading
        monkeypatch.setattr(shading, "_torch_shape_shading", lambda *a: calls.append(1) or real(*a))
        fast = shading.shape_shading(normals, lights, grey, alpha, backdrop)
        assert not calls and torch.equal(fast, real(normals, lights, grey, alpha, backdrop))
        sliced = torch.cat([normals[:, :2], normals], 1)[:, 2:]  # a channel slice, as the renderer's normal images
        assert torch.equal(shading.shape_shading(sliced, lights, grey, alpha, backdrop), fast) and not calls
        assert shading._compiled_shading(normals.double(), lights, grey, alpha, backdrop) is None
        assert shading._compiled_shading(normals, lights, grey, alpha, backdrop[:1]) is None  # a broadcast backdrop
        assert shading._compiled_shading(normals, lights[:, :0], grey, alpha, backdrop) is None
        assert shading._compiled_shading(normals, lights[:1], grey, alpha, backdrop) is None  # broadcast lights
        assert shading._compiled_shading(torch.cat([normals, grey], 1), lights, grey, alpha, backdrop) is None
    assert shading._compiled_shading(normals.requires_grad_(), lights, grey, alpha, backdrop) is None
    monkeypatch.setitem(shading._KERNEL_AGREES, ((2, 3, 16, 24), 5), False)  # a torch that rounds otherwise
    with torch.no_grad():
        assert shading._compiled_shading(normals, lights, grey, alpha, backdrop) is None
        assert torch.equal(shading.shape_shading(normals, lights, grey, alpha, backdrop), fast) and calls


def test_kernel_rejects_bad_shapes(built_extension):
    normals, lights, grey, alpha, backdrop = _inputs(1, 4, 4)
    directions, intensities = lights[:, :, :3].contiguous(), lights[:, :, 3:].contiguous()
    with pytest.raises(RuntimeError, match="backdrop must be"):
        torch.ops.decaenv.shade_directional(normals, directions, intensities, grey, alpha, backdrop[:, :2])
    with pytest.raises(RuntimeError, match="at least one light"):
        torch.ops.decaenv.shade_directional(normals, directions[:, :0], intensities[:, :0], grey, alpha, backdrop)
