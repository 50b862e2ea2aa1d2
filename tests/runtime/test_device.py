"""Device resolution: auto picks CUDA, then Apple's MPS, then the CPU; MPS tensors use the CPU rasterizer."""

from __future__ import annotations

import pytest
import torch

from decaenv.errors import UsageError
from decaenv.runtime import deca as deca_mod
from decaenv.runtime.rasterizer import backends


@pytest.fixture
def gpus(monkeypatch):
    """Set which accelerators torch reports: gpus(cuda=False, mps=True)."""

    def set_(cuda: bool = False, mps: bool = False):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)

    return set_


@pytest.mark.parametrize("cuda, mps, expected", [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")])
def test_auto_prefers_cuda_then_mps_then_cpu(gpus, cuda, mps, expected):
    gpus(cuda=cuda, mps=mps)
    assert deca_mod.resolve_device("auto").type == expected
    assert deca_mod.resolve_device(None).type == expected


def test_explicit_mps(gpus):
    gpus(mps=True)
    assert deca_mod.resolve_device("mps") == torch.device("mps")
    gpus(mps=False)
    with pytest.raises(UsageError, match="no usable Apple GPU") as info:
        deca_mod.resolve_device("MPS")
    assert "--device cpu" in info.value.hint


def test_broken_mps_runtime_is_not_available(monkeypatch):
    def boom():
        raise RuntimeError("MPS backend failed to initialise")

    monkeypatch.setattr(torch.backends.mps, "is_available", boom)
    assert deca_mod.mps_available() is False


def test_unknown_and_unsupported_devices(gpus):
    gpus()
    with pytest.raises(UsageError, match="unknown device 'gpu0'"):
        deca_mod.resolve_device("gpu0")
    with pytest.raises(UsageError, match="not supported") as info:
        deca_mod.resolve_device("meta")
    assert "mps" in info.value.hint


def test_mps_tensors_get_the_cpu_rasterizer(monkeypatch):
    monkeypatch.setattr(
        backends, "availability", lambda name, dt: (name in ("cpu", "torch", "reference") and dt == "cpu", "stub")
    )
    choice = backends.choose_backend("mps", "auto")
    assert choice.name == "cpu" and choice.reason.startswith("mps tensors are rasterized on the CPU")
    monkeypatch.setattr(backends, "availability", lambda name, dt: (name in ("torch", "reference"), "stub"))
    monkeypatch.setattr(backends, "pytorch3d_importable", lambda: (False, "no"))
    assert backends.choose_backend("mps", "auto").name == "torch"
    assert backends.choose_backend("mps", "torch").name == "torch"
    with pytest.raises(UsageError, match="'cuda' cannot take mps tensors"):
        backends.choose_backend("mps", "cuda")


def test_rasterizing_through_the_cpu_returns_to_the_input_device():
    seen = []

    def fake(fv, xs, ys):
        seen.append((fv.device.type, xs.device.type, ys.device.type))
        return fv[..., 0, 0].long(), fv.clone(), fv[..., 0, 2]

    wrapped = backends.on_cpu(fake)
    fv, xs, ys = torch.rand(1, 4, 3, 3), torch.linspace(-1, 1, 8), torch.linspace(-1, 1, 8)
    out = wrapped(fv, xs, ys)
    assert seen == [("cpu", "cpu", "cpu")] and all(t.device == fv.device for t in out)
    assert torch.equal(out[1], fv)


def test_only_hosted_devices_get_the_cpu_wrapper(monkeypatch):
    monkeypatch.setattr(backends, "availability", lambda name, dt: (name in ("torch", "reference"), "stub"))
    monkeypatch.setattr(backends, "pytorch3d_importable", lambda: (False, "no"))
    assert backends.get_backend("torch", "cpu").run is backends.SPECS["torch"].run
    hosted = backends.get_backend("torch", "mps")
    assert hosted.name == "torch" and hosted.run is not backends.SPECS["torch"].run
    hosted.check_device("mps")  # the resolved backend takes the MPS tensors it was resolved for
    assert backends.get_backend(hosted, "mps") is hosted
