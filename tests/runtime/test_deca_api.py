"""The DECA-shaped Python API on synthetic weights: keys, shapes, no in-place mutation, options."""

import numpy as np
import pytest
import torch
from _support.assets import write_texture_space

from decaenv.runtime import camera
from decaenv.runtime.config import get_cfg_defaults
from decaenv.runtime.writers import MAT_KEYS


@pytest.fixture(scope="module")
def decoded(deca, astronaut_crop):
    images = astronaut_crop[0].repeat(2, 1, 1, 1)
    codedict = deca.encode(images)
    before = {k: v.clone() for k, v in codedict.items()}
    opdict, visdict = deca.decode(codedict)
    return codedict, before, opdict, visdict


def test_codedict_is_decas(decoded):
    codedict, _, _, _ = decoded
    shapes = {k: tuple(v.shape) for k, v in codedict.items()}
    assert shapes == {
        "shape": (2, 100),
        "tex": (2, 50),
        "exp": (2, 50),
        "pose": (2, 6),
        "cam": (2, 3),
        "light": (2, 9, 3),
        "images": (2, 3, 224, 224),
        "detail": (2, 128),
    }


def test_opdict_and_visdict_keys(decoded):
    _, _, opdict, visdict = decoded
    assert set(MAT_KEYS) - {"albedo"} <= set(opdict)
    expected = {
        "verts": (5023, 3),
        "trans_verts": (5023, 3),
        "landmarks2d": (68, 2),
        "landmarks3d": (68, 4),
        "landmarks3d_world": (68, 3),
        "grid": (224, 224, 2),
        "rendered_images": (3, 224, 224),
        "alpha_images": (1, 224, 224),
        "normal_images": (3, 224, 224),
        "uv_texture": (3, 256, 256),
        "normals": (5023, 3),
        "uv_detail_normals": (3, 256, 256),
        "displacement_map": (1, 256, 256),
        "uv_texture_gt": (3, 256, 256),
    }
    assert {k: tuple(opdict[k].shape[1:]) for k in expected} == expected
    assert list(visdict) == ["inputs", "landmarks2d", "landmarks3d", "shape_images", "shape_detail_images"]
    assert all(v.shape == (2, 3, 224, 224) for v in visdict.values())


def _orthographic(points, cam):
    """deca-spec §5 by hand: translate x, y by (tx, ty), scale everything by s, then negate y and z."""
    s, t = cam[:, None, 0:1], cam[:, None, 1:3]
    xy = s * (points[..., :2] + t)
    return torch.stack([xy[..., 0], -xy[..., 1], -s[..., 0] * points[..., 2]], -1)


def test_decode_mutates_nothing_and_keeps_landmarks_normalised(decoded):
    codedict, before, opdict, _ = decoded
    assert all(torch.equal(codedict[k], before[k]) for k in before)
    expected = _orthographic(opdict["verts"], codedict["cam"])
    assert torch.allclose(opdict["trans_verts"], expected, rtol=0, atol=1e-6)  # no +10/+20/+30 (deca-spec §8.4)
    lmk = opdict["landmarks2d"]
    assert lmk.abs().max() < 2.0  # normalised image coordinates, not pixels
    world = opdict["landmarks3d_world"]
    assert torch.allclose(opdict["landmarks3d"][..., :3], _orthographic(world, codedict["cam"]), rtol=0, atol=1e-6)
    assert set(torch.unique(opdict["landmarks3d"][..., 3]).tolist()) <= {0.0, 1.0}


def test_render_views_equal_the_separate_renders(deca, decoded):
    """The single-interpolation path equals DECA's render + two render_shape calls."""
    codedict, _, opdict, visdict = decoded
    verts, trans = opdict["verts"], opdict["trans_verts"]
    ops = deca.render(verts, trans, torch.zeros(2, 3, 256, 256), h=224, w=224)
    assert torch.allclose(ops.images, opdict["rendered_images"]) and torch.equal(ops.grid, opdict["grid"])
    assert torch.allclose(ops.normal_images, opdict["normal_images"], atol=1e-6)
    shape, _, grid, alpha = deca.render.render_shape(verts, trans, return_grid=True)
    assert torch.allclose(shape, visdict["shape_images"], atol=1e-6)
    detail_normals = torch.nn.functional.grid_sample(opdict["uv_detail_normals"], grid, align_corners=False) * alpha
    shape_detail = deca.render.render_shape(verts, trans, detail_normal_images=detail_normals)
    assert torch.allclose(shape_detail, visdict["shape_detail_images"], atol=1e-6)


