"""`decaenv animate` as a library call: DECA's `demo_teaser.py` — the reconstructed head turning and going
through an expression sequence, written as an MP4 (PyAV) and an animated GIF.

DECA's sequence (demo_teaser): the head turns in yaw 0 → +max → −max → 0 in `yaw_step` degrees (24 frames
for DECA's 30/5) with the camera at `cam = [8, 0, 0]` (centred, fixed scale); the expression panel, at zero
global pose and the same camera, opens the jaw from 0 to `max_jaw` degrees in `jaw_step` steps (Euler x, DECA's
XYZ convention), then — with `--expressions` — takes the expression and jaw pose of each expression frame (as
DECA, the last jaw frame is replaced by the first expression). Every frame shows, per render style (rows):
input | reconstruction | head turn | expression. The shorter of the two sequences holds its last frame (the head
turn loops), so a video has max(turn, expression) frames.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from decaenv.errors import DecaenvError, InputError, UsageError
from decaenv.paths import DataDir
from decaenv.runtime.run_types import ItemOutcome, RunSummary

log = logging.getLogger("decaenv")
#: DECA's teaser camera for the novel views: scale 8, no translation.
TEASER_CAM = (8.0, 0.0, 0.0)
STYLES = ("shape", "detail", "texture")
FORMATS = ("mp4", "gif")


@dataclass
class AnimateOptions:
    """Everything `decaenv animate` takes (see docs/commands/animate.md)."""

    inputs: Sequence[Path]
    out_dir: Path
    expressions: Sequence[Path] = ()
    data_dir: Optional[DataDir] = None
    device: str = "auto"
    batch_size: int = 8
    detector: str = "auto"
    rasterizer: str = "auto"
    iscrop: bool = True
    use_tex: bool = False
    extract_tex: bool = True
    tex_type: str = "BFM"
    sample_step: int = 1
    max_yaw: int = 30
    yaw_step: int = 5
    max_jaw: int = 30
    jaw_step: int = 2
    styles: Optional[Sequence[str]] = None
    formats: Sequence[str] = FORMATS
    fps: float = 10.0
    gif_scale: float = 0.6
    trusted_sha256: Optional[str] = None
    precision: str = "fp32"  # the model options of `model_setup.build_deca` (DECA's eager fp32 networks)
    graph: str = "off"


def yaw_angles(max_yaw: int = 30, step: int = 5) -> List[int]:
    """DECA's head-turn sequence in degrees: 0 → max, max → −max, −max → 0 (end points once)."""
    if max_yaw <= 0 or step <= 0:
        raise UsageError(f"--max-yaw and --yaw-step must be positive, got {max_yaw} and {step}")
    return list(range(0, max_yaw, step)) + list(range(max_yaw, -max_yaw, -step)) + list(range(-max_yaw, 0, step))


def jaw_angles(max_jaw: int = 30, step: int = 2) -> List[int]:
    """DECA's jaw-opening sequence in degrees: 0, step, …, max."""
    if max_jaw < 0 or step <= 0:
        raise UsageError(f"--max-jaw must be ≥ 0 and --jaw-step positive, got {max_jaw} and {step}")
    return list(range(0, max_jaw + 1, step))


def euler_to_axis_angle(degrees):
    """DECA's `batch_euler2axis(deg2rad(·))`: intrinsic x-y-z Euler angles in degrees → axis-angle.

    Args:
        degrees: (N, 3) tensor. Returns: (N, 3) float32 tensor on the same device.
    """
    import torch
    from scipy.spatial.transform import Rotation

    rotvec = Rotation.from_euler("XYZ", degrees.detach().cpu().double().numpy(), degrees=True).as_rotvec()
    return torch.from_numpy(rotvec).to(degrees.device, torch.float32)


def _repeat(codes: Dict, count: int) -> Dict:
    return {k: v[:1].expand(count, *v.shape[1:]).clone() for k, v in codes.items()}


