"""The extension's `max_pool_cl` kernel: MTCNN's pooling layers, the same values as torch's `max_pool2d`."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F

from decaenv.runtime.detectors import mtcnn_ops


def _channels_last(shape, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator).contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("baseline", ["0", "1"])  # "1": the scalar loop even where the CPU has AVX2
@pytest.mark.parametrize("kernel,stride", [(2, 2), (3, 2), (3, 1), (1, 1), (4, 3)])
def test_kernel_equals_torch_with_ties_nan_and_edges(built_extension, monkeypatch, kernel, stride, baseline):
    monkeypatch.setenv("DECAENV_BASELINE_KERNELS", baseline)
    op = torch.ops.decaenv.max_pool_cl
    shapes = [(1, 10, 108, 270), (36, 28, 22, 22), (6, 64, 21, 21), (2, 3, 7, 5), (1, 1, 4, 4)]
    shapes += [(3, 8, 9, 9), (2, 17, 6, 6)]  # the AVX2 path: exactly one group of 8, and groups overlapping
    for n, shape in enumerate(shapes):
        x = _channels_last(shape, n)
        x[..., ::3, :] = x[..., ::3, :].round()  # equal values in a window
        flat = x.permute(0, 2, 3, 1).view(-1)  # (the same memory)
        flat[::97] = -0.0  # a -0 / +0 tie: the first one stands
        flat[1::89] = 0.0
        flat[5::1009] = float("nan")
        flat[7::2003] = float("-inf")
        got, expected = op(x, kernel, stride), F.max_pool2d(x, kernel, stride, ceil_mode=True)
        assert got.shape == expected.shape and got.is_contiguous(memory_format=torch.channels_last), shape
        assert torch.equal(got.isnan(), expected.isnan()), shape
        same = torch.where(expected.isnan(), 0.0, expected)
        assert torch.equal(torch.where(got.isnan(), 0.0, got).view(torch.int32), same.view(torch.int32)), shape


def test_mtcnn_layers_use_the_kernel_only_where_it_applies(built_extension, monkeypatch):
    pool = mtcnn_ops.MaxPool(3, 2)
    calls = []
    real = mtcnn_ops.loaded_op
    monkeypatch.setattr(mtcnn_ops, "loaded_op", lambda name: calls.append(name) or real(name))
    x = _channels_last((4, 28, 22, 22), 9)
    with torch.inference_mode():
        assert torch.equal(pool(x), F.max_pool2d(x, 3, 2, ceil_mode=True)) and calls == ["max_pool_cl"]
        assert torch.equal(pool(x.contiguous()), F.max_pool2d(x, 3, 2, ceil_mode=True)) and len(calls) == 1
        assert pool(x.double()).dtype == torch.float64 and len(calls) == 1
    grad = x.clone().requires_grad_(True)
    pool(grad).sum().backward()  # torch's own op: gradients still work
    assert grad.grad is not None and len(calls) == 1


def test_kernel_refuses_bad_arguments_with_one_line(built_extension):
    op = torch.ops.decaenv.max_pool_cl
    x = _channels_last((1, 3, 5, 5), 0)
    for args, words in [
        ((x.contiguous(), 2, 2), "channels-last"),
        ((x.double(), 2, 2), "float32"),
        ((x, 6, 2), "do not fit"),
        ((x, 2, 0), "do not fit"),
    ]:
        with pytest.raises(RuntimeError, match=words):
            op(*args)