def test_detail_normals_equal_decas_full_dense_computation(deca, decoded):
    from decaenv.runtime import mesh
    from decaenv.runtime.decoders import detail_latent

    codedict, _, opdict, _ = decoded
    with torch.no_grad():
        uv_z = deca.D_detail(detail_latent(codedict["pose"], codedict["exp"], codedict["detail"]))
    verts, normals = opdict["verts"], opdict["normals"]
    uv_v, uv_n = deca.render.world2uv(verts), deca.render.world2uv(normals)
    dense = uv_v + uv_z * deca.uv_face_eye_mask * uv_n + deca.fixed_uv_dis[None, None] * uv_n
    full = mesh.vertex_normals(dense.permute(0, 2, 3, 1).reshape(2, -1, 3), deca.render.dense_faces[0])
    full = full.reshape(2, 256, 256, 3).permute(0, 3, 1, 2)
    expected = full * deca.uv_face_eye_mask + uv_n * (1 - deca.uv_face_eye_mask)
    assert torch.equal(opdict["uv_detail_normals"], expected)
    assert torch.equal(opdict["displacement_map"], uv_z + deca.fixed_uv_dis) and uv_z.abs().max() < 0.01


def test_decode_options(deca, decoded, astronaut_crop):
    codedict, _, opdict, _ = decoded
    plain = deca.decode(codedict, return_vis=False)
    assert isinstance(plain, dict) and "uv_texture_gt" not in plain
    assert torch.allclose(plain["verts"], opdict["verts"])
    no_detail, vis = deca.decode(codedict, use_detail=False)
    assert "uv_detail_normals" not in no_detail and "shape_detail_images" not in vis
    image, crop = astronaut_crop
    original = torch.rand(2, 3, 300, 400)
    tform = camera.crop_to_original_tform(torch.tensor(crop.tform, dtype=torch.float32)[None].repeat(2, 1, 1))
    orig_op, orig_vis = deca.decode(codedict, render_orig=True, original_image=original, tform=tform)
    assert orig_vis["shape_images"].shape == (2, 3, 300, 400) and orig_op["rendered_images"].shape == (2, 3, 300, 400)
    assert torch.equal(orig_vis["inputs"], original)


def test_transform_points_maps_crop_to_original(astronaut_crop):
    _, crop = astronaut_crop
    tform = camera.crop_to_original_tform(torch.tensor(crop.tform, dtype=torch.float32)[None])
    crop_px = np.array([[10.0, 20.0], [200.0, 100.0]])
    norm = torch.tensor(crop_px / 224 * 2 - 1, dtype=torch.float32)[None]
    moved = camera.transform_points(torch.cat([norm, torch.zeros(1, 2, 1)], 2), tform, [224, 224], [512, 512])
    original_px = (np.c_[crop_px, np.ones(2)] @ np.linalg.inv(crop.tform).T)[:, :2]
    assert np.allclose((moved[0, :, :2].numpy() + 1) / 2 * 512, original_px, atol=1e-3)


@pytest.mark.slow
def test_config_constructor_and_texture_models(synthetic_data_dir, tmp_path, astronaut_crop):
    from decaenv.runtime import DECA

    images = astronaut_crop[0]
    for tex_type, name in (("FLAME", "FLAME_texture.npz"), ("BFM", "FLAME_albedo_from_BFM.npz")):
        cfg = get_cfg_defaults()
        cfg.data_dir = str(synthetic_data_dir)
        cfg.model.use_tex = True
        cfg.model.tex_type = tex_type
        path = write_texture_space(tmp_path / name, tex_type)
        if tex_type == "FLAME":
            cfg.model.flame_tex_path = str(path)
        else:
            cfg.model.tex_path = str(path)
        cfg.rasterizer_type = "torch"
        model = DECA(config=cfg, device="cpu")
        codedict = model.encode(images)
        opdict, visdict = model.decode(codedict)
        assert opdict["albedo"].shape == (1, 3, 256, 256) and "rendered_images" in visdict
        outside = (model.uv_face_eye_mask == 0).expand(1, 3, -1, -1)
        assert torch.equal(opdict["uv_texture_gt"][outside], opdict["uv_texture"][outside])
        model.cfg.model.extract_tex = False
        opdict2, _ = model.decode(codedict)
        assert torch.equal(opdict2["uv_texture_gt"], opdict2["uv_texture"])


def test_flame_texture_values(tmp_path):
    from decaenv.runtime.texture import FLAMETex

    path = write_texture_space(tmp_path / "FLAME_texture.npz", "FLAME", side=8)
    data = np.load(path)
    tex = FLAMETex(path, "FLAME", n_tex=50, uv_size=16)
    code = torch.zeros(1, 50)
    code[0, 2] = 1.0
    out = tex(code)[0].numpy()  # (3, 16, 16), RGB = the file's channels reversed, nearest ×2
    expected = (data["mean"] + data["tex_dir"][..., 2]) / 255.0
    assert np.allclose(out[0, ::2, ::2], expected[..., 2], atol=1e-5)
    assert np.allclose(out[2, 1::2, 1::2], expected[..., 0], atol=1e-5)