def head_turn_codes(codes: Dict, yaws: Sequence[float]) -> Dict:
    """The source's codes turned to each yaw (global pose), at DECA's teaser camera. Batch len(yaws)."""
    import torch

    out = _repeat(codes, len(yaws))
    euler = torch.zeros(len(yaws), 3, device=out["pose"].device)
    euler[:, 1] = torch.tensor([float(y) for y in yaws])
    out["pose"][:, :3] = euler_to_axis_angle(euler)
    out["cam"][:] = torch.tensor(TEASER_CAM, device=out["cam"].device)
    return out


def expression_codes(codes: Dict, jaws: Sequence[float], targets: Optional[Dict] = None) -> Dict:
    """DECA's expression panel: zero global pose, teaser camera; the jaw opening (source expression), then
    each target's `exp` and jaw pose (the last jaw frame replaced by the first target, as DECA)."""
    import torch

    jaw_frames = list(jaws) if targets is None or targets["exp"].shape[0] == 0 else list(jaws)[:-1]
    n_targets = 0 if targets is None else targets["exp"].shape[0]
    out = _repeat(codes, len(jaw_frames) + n_targets)
    out["pose"][:, :3] = 0.0
    out["cam"][:] = torch.tensor(TEASER_CAM, device=out["cam"].device)
    if jaw_frames:
        euler = torch.zeros(len(jaw_frames), 3, device=out["pose"].device)
        euler[:, 0] = torch.tensor([float(j) for j in jaw_frames])
        out["pose"][: len(jaw_frames), 3:] = euler_to_axis_angle(euler)
    if targets is not None and n_targets:
        out["exp"][len(jaw_frames) :] = targets["exp"]
        out["pose"][len(jaw_frames) :, 3:] = targets["pose"][:, 3:]
    return out


def render_styles(deca, codes: Dict, styles: Sequence[str], uv_texture=None) -> Dict[str, "object"]:
    """Decode codes and render each style: shape (coarse grey), detail (grey with detail normals), texture
    (`uv_texture` mapped on the mesh). Returns {style: (B, 3, 224, 224)} on the CPU."""
    import torch

    from decaenv.runtime.timing import maybe_stage

    with torch.no_grad():
        geometry = deca.geometry(codes)
        detail = deca.detail(codes, geometry["verts"], geometry["albedo"])
        batch = geometry["verts"].shape[0]
        albedo = geometry["albedo"] if uv_texture is None else uv_texture[:1].expand(batch, -1, -1, -1)
        size = deca.image_size
        with maybe_stage(deca.timer, "render"):
            views = deca.render.render_views(
                geometry["verts"],
                geometry["trans_verts"],
                albedo,
                size,
                size,
                None,
                uv_detail_normals=detail["uv_detail_normals"],
                normals=detail["normals"],
            )
    picked = {"shape": views["shape_images"], "detail": views["shape_detail_images"], "texture": views["ops"].images}
    return {s: picked[s].detach().float().cpu() for s in styles}


def render_batched(deca, codes: Dict, styles: Sequence[str], uv_texture, batch_size: int) -> Dict[str, "object"]:
    """`render_styles` in chunks of `batch_size`, concatenated."""
    import torch

    count = codes["exp"].shape[0]
    parts: Dict[str, list] = {s: [] for s in styles}
    for start in range(0, count, batch_size):
        chunk = {k: v[start : start + batch_size] for k, v in codes.items()}
        for style, images in render_styles(deca, chunk, styles, uv_texture).items():
            parts[style].append(images)
    return {s: torch.cat(v) for s, v in parts.items()}


