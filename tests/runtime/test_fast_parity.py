"""Exact mode: the fast graphs (BatchNorm folded, channels-last, frozen) compute DECA's function — codes,
vertices and landmarks within 1e-6 relative of the eager model (relative = max |fast - eager| / max |eager|
per tensor), the detail map within 1e-5; bf16 stays close and float32 outside."""

import pytest
import torch

from decaenv.runtime.decoders import detail_latent
from decaenv.runtime.encoders import split_codes
from decaenv.runtime.fast import bf16_support, build_fast
from decaenv.runtime.fold import fold_conv_bn

EXACT = 1e-6


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b| (relative to the tensor's scale)."""
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


@pytest.fixture(scope="module")
def crops(astronaut_crop):
    torch.manual_seed(0)
    image = astronaut_crop[0]
    return torch.cat([image, image.flip(3), torch.rand(1, 3, 224, 224)])


def _outputs(deca, nets, crops):
    with torch.no_grad():
        codes = split_codes(nets.E_flame(crops))
        codes["detail"] = nets.E_detail(crops)
        geometry = deca.geometry(codes)
        uv_z = nets.D_detail(detail_latent(codes["pose"], codes["exp"], codes["detail"]))
    return codes, geometry, uv_z


@pytest.fixture(scope="module")
def eager(deca, crops):
    return _outputs(deca, deca, crops)


@pytest.mark.parametrize(
    "graph", ["packed", pytest.param("fused", marks=pytest.mark.slow), pytest.param("freeze", marks=pytest.mark.slow)]
)
def test_exact_mode_matches_eager(deca, crops, eager, graph):
    nets = build_fast(deca, "fp32", graph)
    codes, geometry, uv_z = _outputs(deca, nets, crops)
    ref_codes, ref_geometry, ref_uv_z = eager
    for key in ("shape", "tex", "exp", "pose", "cam", "light", "detail"):
        assert rel(codes[key], ref_codes[key]) <= EXACT, key
    for key in ("verts", "trans_verts", "landmarks2d", "landmarks3d"):
        assert rel(geometry[key], ref_geometry[key]) <= EXACT, key
    assert rel(uv_z, ref_uv_z) <= 1e-5  # the detail map (not a code): measured 2e-6 on synthetic weights
    assert not torch.equal(codes["shape"], ref_codes["shape"]) or graph != "freeze"  # really another graph


@pytest.mark.slow  # full-size ResNet-50 forwards; the fast loop keeps the packed exact-mode parity
@pytest.mark.parametrize("graph", ["freeze", "packed"])
def test_fast_graphs_accept_any_batch_size(deca, crops, eager, graph):
    nets = build_fast(deca, "fp32", graph)  # packed: weights laid out for batch 8, run at 1 and 3
    with torch.no_grad():
        one = nets.E_flame(crops[:1])
        three = nets.E_flame(crops)
        latent = detail_latent(eager[0]["pose"], eager[0]["exp"], eager[0]["detail"])
        uv_one, uv_three = nets.D_detail(latent[:1]), nets.D_detail(latent)
        reference = deca.E_flame(crops)
    assert one.shape == (1, 236) and three.shape == (3, 236)
    assert rel(one[0], three[0]) <= EXACT
    assert rel(three, reference) <= EXACT and rel(uv_three, eager[2]) <= 1e-5
    assert rel(uv_one[0], uv_three[0]) <= 1e-5


def test_packed_graph_is_the_default_on_this_cpu_and_refused_elsewhere(deca):
    from decaenv.errors import UsageError
    from decaenv.runtime.fast import resolve_graph
    from decaenv.runtime.fast_packed import PackedResNet, packed_available

    cpu = torch.device("cpu")
    assert packed_available(cpu) == torch.backends.mkldnn.is_available()
    if packed_available(cpu):
        assert resolve_graph("auto", cpu) == "packed"
    assert resolve_graph("auto", torch.device("cuda")) == "freeze"
    with pytest.raises(UsageError, match="packed graph needs a CPU"):
        resolve_graph("packed", torch.device("cuda"))
    nets = build_fast(deca, "fp32", "packed")
    assert isinstance(nets.E_flame.trunk, PackedResNet) and nets.graph == "packed"


def test_auto_falls_back_to_freeze_where_the_packed_probe_fails(monkeypatch):
    from decaenv.runtime import fast_packed
    from decaenv.runtime.fast import resolve_graph

    monkeypatch.setattr(fast_packed, "_probe", lambda: False)  # e.g. a torch whose fused ops fail at run time
    assert resolve_graph("auto", torch.device("cpu")) == "freeze"


def test_packed_convolution_post_ops_match_the_modules():
    """Each fused post-op computes what the separate modules compute (ReLU, LeakyReLU, residual add + ReLU)."""
    from decaenv.runtime.fast_packed import PackedConv, packed_available

    if not packed_available(torch.device("cpu")):
        pytest.skip("torch without oneDNN")
    torch.manual_seed(3)
    conv = torch.nn.Conv2d(16, 32, 3, padding=1, stride=2)
    x = torch.randn(2, 16, 20, 20).contiguous(memory_format=torch.channels_last)
    residual = torch.randn(2, 32, 10, 10).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        plain = conv(x)
        assert rel(PackedConv(conv, (2, 16, 20, 20), torch.float32)(x), plain) <= 1e-6
        assert rel(PackedConv(conv, (2, 16, 20, 20), torch.float32, "relu")(x), plain.relu()) <= 1e-6
        leaky = PackedConv(conv, (2, 16, 20, 20), torch.float32, "leaky_relu", 0.2)(x)
        assert rel(leaky, torch.nn.functional.leaky_relu(plain, 0.2)) <= 1e-6
        expected = (plain + residual).relu()
        got = PackedConv(conv, (8, 16, 20, 20), torch.float32).add_relu_(x, residual.clone())
        assert rel(got, expected) <= 1e-6
    with pytest.raises(ValueError, match="need a bias"):
        PackedConv(torch.nn.Conv2d(3, 4, 1, bias=False), (1, 3, 8, 8), torch.float32)


def test_packed_detail_decodes_in_chunks_with_the_same_numbers(deca, eager):
    """The packed detail decoder runs a few images at a time (its 256×256 activations stay within
    CHUNK_BYTES); the chunks change no number: any chunk size gives the whole batch's result bit for bit."""
    from decaenv.runtime.fast_packed import CHUNK_BYTES, PackedDetail, packed_available

    if not packed_available(torch.device("cpu")):
        pytest.skip("torch without oneDNN")
    decoder = PackedDetail(deca.D_detail, torch.float32)
    assert decoder.chunk == CHUNK_BYTES // (32 * 256 * 256 * 4) == 2  # DECA's largest layer: 32 × 256² float32
    assert PackedDetail(deca.D_detail, torch.bfloat16).chunk == 4
    latent = detail_latent(eager[0]["pose"], eager[0]["exp"], eager[0]["detail"])
    latent = torch.cat([latent, latent.flip(0)[:2]])  # 5 items: two full chunks and a ragged one
    with torch.no_grad():
        chunked = decoder(latent)
        decoder.chunk = 5
        whole = decoder(latent)
    assert chunked.shape == (5, 1, 256, 256) and chunked.is_contiguous()
    assert torch.equal(chunked, whole)
    assert rel(whole[:3], eager[2]) <= 1e-5


def test_packed_encoder_runs_in_chunks_with_the_same_numbers(deca, crops):
    """The packed encoders run a few images at a time (layer 1's activations within ENCODER_CHUNK_BYTES, so the
    two side-by-side networks share the cache), their late blocks on the whole batch (WHOLE_BATCH_BYTES: fp32
    layer 4, bf16 layers 3 and 4); any chunk sizes give the whole batch's features bit for bit."""
    from decaenv.runtime.fast_packed import ENCODER_CHUNK_BYTES, WHOLE_BATCH_BYTES, PackedResNet, packed_available
    from decaenv.runtime.fold import fold_resnet

    if not packed_available(torch.device("cpu")):
        pytest.skip("torch without oneDNN")
    folded = fold_resnet(deca.E_flame.encoder)
    trunk = PackedResNet(folded, torch.float32)
    assert trunk.chunk == 2 and ENCODER_CHUNK_BYTES // (256 * 56 * 56 * 4) == 2  # layer 1: 256 × 56² float32
    assert (trunk.late_chunk, len(trunk.blocks), len(trunk.late_blocks)) == (8, 13, 3)  # layer 4
    assert 8 * 2048 * 7 * 7 * 4 <= WHOLE_BATCH_BYTES < 8 * 256 * 28 * 28 * 4  # layer 4 fits, layer 3's first does not
    bf16 = PackedResNet(folded, torch.bfloat16)
    assert (bf16.chunk, len(bf16.blocks), len(bf16.late_blocks)) == (4, 7, 9)  # layers 3 and 4
    alone_net = PackedResNet(folded, torch.float32, batch=1)
    assert (alone_net.chunk, alone_net.late_chunk, len(alone_net.late_blocks)) == (1, 1, 16)
    assert PackedResNet(folded, torch.float32, batch=64).late_blocks == []
    images = crops.contiguous(memory_format=torch.channels_last)  # 3 items: a full chunk and a ragged one
    with torch.no_grad():
        chunked = trunk(images)
        trunk.chunk, trunk.late_chunk = 3, 2
        whole = trunk(images)
        trunk.chunk, trunk.late_chunk = 1, 1
        alone = [trunk(images[k : k + 1]) for k in range(3)]
        ones = trunk(images)
    assert chunked.shape == (3, 2048)
    assert torch.equal(chunked, whole) and torch.equal(chunked, torch.cat(alone)) and torch.equal(chunked, ones)


@pytest.mark.slow  # full-size ResNet-50 forwards; the fast loop keeps the packed exact-mode parity
def test_deca_accelerate_routes_encode_and_detail(deca, crops, eager):
    try:
        deca.accelerate("fp32", "fused")
        assert deca.precision == "fp32" and "BatchNorm folded" in deca.describe()
        codes = deca.encode(crops)
        assert rel(codes["shape"], eager[0]["shape"]) <= EXACT
    finally:
        deca.fast = None


@pytest.mark.slow  # full-size ResNet-50 forwards; the fast loop keeps the packed exact-mode parity
@pytest.mark.parametrize("graph", ["fused", "packed"])
def test_bf16_is_close_and_float32_outside(deca, crops, eager, graph):
    nets = build_fast(deca, "bf16", graph)
    codes, geometry, uv_z = _outputs(deca, nets, crops)
    assert codes["shape"].dtype == torch.float32 and uv_z.dtype == torch.float32
    assert geometry["verts"].dtype == torch.float32
    assert rel(codes["shape"], eager[0]["shape"]) < 0.05
    assert rel(uv_z, eager[2]) < 0.05
    assert rel(codes["shape"], eager[0]["shape"]) > 0  # it did run in bf16


def test_fold_conv_bn_matches_module_pair():
    torch.manual_seed(1)
    conv, bn = torch.nn.Conv2d(4, 6, 3, padding=1, bias=True), torch.nn.BatchNorm2d(6, eps=0.8)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.1, 2)
    bn.weight.data.uniform_(0.5, 2)
    bn.eval()
    x = torch.randn(2, 4, 9, 9)
    with torch.no_grad():
        assert rel(fold_conv_bn(conv, bn)(x), bn(conv(x))) <= EXACT


