"""Strict loading of DECA's checkpoint and the networks' layout (deca-spec §1-§3)."""

import pickle
from collections import OrderedDict

import pytest
import torch

from decaenv import deca_layout as keys
from decaenv.errors import DataError, UnsafeContentError
from decaenv.runtime.decoders import QUIRK_BN_EPS, DetailGenerator, detail_latent
from decaenv.runtime.encoders import ResnetEncoder, split_codes
from decaenv.runtime.model_files import load_checkpoint, load_strict, load_torch_file


@pytest.fixture(scope="module")
def networks():
    return {"E_flame": ResnetEncoder(236), "E_detail": ResnetEncoder(128), "D_detail": DetailGenerator()}


def test_module_keys_and_shapes_are_decas(networks):
    layout = keys.checkpoint_layout()
    for name, net in networks.items():
        state = net.state_dict()
        assert list(state) == list(layout[name])
        assert all(tuple(state[k].shape) == layout[name][k] for k in state)


def test_strict_load_of_the_synthetic_checkpoint(synthetic_data_dir, networks):
    path = synthetic_data_dir / "deca_model.tar"
    state = load_checkpoint(path)
    for name, net in networks.items():
        load_strict(net, state[name], name, path)
        for key, value in net.state_dict().items():
            assert torch.equal(value, state[name][key]), key


def test_missing_key_in_a_checkpoint_file_is_named(synthetic_data_dir, tmp_path, networks):
    """The synthetic checkpoint's D_detail (7 MB of its 214) written back to a file without one key; the two
    encoders are left empty (each network is loaded on its own, so they play no part in D_detail's error)."""
    state = load_checkpoint(synthetic_data_dir / "deca_model.tar")
    broken = {"E_flame": OrderedDict(), "E_detail": OrderedDict(), "D_detail": OrderedDict(state["D_detail"])}
    del broken["D_detail"]["conv_blocks.11.running_var"]
    path = tmp_path / "deca_model.tar"
    torch.save(broken, path)
    reloaded = load_checkpoint(path)
    with pytest.raises(DataError) as err:
        load_strict(networks["D_detail"], reloaded["D_detail"], "D_detail", path)
    text = err.value.one_line()
    assert "D_detail" in text and "1 missing: conv_blocks.11.running_var" in text and "\n" not in text
    assert str(path) in text


def test_unexpected_and_wrong_shape_keys_are_named(networks):
    state = OrderedDict(networks["D_detail"].state_dict())
    state["conv_blocks.99.weight"] = torch.zeros(1)
    state["l1.0.bias"] = torch.zeros(10)
    with pytest.raises(DataError) as err:
        load_strict(DetailGenerator(), state, "D_detail", "ckpt")
    text = err.value.one_line()
    assert "1 unexpected: conv_blocks.99.weight" in text
    assert "l1.0.bias (10,) (expected (8192,))" in text


def test_module_prefix_from_dataparallel_is_accepted(networks):
    state = {f"module.{k}": v for k, v in networks["D_detail"].state_dict().items()}
    load_strict(DetailGenerator(), state, "D_detail", "ckpt")


def test_checkpoint_without_networks(tmp_path):
    path = tmp_path / "x.tar"
    torch.save({"E_flame": {}, "opt": {}}, path)
    with pytest.raises(DataError, match="lacks E_detail, D_detail"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "is empty"),
        (b"<!DOCTYPE html><html>Google Drive - Virus scan warning</html>", "HTML page"),
        (b"PK\x03\x04 truncated zip", "damaged or not a PyTorch file"),
    ],
)
def test_bad_checkpoint_files(tmp_path, content, message):
    path = tmp_path / "deca_model.tar"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_checkpoint(path)


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_arbitrary_objects_are_refused_unless_the_hash_is_vouched_for(tmp_path):
    import hashlib

    path = tmp_path / "deca_model.tar"
    torch.save({"E_flame": {}, "E_detail": {}, "D_detail": {}, "extra": _Evil()}, path)
    with pytest.raises(UnsafeContentError, match="refused by torch's safe loader"):
        load_torch_file(path, "DECA checkpoint")
    with pytest.raises(UnsafeContentError):
        load_torch_file(path, "DECA checkpoint", trusted_sha256="0" * 64)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    loaded = load_torch_file(path, "DECA checkpoint", trusted_sha256=digest)
    assert set(loaded) == {"E_flame", "E_detail", "D_detail", "extra"}
    assert pickle


def test_detail_decoder_quirks():
    net = DetailGenerator().eval()
    bns = [m for m in net.conv_blocks if isinstance(m, torch.nn.BatchNorm2d)]
    assert [bn.eps for bn in bns] == [1e-5] + [QUIRK_BN_EPS] * 5
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(50)  # saturate tanh
        out = net(torch.randn(2, 181))
    assert out.shape == (2, 1, 256, 256)
    assert out.abs().max() <= 0.01 and out.abs().max() > 0.0099


def test_code_split_and_detail_latent_order():
    code = torch.arange(236.0)[None]
    parts = split_codes(code)
    assert [p.shape[1] for p in (parts["shape"], parts["tex"], parts["exp"], parts["pose"], parts["cam"])] == [
        100,
        50,
        50,
        6,
        3,
    ]
    assert parts["light"].shape == (1, 9, 3)
    assert parts["light"][0, 2, 1].item() == 209 + 3 * 2 + 1  # (k, c) = code[209 + 3k + c]
    assert parts["cam"][0].tolist() == [206.0, 207.0, 208.0]
    latent = detail_latent(parts["pose"], parts["exp"], torch.full((1, 128), -1.0))
    assert latent.shape == (1, 181)
    assert latent[0, :3].tolist() == [203.0, 204.0, 205.0] and latent[0, 3].item() == 150.0


def test_deca_networks_hold_exactly_the_checkpoint(synthetic_data_dir):
    """DECA builds its networks without random initialisation (`init=False`): every parameter and buffer,
    BatchNorm's running statistics and counters included, must then be the checkpoint's, bit for bit."""
    from decaenv.runtime.deca import DECA
    from decaenv.runtime.layers import FilledConv2d, FilledLinear

    deca = DECA(synthetic_data_dir, device="cpu", rasterizer="torch")
    state = load_checkpoint(synthetic_data_dir / "deca_model.tar")
    for name in ("E_flame", "E_detail", "D_detail"):
        net = getattr(deca, name)
        assert any(isinstance(m, FilledConv2d) for m in net.modules())
        assert any(isinstance(m, FilledLinear) for m in net.modules())
        loaded = net.state_dict()
        assert list(loaded) == list(keys.checkpoint_layout()[name])
        for key, value in loaded.items():
            assert torch.equal(value, state[name][key]), f"{name}.{key}"


def test_networks_built_with_init_are_initialised_and_filled_ones_are_not(monkeypatch):
    """`init=True` (the default, e.g. for training or tests) keeps torch's initialisation; `init=False` never
    calls it, and leaves the same keys and shapes for the checkpoint."""
    calls = []
    monkeypatch.setattr(torch.nn.init, "kaiming_uniform_", lambda t, *a, **k: calls.append(t.shape) or t)
    filled = ResnetEncoder(236, init=False)
    assert calls == []
    ResnetEncoder(236)
    assert len(calls) == 53 + 2  # ResNet-50's 53 convolutions and the head's two linear layers
    assert filled.state_dict().keys() == ResnetEncoder(236).state_dict().keys()
    calls.clear()
    DetailGenerator(init=False)
    assert calls == []
    DetailGenerator()
    assert len(calls) == 1 + 6  # l1 and six convolutions