def compose_frames(inputs, recon: Dict, turn: Dict, expr: Dict, styles: Sequence[str]) -> List[np.ndarray]:
    """The teaser frames: per style a row input | reconstruction | turn | expression. (H, W, 3) uint8 each."""
    from decaenv.runtime.vis import visualize_grid

    n_turn, n_expr = turn[styles[0]].shape[0], expr[styles[0]].shape[0]
    frames = []
    for f in range(max(n_turn, n_expr)):
        rows = [
            visualize_grid(
                {
                    "inputs": inputs,
                    "reconstruction": recon[s],
                    "pose": turn[s][f % n_turn][None],
                    "exp": expr[s][min(f, n_expr - 1)][None],
                }
            )
            for s in styles
        ]
        frames.append(np.concatenate(rows, 0))
    return frames


class Animator:
    """One `animate` run: expression codes read once, then every input animated.

    Args:
        options: the run. deca: an already built model (else built from the options).
    """

    def __init__(self, options: AnimateOptions, deca=None):
        from decaenv.runtime.faces import make_detector
        from decaenv.runtime.model_setup import build_deca
        from decaenv.runtime.run_types import prepare_out_dir
        from decaenv.runtime.timing import StageTimer

        self.options = options
        self.yaws = yaw_angles(options.max_yaw, options.yaw_step)
        self.jaws = jaw_angles(options.max_jaw, options.jaw_step)
        self.styles = self._styles(options)
        self.formats = [f.lower() for f in options.formats]
        bad = [f for f in self.formats if f not in FORMATS]
        if bad or not self.formats:
            raise UsageError(f"unknown --format {', '.join(bad) or '(none)'}", hint="use mp4, gif or mp4,gif")
        if options.fps <= 0 or not 0 < options.gif_scale <= 4:
            raise UsageError("--fps must be positive and --gif-scale in (0, 4]")
        if options.batch_size < 1 or options.sample_step < 1:
            raise UsageError("--batch-size and --sample-step must be at least 1")
        self.out_dir = prepare_out_dir(options.out_dir)
        self.deca = deca if deca is not None else build_deca(options)
        self.timer = StageTimer(str(self.deca.device))
        self.deca.timer = self.timer
        self.detector = make_detector(options.iscrop, options.detector, str(self.deca.device), options.data_dir)
        self.n_targets = 0

    @property
    def frame_count(self) -> int:
        """Frames per animation (known once the expression codes are read)."""
        n_expr = len(self.jaws) if not self.n_targets else len(self.jaws) - 1 + self.n_targets
        return max(len(self.yaws), n_expr)

    @staticmethod
    def _styles(options: AnimateOptions) -> Tuple[str, ...]:
        if options.styles is None:
            return ("shape", "detail", "texture") if options.use_tex else ("shape", "detail")
        styles = tuple(s.strip().lower() for s in options.styles if s.strip())
        bad = [s for s in styles if s not in STYLES]
        if bad or not styles:
            raise UsageError(
                f"unknown --render style {', '.join(bad) or '(none)'}",
                hint="use a comma list of shape, detail, texture",
            )
        return styles

    @property
    def _detector(self):
        return self.detector.detector if self.detector else None

    def expression_targets(self, report) -> Optional[Dict]:
        """The codes of every `--expressions` face (None without the option); failures are reported."""
        import torch

        from decaenv.runtime.faces import encode_faces, prepare
        from decaenv.runtime.inputs import batched, expand_inputs

        if not self.options.expressions:
            return None
        parts: List[Dict] = []
        for batch in batched(
            expand_inputs(self.options.expressions, self.options.sample_step), self.options.batch_size
        ):
            faces = []
            for item in batch:
                try:
                    with self.timer.stage("detect"):
                        faces += prepare(item, item.name, iscrop=self.options.iscrop, detector=self._detector)
                except InputError as exc:
                    report(ItemOutcome(f"expressions:{item.name}", item.label, "failed", exc.one_line()))
            if faces:
                with torch.no_grad():
                    codes = encode_faces(self.deca, faces)
                parts.append({k: codes[k] for k in ("exp", "pose")})
        if not parts:
            raise InputError("no face could be read from --expressions", hint="check the files printed above")
        return {k: torch.cat([p[k] for p in parts]) for k in ("exp", "pose")}

    def run(self, on_item: Optional[Callable[[ItemOutcome], None]] = None) -> RunSummary:
        """Animate every input; `on_item` is called after each."""
        from decaenv.runtime.inputs import expand_inputs

        start = time.perf_counter()
        summary = RunSummary(
            device=str(self.deca.device),
            rasterizer=self.deca.rasterizer.name,
            detector=self.detector.name if self.detector else "none (--iscrop false)",
            out_dir=str(self.out_dir),
        )

        def report(outcome: ItemOutcome) -> None:
            summary.items.append(outcome)
            if on_item is not None:
                on_item(outcome)

        targets = self.expression_targets(report)
        self.n_targets = 0 if targets is None else targets["exp"].shape[0]
        for item in expand_inputs(self.options.inputs, 1):
            report(self.animate_item(item, targets))
        summary.seconds = time.perf_counter() - start
        summary.stages = self.timer.as_dict()
        return summary

    def frames_for(self, face, targets: Optional[Dict]) -> List[np.ndarray]:
        """The teaser frames of one face."""
        import torch

        from decaenv.runtime.faces import encode_faces

        deca, size = self.deca, self.options.batch_size
        with torch.no_grad():
            codes = encode_faces(deca, [face])
            uv_texture = None
            if "texture" in self.styles:
                geometry = deca.geometry(codes)
                detail = deca.detail(codes, geometry["verts"], geometry["albedo"])
                uv_texture = deca.extract_texture(codes["images"], geometry["trans_verts"], detail)
        recon = render_styles(deca, codes, self.styles, uv_texture)
        turn = render_batched(deca, head_turn_codes(codes, self.yaws), self.styles, uv_texture, size)
        expr = render_batched(deca, expression_codes(codes, self.jaws, targets), self.styles, uv_texture, size)
        return compose_frames(codes["images"].cpu(), recon, turn, expr, self.styles)

    def animate_item(self, item, targets: Optional[Dict]) -> ItemOutcome:
        """Frames of one input written as `<name>_teaser.mp4` / `.gif`."""
        from decaenv.runtime.faces import prepare
        from decaenv.runtime.video_out import write_gif, write_mp4

        try:
            with self.timer.stage("detect"):
                face = prepare(item, item.name, iscrop=self.options.iscrop, detector=self._detector)[0]
        except InputError as exc:
            return ItemOutcome(item.name, item.label, "failed", exc.one_line())
        try:
            frames = self.frames_for(face, targets)
        except RuntimeError as exc:
            return ItemOutcome(
                face.name,
                item.label,
                "failed",
                f"rendering failed: {' '.join(str(exc).split())[:300]}",
                crop=face.crop.source,
            )
        written = []
        try:
            with self.timer.stage("save"):
                if "mp4" in self.formats:
                    written.append(write_mp4(self.out_dir / f"{face.name}_teaser.mp4", frames, self.options.fps))
                if "gif" in self.formats:
                    written.append(
                        write_gif(
                            self.out_dir / f"{face.name}_teaser.gif", frames, self.options.fps, self.options.gif_scale
                        )
                    )
        except (OSError, DecaenvError) as exc:
            for path in written:
                path.unlink(missing_ok=True)
            text = exc.one_line() if isinstance(exc, DecaenvError) else (exc.strerror or str(exc))
            return ItemOutcome(
                face.name,
                item.label,
                "failed",
                f"cannot write the animation of {face.name}: {text}",
                crop=face.crop.source,
            )
        return ItemOutcome(
            face.name, item.label, "ok", "", [str(p.relative_to(self.out_dir)) for p in written], crop=face.crop.source
        )


def animate(options: AnimateOptions, on_item: Optional[Callable[[ItemOutcome], None]] = None) -> RunSummary:
    """Run `decaenv animate` (see `Animator`)."""
    return Animator(options).run(on_item)