def test_bf16_support_reads_cpu_flags():
    assert bf16_support(flags={"amx_bf16", "avx512_bf16"})[0]
    good, why = bf16_support(flags={"avx512_bf16"})
    assert good and "AVX512-BF16" in why
    good, why = bf16_support(flags={"avx2"})
    assert not good and "keep fp32" in why


def test_unknown_precision_or_graph_is_a_usage_error(deca):
    from decaenv.errors import UsageError

    with pytest.raises(UsageError, match="unknown precision"):
        build_fast(deca, "fp8")
    with pytest.raises(UsageError, match="unknown graph"):
        build_fast(deca, "fp32", "turbo")


@pytest.mark.cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_fast_graphs_on_cuda(synthetic_data_dir, astronaut_crop, precision):
    """On the GPU too (TF32 off, as DECA's torch 1.6 had none): exact mode within 1e-5 (cuDNN may pick other
    algorithms for channels-last), bf16 close."""
    from decaenv.runtime import DECA
    from decaenv.runtime.deca import ieee_fp32

    gpu = DECA(synthetic_data_dir, device="cuda")
    images = torch.cat([astronaut_crop[0], astronaut_crop[0].flip(3)]).cuda()
    with torch.no_grad(), ieee_fp32(gpu.device):
        reference = gpu.E_flame(images)
        fast = build_fast(gpu, precision, "freeze").E_flame(images)
    assert fast.dtype == torch.float32 and fast.is_cuda
    assert rel(fast, reference) <= (1e-5 if precision == "fp32" else 0.05)


