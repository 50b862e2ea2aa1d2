"""The DECA model: encoders, FLAME, detail decoder and renderer, DECA-shaped (deca-spec §1-§6, §6.3b).

`DECA(data_dir, device=..., rasterizer=...)` or DECA's own `DECA(config=cfg, device=...)`; `encode` returns
DECA's `codedict`, `decode` DECA's `(opdict, visdict)`, with the same keys. Fixed here: nothing is mutated in
place (DECA shifts `trans_verts` z and converts landmarks to pixels in place, §8.4), every tensor leaves
`decode` detached, and the checkpoint loads strictly.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Iterator, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from decaenv.errors import DataError, UsageError
from decaenv.paths import DataDir
from decaenv.runtime import camera, mesh
from decaenv.runtime.config import TEX_TYPES, DecaConfig, get_cfg_defaults
from decaenv.runtime.decoders import DetailGenerator, detail_latent
from decaenv.runtime.encoder_pair import PAIR_GRAPHS, EncoderPair
from decaenv.runtime.encoders import ResnetEncoder, split_codes
from decaenv.runtime.timing import StageTimer, maybe_stage
from decaenv.runtime.vis import visualize_grid, with_landmark_panels

if TYPE_CHECKING:
    from decaenv.runtime.fast import FastNetworks
    from decaenv.runtime.rasterizer.backends import Backend

log = logging.getLogger("decaenv")
#: Visibility threshold on the projected normal's z at the 68 landmarks (deca-spec §4.3).
VISIBLE_NZ = 0.1
#: Grey level outside the face/eye mask of the extracted texture.
UV_GREY = 0.7


def mps_available() -> bool:
    """True when torch can use Apple's Metal GPU (MPS: Apple silicon, an arm64 macOS build of torch)."""
    backend = getattr(torch.backends, "mps", None)
    try:
        return bool(backend is not None and backend.is_available())
    except Exception:  # noqa: BLE001 - a broken MPS runtime means "not available"
        return False


def resolve_device(device: Optional[str]) -> torch.device:
    """ "auto" → CUDA when usable, else Apple's MPS when usable, else CPU; an explicit CUDA or MPS device must
    be usable. On MPS the rasterizer runs on the CPU (see `decaenv.runtime.rasterizer.backends`).

    Raises:
        UsageError: an unknown device, or CUDA/MPS requested but not available.
    """
    name = (device or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps_available() else "cpu")
    try:
        chosen = torch.device(name)
    except RuntimeError as exc:
        raise UsageError(f"unknown device {device!r}", hint="use auto, cpu, cuda, cuda:N or mps") from exc
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(
            f"device {device} requested but torch sees no usable CUDA GPU "
            f"(torch {torch.__version__}, CUDA build {torch.version.cuda})",
            hint="use --device cpu (or auto), or install a CUDA build of torch",
        )
    if chosen.type == "mps" and not mps_available():
        raise UsageError(
            f"device {device} requested but torch sees no usable Apple GPU (MPS) (torch {torch.__version__})",
            hint="use --device cpu (or auto); MPS needs Apple silicon, macOS 12.3+ and an arm64 torch",
        )
    if chosen.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"device {device} is not supported", hint="use cpu, cuda or mps")
    return chosen


def resolve_rasterizer(requested: Optional[str], device: torch.device) -> Backend:
    """The rasterizer backend for a device, resolved once: decaenv names, or DECA's `rasterizer_type`
    ("standard" → the compiled rasterizer, "pytorch3d"). The model passes the result down to its renderer."""
    from decaenv.runtime.rasterizer.backends import get_backend

    name = (requested or "auto").lower()
    if name == "standard":
        name = "auto"
    return get_backend(name, device)


