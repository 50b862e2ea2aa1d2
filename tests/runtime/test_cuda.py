"""The runtime on a CUDA GPU equals the CPU run (skipped without CUDA; the lead runs these on the GPU machine)."""

import json

import pytest
import torch

pytestmark = pytest.mark.cuda


@pytest.fixture(scope="module")
def both(synthetic_data_dir, astronaut_crop):
    from decaenv.runtime import DECA

    images = astronaut_crop[0].repeat(2, 1, 1, 1)
    out = {}
    for device in ("cpu", "cuda"):
        model = DECA(synthetic_data_dir, device=device)
        codes = model.encode(images.to(device))
        opdict, visdict = model.decode(codes)
        out[device] = (model, codes, opdict, visdict)
    return out


def test_cuda_codes_and_geometry_equal_cpu(both):
    _, cpu_codes, cpu_op, _ = both["cpu"]
    model, gpu_codes, gpu_op, _ = both["cuda"]
    assert model.device.type == "cuda" and model.rasterizer.name in ("cuda", "pytorch3d", "torch")
    for key in ("shape", "exp", "pose", "cam", "light", "detail"):
        assert torch.allclose(gpu_codes[key].cpu(), cpu_codes[key], rtol=1e-3, atol=1e-4), key
    for key in ("verts", "trans_verts", "landmarks2d", "landmarks3d_world", "normals", "displacement_map"):
        assert torch.allclose(gpu_op[key].cpu(), cpu_op[key], rtol=1e-3, atol=1e-4), key


def test_cuda_images_equal_cpu_except_edge_pixels(both):
    _, _, cpu_op, cpu_vis = both["cpu"]
    _, _, gpu_op, gpu_vis = both["cuda"]
    for key in ("shape_images", "shape_detail_images"):
        differing = (gpu_vis[key].cpu() - cpu_vis[key]).abs().gt(2 / 255).float().mean().item()
        assert differing < 5e-3, (key, differing)
    differing = (gpu_op["uv_detail_normals"].cpu() - cpu_op["uv_detail_normals"]).abs().gt(1e-3).float().mean()
    assert differing.item() < 5e-3


def test_reconstruct_cli_on_cuda(tmp_path, capsys, synthetic_data_dir):
    import skimage.data
    from PIL import Image

    from decaenv.cli import main
    from decaenv.runtime.export import SAVE_KINDS
    from decaenv.runtime.readback import check_item

    Image.fromarray(skimage.data.astronaut()).save(tmp_path / "astronaut.png")
    code = main(
        [
            "--data-dir",
            str(synthetic_data_dir),
            "reconstruct",
            "-i",
            str(tmp_path / "astronaut.png"),
            "-o",
            str(tmp_path / "out"),
            "--device",
            "cuda",
            "--save",
            "all",
            "--render-orig",
            "--json",
        ]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    assert json.loads(out.out)["device"].startswith("cuda")
    check_item(tmp_path / "out", "astronaut", SAVE_KINDS)