def test_missing_texture_space_is_a_clear_error(synthetic_data_dir):
    from decaenv.errors import DataError
    from decaenv.runtime import DECA

    cfg = get_cfg_defaults()
    cfg.model.use_tex = True
    with pytest.raises(DataError, match="FLAME_albedo_from_BFM.npz does not exist"):
        DECA(synthetic_data_dir, device="cpu", rasterizer="torch", config=cfg)


def test_cuda_request_without_cuda_is_a_usage_error(synthetic_data_dir):
    from decaenv.errors import UsageError
    from decaenv.runtime import DECA

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(UsageError, match="no usable CUDA GPU"):
        DECA(synthetic_data_dir, device="cuda")


@pytest.mark.slow
def test_a_batch_decodes_like_single_images(deca, astronaut_crop):
    """BatchNorm in eval mode and per-item rendering: batching changes nothing but float rounding."""
    image = astronaut_crop[0]
    batch = torch.cat([image, torch.flip(image, dims=[3]), image * 0.8])
    codes = deca.encode(batch)
    opdict, visdict = deca.decode(codes)
    for k in range(3):
        single = deca.encode(batch[k : k + 1])
        assert torch.allclose(single["shape"][0], codes["shape"][k], atol=1e-4)
        op1, vis1 = deca.decode(single)
        assert torch.allclose(op1["verts"][0], opdict["verts"][k], atol=1e-5)
        assert torch.allclose(op1["landmarks3d"][0], opdict["landmarks3d"][k], atol=1e-5)
        assert (vis1["shape_images"][0] - visdict["shape_images"][k]).abs().gt(1e-3).float().mean() < 1e-3


def test_windowed_rendering_of_large_views_equals_the_full_render(deca, decoded, monkeypatch):
    """render_orig on a large photo rasterizes only the mesh's box; the pasted result equals a full render.

    Pixel centres are computed in the box, so float32 barycentrics of the tiniest triangles (eyeballs, a few
    pixels wide) differ in the last digits and an occasional near-tie in depth flips."""
    from decaenv.runtime import renderer

    codedict, _, opdict, _ = decoded
    h, w = 600, 900
    trans = opdict["trans_verts"].clone()
    trans[..., :2] = trans[..., :2] * 0.3 + torch.tensor([0.2, -0.1])  # a small head off-centre
    background = torch.rand(2, 3, h, w)
    ramp = torch.linspace(0, 1, 256)
    albedo = torch.stack([ramp[None].expand(256, -1), ramp[:, None].expand(-1, 256), torch.full((256, 256), 0.5)])
    assert renderer.render_window(trans, h, w) is not None
    args = (opdict["verts"], trans, albedo[None].repeat(2, 1, 1, 1), h, w, background, opdict["uv_detail_normals"])
    windowed = deca.render.render_views(*args)
    monkeypatch.setattr(renderer, "WINDOW_MIN_PIXELS", 10**9)
    full = deca.render.render_views(*args)

    def share_differing(a, b, tol):
        assert a.shape == b.shape
        return (a - b).abs().gt(tol).float().mean().item()

    assert share_differing(windowed["ops"].alpha_images, full["ops"].alpha_images, 0.5) < 1e-4
    outside = full["ops"].alpha_images == 0
    assert torch.equal(windowed["ops"].images.masked_select(outside), full["ops"].images.masked_select(outside))
    for key in ("images", "albedo_images", "normal_images", "grid"):
        assert share_differing(getattr(windowed["ops"], key), getattr(full["ops"], key), 2e-2) < 2e-3, key
    for key in ("shape_images", "shape_detail_images"):
        assert share_differing(windowed[key], full[key], 2e-2) < 2e-3, key


@pytest.mark.slow  # a whole DECA run over several images
def test_testdata_and_run_like_decalib(deca, tmp_path):
    """DECA's dataset dict and `DECA.run` (crop from a landmark file, so no detector weights are needed)."""
    import skimage.data
    from PIL import Image

    from decaenv.runtime import TestData

    Image.fromarray(skimage.data.astronaut()).save(tmp_path / "face.png")
    corners = np.array([[177.0, 82.0], [272.0, 178.0]])
    np.savetxt(tmp_path / "face.txt", np.repeat(corners, 34, axis=0))
    data = TestData(str(tmp_path), iscrop=True, face_detector="none")
    item = data[0]
    assert len(data) == 1 and item["imagename"] == "face"
    assert item["image"].shape == (3, 224, 224) and item["tform"].dtype == torch.float32
    assert item["original_image"].shape == (3, 512, 512) and float(item["original_image"].max()) <= 1.0
    opdict, visdict = deca.run(tmp_path / "face.png", detector="none")
    assert opdict["verts"].shape == (1, 5023, 3) and visdict["inputs"].shape == (1, 3, 224, 224)