@contextmanager
def ieee_fp32(device: torch.device) -> Iterator[None]:
    """No TF32 in convolutions and matmuls on CUDA (torch enables it for cuDNN convs by default on Ampere and
    newer, which moves DECA's codes by ~1e-3; DECA's torch 1.6 had no TF32). Restores the flags after."""
    if device.type != "cuda":
        yield
        return
    old = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


class DECA(nn.Module):
    """DECA inference.

    Args:
        data_dir: the DECA data folder (or a `DataDir` the caller resolved), or a `DecaConfig` (DECA's
            `DECA(config, device)` order).
        device: "auto", "cpu", "cuda", "cuda:N" or "mps".
        rasterizer: rasterizer backend or DECA's `rasterizer_type` ("auto", "standard", "pytorch3d", …); None
            takes `config.rasterizer_type`.
        config: a `DecaConfig` (`decaenv.runtime.config.cfg`-style); None = defaults.
        trusted_sha256: sha256 of a checkpoint to load even if torch's safe loader refuses it.
    Raises:
        DataError / UnsafeContentError: a data file is missing, damaged or of the wrong layout.
        UsageError: an unusable device, rasterizer or option.
    """

    # Buffers registered in __init__ (declared here for type checkers).
    uv_face_eye_mask: torch.Tensor
    fixed_uv_dis: torch.Tensor
    _dense_faces_in_mask: torch.Tensor

    def __init__(
        self,
        data_dir: Union[None, str, os.PathLike, DataDir, DecaConfig] = None,
        device: Optional[str] = None,
        rasterizer: Optional[str] = None,
        config: Optional[DecaConfig] = None,
        trusted_sha256: Optional[str] = None,
    ):
        super().__init__()
        if isinstance(data_dir, DecaConfig):
            config, data_dir = data_dir, None
        cfg = (config or get_cfg_defaults()).clone()
        if data_dir is not None:
            cfg.data_dir = data_dir if isinstance(data_dir, DataDir) else os.fspath(data_dir)
        #: The data dir, resolved once here (path and where it came from); every data file is read from it.
        self.data_dir = cfg.resolve_data_dir()
        cfg.data_dir = str(self.data_dir.path)
        self.cfg = cfg
        self.device = resolve_device(device if device is not None else cfg.device)
        self.image_size = cfg.dataset.image_size
        self.uv_size = cfg.model.uv_size
        #: The rasterizer backend, resolved once for `device` (name, reason, kernel) and handed to the renderer.
        self.rasterizer = resolve_rasterizer(rasterizer or cfg.rasterizer_type, self.device)
        self.timer: Optional[StageTimer] = None
        self.fast: Optional[FastNetworks] = None  # set by `accelerate`
        self._pair: Optional[EncoderPair] = None  # the encoders side by side (`_encoder_pair`), made on first use
        self._check_options()
        self._create_model(trusted_sha256)
        self._setup_renderer()
        self.to(self.device)

    # -- construction ------------------------------------------------------------------------------
    def _data_path(self, attribute: str) -> Path:
        """The file of a config path attribute, in the data dir resolved at construction."""
        return self.cfg.data_path(attribute, self.data_dir.path)

    def _check_options(self) -> None:
        model = self.cfg.model
        if model.jaw_type != "aa":
            raise UsageError(f"jaw_type {model.jaw_type!r} is not supported", hint="use 'aa' (the released model's)")
        if model.tex_type not in TEX_TYPES:
            raise UsageError(f"tex_type {model.tex_type!r} is not supported", hint="use BFM or FLAME")
        sizes = (model.n_shape, model.n_tex, model.n_exp, model.n_pose, model.n_cam, model.n_light, model.n_detail)
        if sizes != (100, 50, 50, 6, 3, 27, 128) or self.image_size != 224:
            raise UsageError(
                "the code sizes and crop size must be DECA's (100/50/50/6/3/27, 128, 224): the "
                "released checkpoint fixes them"
            )

    def _create_model(self, trusted_sha256: Optional[str]) -> None:
        from decaenv.loaders.flame import load_flame, preferred_flame_file
        from decaenv.runtime.flame import FLAME, load_landmark_embedding
        from decaenv.runtime.model_files import load_checkpoint, load_strict

        model = self.cfg.model
        self.param_dict = {name: getattr(model, "n_" + name) for name in model.param_list}
        self.n_param = sum(self.param_dict.values())
        self.n_detail = model.n_detail
        self.n_cond = model.n_exp + 3
        # No random initialisation (init=False): load_strict below fills every parameter and buffer, or raises.
        self.E_flame = ResnetEncoder(outsize=self.n_param, init=False)
        self.E_detail = ResnetEncoder(outsize=self.n_detail, init=False)
        self.D_detail = DetailGenerator(latent_dim=self.n_detail + self.n_cond, out_scale=model.max_z, init=False)
        ckpt_path = self._data_path("pretrained_modelpath")
        state = load_checkpoint(ckpt_path, trusted_sha256=trusted_sha256)
        for name in ("E_flame", "E_detail", "D_detail"):
            load_strict(getattr(self, name), state[name], name, ckpt_path)
        del state
        flame_path = (
            Path(model.flame_model_path) if model.flame_model_path else preferred_flame_file(self.data_dir.path)
        )
        embedding = load_landmark_embedding(self._data_path("flame_lmk_embedding_path"))
        self.flame = FLAME(load_flame(flame_path), embedding, model.n_shape, model.n_exp)
        self.flametex = None
        if model.use_tex:
            from decaenv.runtime.texture import FLAMETex

            self.flametex = FLAMETex(
                self.cfg.texture_path(self.data_dir.path), model.tex_type, model.n_tex, self.uv_size
            )
        self.eval()

    def _setup_renderer(self) -> None:
        from decaenv.runtime.assets import load_topology, load_uv_assets
        from decaenv.runtime.renderer import Renderer

        topology_path = self._data_path("topology_path")
        topology = load_topology(topology_path, self.flame.v_template.shape[0])
        if not np.array_equal(topology.faces, self.flame.faces_tensor.numpy()):
            log.info("head_template.obj's faces differ from FLAME's; rendering with the template's (as DECA)")
        self.render = Renderer(topology, self.image_size, self.uv_size, backend=self.rasterizer)
        uv = load_uv_assets(
            self._data_path("face_eye_mask_path"),
            self._data_path("fixed_displacement_path"),
            self._data_path("dense_template_path"),
            topology,
            topology_path,
            self.uv_size,
        )
        self.register_buffer("uv_face_eye_mask", torch.from_numpy(uv.face_eye_mask)[None, None], persistent=False)
        self.register_buffer("fixed_uv_dis", torch.from_numpy(uv.fixed_displacement), persistent=False)
        inside = self.uv_face_eye_mask.reshape(-1) > 0
        dense_faces = self.render.dense_faces[0]
        self.register_buffer("_dense_faces_in_mask", dense_faces[inside[dense_faces].any(dim=1)], persistent=False)
        self.dense_template = uv.dense_template
        self.dense_template_source = uv.dense_source

    # -- encode ------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, images: torch.Tensor, use_detail: bool = True) -> Dict[str, torch.Tensor]:
        """Codes of cropped images.

        Args:
            images: (B, 3, 224, 224) float32 RGB in [0, 1], DECA crops.
        Returns:
            codedict: shape (B, 100), tex (B, 50), exp (B, 50), pose (B, 6), cam (B, 3), light (B, 9, 3),
            images (the input), detail (B, 128) when `use_detail`.
        """
        if images.dim() != 4 or tuple(images.shape[1:]) != (3, self.image_size, self.image_size):
            raise UsageError(
                f"encode expects (B, 3, {self.image_size}, {self.image_size}) crops, got {tuple(images.shape)}"
            )
        images = images.to(self.device, torch.float32)
        nets = self.fast or self
        with maybe_stage(self.timer, "encode"), ieee_fp32(self.device):
            pair = self._encoder_pair() if use_detail else None
            detail: Optional[torch.Tensor] = None
            if pair is not None:
                code, detail = pair(nets.E_flame, nets.E_detail, images)
            else:
                code = nets.E_flame(images)
                if use_detail:
                    detail = nets.E_detail(images)
            codedict = split_codes(code)
            codedict["images"] = images
            if detail is not None:
                codedict["detail"] = detail
        return codedict

    def _encoder_pair(self) -> Optional[EncoderPair]:
        """The side-by-side runner of the two encoders (`decaenv.runtime.encoder_pair`) for the packed graph on a
        CPU; None for DECA's eager modules (`--graph off`), other graphs and GPUs."""
        if self.fast is None or self.device.type != "cpu" or self.fast.graph not in PAIR_GRAPHS:
            return None
        if self._pair is None:
            self._pair = EncoderPair()
        return self._pair

    def accelerate(self, precision: str = "fp32", graph: str = "auto") -> "DECA":
        """Run the three networks as fast inference graphs from now on (decaenv.runtime.fast): "fp32" computes
        the same function (codes within 1e-6 relative), "bf16" trades precision for speed. Returns self."""
        from decaenv.runtime.fast import build_fast

        self.fast = build_fast(self, precision, graph)
        return self

    @property
    def precision(self) -> str:
        """ "fp32" (eager or exact fast graphs) or "bf16"."""
        return self.fast.precision if self.fast is not None else "fp32"

    def decompose_code(self, code: torch.Tensor, num_dict: Optional[Dict[str, int]] = None) -> Dict[str, torch.Tensor]:
        """DECA's `decompose_code`: split a (B, 236) code vector (light reshaped to (B, 9, 3))."""
        return split_codes(code)

    # -- decode steps ------------------------------------------------------------------------------
    def geometry(self, codedict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """FLAME, albedo and the projection (deca-spec §6.3b steps 1-4).

        Returns:
            verts, trans_verts (B, 5023, 3), landmarks2d (B, 68, 2), landmarks3d (B, 68, 3),
            landmarks3d_world (B, 68, 3), albedo (B, 3, 256, 256).
        """
        with maybe_stage(self.timer, "flame"):
            verts, lmk2d, lmk3d = self.flame(codedict["shape"], codedict["exp"], codedict["pose"])
            batch = verts.shape[0]
            if self.flametex is not None:
                albedo = self.flametex(codedict["tex"])
            else:
                albedo = torch.zeros(batch, 3, self.uv_size, self.uv_size, device=verts.device)
            cam = codedict["cam"]
            return {
                "verts": verts,
                "trans_verts": camera.project(verts, cam),
                "landmarks2d": camera.project(lmk2d, cam)[:, :, :2],
                "landmarks3d": camera.project(lmk3d, cam),
                "landmarks3d_world": lmk3d.clone(),
                "albedo": albedo,
            }

    def detail(
        self,
        codedict: Dict[str, torch.Tensor],
        verts: torch.Tensor,
        albedo: torch.Tensor,
        iddict: Optional[Dict[str, torch.Tensor]] = None,
    ) -> Dict[str, torch.Tensor]:
        """Detail displacements → detail normals and the shaded UV texture (deca-spec §3, §6.5).

        Returns:
            uv_z (B, 1, 256, 256), normals (B, V, 3), uv_detail_normals (B, 3, 256, 256),
            uv_texture (B, 3, 256, 256), displacement_map (B, 1, 256, 256) = uv_z + fixed displacement.
        """
        with maybe_stage(self.timer, "detail"):
            source = codedict if iddict is None else iddict
            with maybe_stage(self.timer, "detail_net"), ieee_fp32(self.device):  # the forward alone (bench)
                uv_z = (self.fast or self).D_detail(detail_latent(source["pose"], source["exp"], codedict["detail"]))
            normals = mesh.vertex_normals(verts, self.render.faces[0])
            uv_detail_normals = self.displacement2normal(uv_z, verts, normals)
            if self.flametex is None:  # albedo is zero: so is the shaded texture
                uv_texture = torch.zeros_like(albedo)
            else:
                uv_texture = albedo * self.render.add_SHlight(uv_detail_normals, codedict["light"])
            return {
                "uv_z": uv_z,
                "normals": normals,
                "uv_detail_normals": uv_detail_normals,
                "uv_texture": uv_texture,
                "displacement_map": uv_z + self.fixed_uv_dis[None, None],
            }

    def displacement2normal(
        self, uv_z: torch.Tensor, coarse_verts: torch.Tensor, coarse_normals: torch.Tensor
    ) -> torch.Tensor:
        """Detail normals from displacements (deca-spec §6.5): displace the UV-grid surface along the coarse
        normals (uv_z masked, the fixed displacement not), take its vertex normals, blend outside the mask.

        Args:
            uv_z: (B, 1, S, S). coarse_verts, coarse_normals: (B, V, 3).
        Returns:
            (B, 3, S, S).
        """
        batch = uv_z.shape[0]
        # world2uv's maps are views of a texel-major buffer: one copy to planar makes every step below run on
        # contiguous memory (22 → 18 ms for a batch of 8 on 2 CPU threads, the same numbers)
        both = self.render.world2uv(torch.cat([coarse_verts, coarse_normals], dim=2), channels=6).contiguous()
        uv_coarse_vertices, uv_coarse_normals = both[:, :3], both[:, 3:]
        uv_detail_vertices = (
            uv_coarse_vertices
            + uv_z * self.uv_face_eye_mask * uv_coarse_normals
            + self.fixed_uv_dis[None, None] * uv_coarse_normals
        )
        dense_vertices = uv_detail_vertices.permute(0, 2, 3, 1).reshape(batch, -1, 3)
        # Only faces touching a texel inside the mask matter (the rest is multiplied by 0 below); every face
        # of such a texel is kept, in order, so its normal is summed exactly as over all faces.
        normals = mesh.vertex_normals(dense_vertices, self._dense_faces_in_mask)
        normals = normals.reshape(batch, self.uv_size, self.uv_size, 3).permute(0, 3, 1, 2).contiguous()
        return normals * self.uv_face_eye_mask + uv_coarse_normals * (1.0 - self.uv_face_eye_mask)

    def visofp(self, normals: torch.Tensor) -> torch.Tensor:
        """Landmark visibility: 1 where the projected normal at a full landmark has n_z < 0.1. (B, V, 3) → (B, 68,
        1)."""
        return (self.flame.seletec_3d68(normals)[:, :, 2:] < VISIBLE_NZ).float()

    def views(
        self,
        geometry: Dict[str, torch.Tensor],
        detail: Optional[Dict[str, torch.Tensor]],
        images: torch.Tensor,
        h: int,
        w: int,
        background: Optional[torch.Tensor] = None,
        *,
        rendering: bool = True,
        vis_lmk: bool = True,
        return_vis: bool = True,
        texture: bool = True,
        landmark_panels: bool = True,
    ):
        """Renders, landmark visibility, shape images and texture extraction (deca-spec §6.3b steps 6, 8-11).

        Args:
            geometry: `geometry()` output, already in the image space of `images` (crop or original).
            detail: `detail()` output or None. images: (B, 3, h, w) the image rendered over.
            texture: also extract `uv_texture_gt` (DECA does it with `return_vis`).
            landmark_panels: draw the visdict's landmark panels now; False leaves them to the caller
                (`vis.with_landmark_panels` with geometry's landmarks2d and opdict's landmarks3d: the pipeline
                draws them in its writing thread).
        Returns:
            (opdict additions, visdict or None).
        """
        with maybe_stage(self.timer, "render"):
            verts, trans_verts = geometry["verts"], geometry["trans_verts"]
            views = self.render.render_views(
                verts,
                trans_verts,
                geometry["albedo"],
                h,
                w,
                background,
                shapes=return_vis,
                uv_detail_normals=None if detail is None else detail["uv_detail_normals"],
                normals=None if detail is None else detail["normals"],
            )
            ops = views["ops"]
            out: Dict[str, torch.Tensor] = {}
            if rendering:
                out.update(
                    grid=ops.grid,
                    rendered_images=ops.images,
                    alpha_images=ops.alpha_images,
                    normal_images=ops.normal_images,
                    albedo_images=ops.albedo_images,
                )
            landmarks3d = geometry["landmarks3d"]
            if vis_lmk:
                landmarks3d = torch.cat([landmarks3d, self.visofp(ops.transformed_normals)], dim=2)
                out["landmarks3d"] = landmarks3d
            if texture:
                out["uv_texture_gt"] = self.extract_texture(images, trans_verts, detail)
            if not return_vis:
                return out, None
            visdict = {"inputs": images, "shape_images": views["shape_images"]}
            if "shape_detail_images" in views:
                visdict["shape_detail_images"] = views["shape_detail_images"]
            if self.flametex is not None:
                visdict["rendered_images"] = ops.images
            if landmark_panels:
                visdict = with_landmark_panels(visdict, geometry["landmarks2d"], landmarks3d)
            return out, visdict

    def extract_texture(
        self, images: torch.Tensor, trans_verts: torch.Tensor, detail: Optional[Dict[str, torch.Tensor]]
    ) -> torch.Tensor:
        """`uv_texture_gt` (deca-spec §6.7): the image sampled through the UV map of the projected mesh, blended
        with the model texture (use_tex) or grey outside the face/eye mask. Returns (B, 3, 256, 256)."""
        uv_pverts = self.render.world2uv(trans_verts)
        uv_gt = F.grid_sample(images, uv_pverts.permute(0, 2, 3, 1)[..., :2], mode="bilinear", align_corners=False)
        mask = self.uv_face_eye_mask
        if self.flametex is not None and detail is not None:
            if self.cfg.model.extract_tex:
                return uv_gt[:, :3] * mask + detail["uv_texture"][:, :3] * (1 - mask)
            return detail["uv_texture"][:, :3]
        return uv_gt[:, :3] * mask + torch.ones_like(uv_gt[:, :3]) * (1 - mask) * UV_GREY

    # -- decode (DECA's signature) -------------------------------------------------------------------
    @torch.no_grad()
    def decode(
        self,
        codedict: Dict[str, torch.Tensor],
        rendering: bool = True,
        iddict: Optional[Dict[str, torch.Tensor]] = None,
        vis_lmk: bool = True,
        return_vis: bool = True,
        use_detail: bool = True,
        render_orig: bool = False,
        original_image: Optional[torch.Tensor] = None,
        tform: Optional[torch.Tensor] = None,
    ):
        """DECA's `decode`: codes → `opdict` (and `visdict` with `return_vis`).

        Args:
            codedict: from `encode`. iddict: take jaw pose and expression for the detail decoder from it.
            render_orig: render at the original image size; needs `original_image` (B, 3, H, W) and
                `tform` (B, 3, 3) = (P⁻¹)ᵀ of the crop matrices (as DECA's demo passes).
        Returns:
            (opdict, visdict) when `return_vis`, else opdict (DECA's keys; see deca-spec §8.3).
        """
        geometry = self.geometry(codedict)
        opdict = {k: geometry[k] for k in ("verts", "trans_verts", "landmarks2d", "landmarks3d", "landmarks3d_world")}
        detail = None
        if use_detail:
            detail = self.detail(codedict, geometry["verts"], geometry["albedo"], iddict)
            opdict.update({k: detail[k] for k in ("uv_texture", "normals", "uv_detail_normals", "displacement_map")})
        images, h, w, background = codedict["images"], self.image_size, self.image_size, None
        view_geometry = geometry
        if render_orig and original_image is not None and tform is not None:
            h, w = original_image.shape[2:]
            view_geometry = self.to_original(geometry, tform.to(self.device), h, w)
            images = background = original_image.to(self.device, torch.float32)
        additions, visdict = self.views(
            view_geometry,
            detail,
            images,
            h,
            w,
            background,
            rendering=rendering,
            vis_lmk=vis_lmk,
            return_vis=return_vis,
            texture=return_vis,
        )
        opdict.update(additions)
        if self.flametex is not None:
            opdict["albedo"] = geometry["albedo"]
        return (opdict, visdict) if return_vis else opdict

    def to_original(self, geometry: Dict[str, torch.Tensor], tform: torch.Tensor, h: int, w: int):
        """Geometry with trans_verts and landmarks mapped into the original image's normalised space."""
        scale = [self.image_size, self.image_size]
        moved = dict(geometry)
        for key in ("trans_verts", "landmarks2d", "landmarks3d"):
            moved[key] = camera.transform_points(geometry[key], tform, scale, [h, w])
        return moved

    # -- DECA's helpers -------------------------------------------------------------------------------
    def visualize(self, visdict: Dict[str, torch.Tensor], size: int = 224, dim: int = 2) -> np.ndarray:
        """DECA's `visualize`: the panels side by side, as a BGR uint8 image (for `cv2.imwrite`, as DECA)."""
        return visualize_grid(visdict, size, dim)[:, :, ::-1].copy()

    def save_obj(self, filename: str, opdict: Dict[str, torch.Tensor]) -> None:
        """DECA's `save_obj` for batch element 0: `<name>.obj/.mtl/.png`, `<name>_normals.png`, `<name>_detail.obj`."""
        from decaenv.runtime.export import write_deca_obj

        write_deca_obj(self, filename, opdict, 0)

    def model_dict(self) -> Dict[str, Dict[str, torch.Tensor]]:
        """The three networks' state dicts (DECA's checkpoint layout)."""
        return {
            "E_flame": self.E_flame.state_dict(),
            "E_detail": self.E_detail.state_dict(),
            "D_detail": self.D_detail.state_dict(),
        }

    def run(self, imagepath: Union[str, os.PathLike], iscrop: bool = True, detector: str = "auto"):
        """DECA's `run`: crop one image, encode, decode. Returns (opdict, visdict)."""
        from decaenv.runtime.datasets import TestData

        data = TestData(str(imagepath), iscrop=iscrop, face_detector=detector, device=str(self.device))[0]
        codedict = self.encode(data["image"][None].to(self.device))
        return self.decode(codedict)

    def describe(self) -> str:
        """One line: device, rasterizer, texture model and dense template."""
        tex = f"texture {self.cfg.model.tex_type}" if self.flametex is not None else "no texture model"
        nets = self.fast.describe() if self.fast is not None else "fp32, eager modules"
        return (
            f"device {self.device}, rasterizer {self.rasterizer.name} ({self.rasterizer.reason}), {tex}, "
            f"dense template {self.dense_template_source}, networks {nets}"
        )


def check_data_dir(data_dir: Union[str, os.PathLike]) -> None:
    """Raise DataError early when the data dir lacks the user-supplied files (checkpoint, FLAME)."""
    from pathlib import Path

    from decaenv.deca_layout import missing_user_files

    folder = Path(data_dir)
    missing = missing_user_files(folder)
    if missing:
        raise DataError(
            f"data dir {folder} lacks {', '.join(missing)}",
            hint="run `decaenv fetch` (or "
            "`decaenv selftest --make-assets DIR` for synthetic weights) and pass --data-dir",
            path=folder,
        )