@pytest.mark.slow  # full-size ResNet-50 forwards; the fast loop keeps the packed exact-mode parity
def test_deviation_report_of_bf16(deca, crops):
    from decaenv.runtime.fast import deviation_from_fp32

    try:
        deca.accelerate("bf16", "fused")
        report = deviation_from_fp32(deca, deca.encode(crops))
    finally:
        deca.fast = None
    assert report["batch"] == 3 and 0 < report["codes_max_rel"] < 0.05
    assert 0 <= report["vertices_mean_mm"] <= report["vertices_max_mm"] < 5
    assert set(report["per_code_max_rel"]) == {"shape", "tex", "exp", "pose", "cam", "light", "detail"}


@pytest.mark.slow  # a bf16 run: full-size ResNet-50 forwards, and DECA's eager ones for the check
def test_a_bf16_run_reports_its_deviation_on_the_first_items(deca, reconstruct_data_dir, tmp_path):
    """`precision_check` in the run's JSON: the first batch's first `PRECISION_CHECK_ITEMS` items against DECA's
    eager fp32 networks (a whole batch of eager forwards cost a short run more than its bf16 networks)."""
    from _support.runs import codes_options, photos
    from PIL import Image

    from decaenv.runtime.fast import PRECISION_CHECK_ITEMS
    from decaenv.runtime.pipeline import Reconstructor

    folder = tmp_path / "photos"
    folder.mkdir()
    for k, photo in enumerate(photos()[:3]):
        Image.fromarray(photo).save(folder / f"p{k}.png")
    try:
        deca.accelerate("bf16", "packed")
        options = codes_options(reconstruct_data_dir, folder, tmp_path / "out", precision="bf16", graph="packed")
        runner = Reconstructor(options, deca=deca)
        try:
            summary = runner.run()
        finally:
            runner.close()
    finally:
        deca.fast = None
    assert summary.counts == {"ok": 3}
    report = summary.to_json()["precision_check"]
    assert PRECISION_CHECK_ITEMS == 2 and report["batch"] == 2  # of the first batch's 3
    assert 0 < report["codes_max_rel"] < 0.05 and 0 <= report["vertices_max_mm"] < 5
