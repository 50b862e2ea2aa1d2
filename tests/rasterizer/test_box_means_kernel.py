"""The extension's `box_means` kernel: MTCNN's normalised cell means, the same numbers as the torch code."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from decaenv.runtime.detectors import mtcnn_ops


def _torch_means(monkeypatch, *args) -> torch.Tensor:
    with monkeypatch.context() as patch:
        patch.setattr(mtcnn_ops, "loaded_op", lambda name: None)
        return mtcnn_ops.box_means(*args)


def _cells(generator, rows: int, count: int):
    index = torch.randint(0, rows, (4, count), generator=generator)
    area = torch.randint(1, 70000, (count,), generator=generator)
    inside = torch.minimum(area, torch.randint(0, 70000, (count,), generator=generator))
    return index, inside, area


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64])
def test_kernel_equals_the_torch_code(built_extension, monkeypatch, dtype):
    generator = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (97, 131, 3), dtype=torch.uint8, generator=generator)
    table = mtcnn_ops.SummedAreaTable().fill(image).table.to(dtype).view(-1, 3)
    for count in (1, 7, 5000):
        index, inside, area = _cells(generator, table.shape[0], count)
        for cast in (lambda t: t, lambda t: t.to(torch.float32)):  # area_resize's int64, the canvas's float32
            got = mtcnn_ops.box_means(table, index, cast(inside), cast(area))
            expected = _torch_means(monkeypatch, table, index, cast(inside), cast(area))
            assert got.dtype == torch.float32 and got.shape == (count, 3)
            assert torch.equal(got.view(torch.int32), expected.view(torch.int32)), count


def test_kernel_is_used_and_refuses_bad_arguments(built_extension, monkeypatch):
    calls = []
    real = mtcnn_ops.loaded_op
    monkeypatch.setattr(mtcnn_ops, "loaded_op", lambda name: calls.append(name) or real(name))
    table = torch.zeros(12, 3, dtype=torch.int32)
    index, inside, area = _cells(torch.Generator().manual_seed(1), 12, 5)
    mtcnn_ops.box_means(table, index, inside, area)
    assert calls == ["box_means"]
    op = torch.ops.decaenv.box_means
    f_inside, f_area = inside.float(), area.float()
    for args, words in [
        ((table.float(), index, f_inside, f_area), "int32 or int64"),
        ((table, index[:3], f_inside, f_area), r"\(4, P\) int64"),
        ((table, index, f_inside[:4], f_area), "inside and area"),
        ((table, index, inside, f_area), "inside and area"),
        ((table, index + 12, f_inside, f_area), "corner outside the table"),
    ]:
        with pytest.raises(RuntimeError, match=words):
            op(*args)