def test_save_obj_writes_decas_files_beside_the_name(deca, decoded, tmp_path):
    opdict = decoded[2]
    deca.save_obj(str(tmp_path / "out" / "face.obj"), opdict)
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["face.mtl", "face.obj", "face.png", "face_detail.obj", "face_normals.png"]
    assert (tmp_path / "out" / "face.obj").read_text().startswith("mtllib face.mtl")


def test_the_model_resolves_its_data_dir_and_rasterizer_once(deca, synthetic_data_dir):
    from pathlib import Path

    from decaenv.paths import DataDir
    from decaenv.runtime.rasterizer.backends import Backend

    assert isinstance(deca.data_dir, DataDir) and deca.data_dir.path == Path(synthetic_data_dir).resolve()
    assert deca.cfg.data_dir == str(deca.data_dir.path)
    assert isinstance(deca.rasterizer, Backend) and deca.rasterizer.name == "torch"
    assert deca.render.backend is deca.rasterizer  # handed down as the object, not a name to resolve again


def test_a_renderer_given_a_name_resolves_it_once_per_device_type(deca, synthetic_data_dir, monkeypatch):
    from decaenv.runtime.assets import load_topology
    from decaenv.runtime.rasterizer import backends
    from decaenv.runtime.renderer import Renderer

    topology = load_topology(synthetic_data_dir / "head_template.obj", deca.flame.v_template.shape[0])
    renderer = Renderer(topology, backend="torch")
    first = renderer.backend_for(torch.device("cpu"))
    monkeypatch.setattr(backends, "choose_backend", lambda *a, **k: pytest.fail("resolved again"))
    assert renderer.backend_for(torch.device("cpu")) is first and first.name == "torch"
    assert renderer.rasterize(torch.zeros(1, topology.faces.max() + 1, 3), 8, 8).backend == "torch"
    assert deca.render.backend_for(torch.device("cpu")) is deca.rasterizer


def test_landmark_panels_drawn_later_are_the_same_panels(deca, decoded):
    """`views(landmark_panels=False)` + `with_landmark_panels` (what the pipeline does, in its writing thread)
    gives DECA's visdict: the same panels, in the same order."""
    from decaenv.runtime.vis import with_landmark_panels

    codedict, _, _, _ = decoded
    with torch.no_grad():
        geometry = deca.geometry(codedict)
        detail = deca.detail(codedict, geometry["verts"], geometry["albedo"])
        additions, now = deca.views(geometry, detail, codedict["images"], 224, 224, texture=False)
        _, later = deca.views(geometry, detail, codedict["images"], 224, 224, texture=False, landmark_panels=False)
    assert list(later) == ["inputs", "shape_images", "shape_detail_images"]
    later = with_landmark_panels(later, geometry["landmarks2d"], additions["landmarks3d"])
    assert list(later) == list(now) == ["inputs", "landmarks2d", "landmarks3d", "shape_images", "shape_detail_images"]
    assert all(torch.equal(later[k], now[k]) for k in now)
    assert not torch.equal(now["landmarks2d"], now["inputs"])  # something was drawn


def test_a_run_writes_the_vis_grid_with_its_landmark_panels(deca, tmp_path):
    """The pipeline leaves the landmark panels to its writer: the saved grid is DECA's five panels, and a
    direct `save` after `run_model` (the self-test's way) draws them too."""
    import skimage.data
    from PIL import Image

    from decaenv.runtime.inputs import Item
    from decaenv.runtime.pipeline import Reconstructor
    from decaenv.runtime.run_types import ReconstructOptions
    from decaenv.runtime.vis import visualize_grid

    photo = tmp_path / "face.png"
    Image.fromarray(skimage.data.astronaut()).resize((256, 256)).save(photo)
    options = ReconstructOptions(inputs=[photo], out_dir=tmp_path / "out", iscrop=False, save=["vis"], device="cpu")
    runner = Reconstructor(options, deca=deca)
    prepared = runner.prepare(Item(name="face", source=photo), lambda outcome: None)
    result = runner.run_model([prepared])
    assert "landmarks2d" not in result["visdict"]
    outcome = runner.save(result, 0, *prepared)
    assert outcome.status == "ok" and "panel_landmarks" not in result
    assert list(result["visdict"])[:3] == ["inputs", "landmarks2d", "landmarks3d"]
    with torch.no_grad():
        _, reference = deca.views(
            result["geometry"], result["detail"], result["codedict"]["images"], 224, 224, texture=False
        )
    expected = visualize_grid({k: v[:1] for k, v in reference.items()})
    written = np.asarray(Image.open(tmp_path / "out" / "face_vis.jpg").convert("RGB")).astype(int)
    assert written.shape == expected.shape == (224, 5 * 224, 3)
    assert np.abs(written - expected).mean() < 2  # JPEG quality 95
