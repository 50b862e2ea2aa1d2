"""The runtime's stages of `decaenv selftest`: model, reconstruct, outputs (see `decaenv.selftest`).

The photo is `skimage.data.astronaut()` (Eileen Collins, NASA, public domain), reconstructed through the
same pipeline as `decaenv reconstruct`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Protocol, Tuple, TypeVar

from decaenv.errors import DecaenvError
from decaenv.runtime.save_kinds import SAVE_KINDS

if TYPE_CHECKING:
    from decaenv.runtime.deca import DECA
    from decaenv.runtime.pipeline import Reconstructor

NAME = "astronaut"

_T = TypeVar("_T")


@dataclass
class StageContext:
    """What the self-test's stages hand on to each other: each field is set by the stage named beside it."""

    workdir: Path  # the run's scratch folder (removed at the end)
    data_dir: Optional[Path] = None  # "assets": the synthetic data dir
    deca: Optional[DECA] = None  # "model"
    runner: Optional[Reconstructor] = None  # "reconstruct": the pipeline that ran the photo
    prepared: Optional[Tuple[Any, ...]] = None  # "reconstruct": `Reconstructor.prepare`'s (name, item, crop, image)
    result: Optional[Dict[str, Any]] = None  # "reconstruct": `Reconstructor.run_model`'s dicts

    def need(self, value: Optional[_T], stage: str) -> _T:
        """`value`, set by `stage`; a stage runs only after the ones it needs passed (`decaenv.selftest.REQUIRES`)."""
        if value is None:
            raise RuntimeError(f"self-test stage {stage!r} has not run")
        return value


class StageOptions(Protocol):
    """What these stages read of `decaenv.selftest.SelftestOptions`."""

    @property
    def out_dir(self) -> Path: ...
    @property
    def device(self) -> str: ...


def model(ctx: StageContext, options: StageOptions) -> str:
    """Load DECA from the synthetic data dir: checkpoint strictly, FLAME without chumpy."""
    from decaenv.runtime import DECA

    start = time.perf_counter()
    data_dir = ctx.need(ctx.data_dir, "assets")
    deca = DECA(data_dir, device=options.device)
    ctx.deca = deca
    params = sum(p.numel() for net in (deca.E_flame, deca.E_detail, deca.D_detail) for p in net.parameters())
    return (
        f"checkpoint loaded strictly ({params:,} parameters), FLAME {deca.flame.v_template.shape[0]} vertices; "
        f"{deca.describe()}; {time.perf_counter() - start:.1f} s"
    )


def reconstruct(ctx: StageContext, options: StageOptions) -> str:
    """Detect, crop, encode and decode the astronaut photo."""
    import numpy as np
    import skimage.data
    from PIL import Image

    from decaenv.runtime.inputs import Item
    from decaenv.runtime.pipeline import Reconstructor
    from decaenv.runtime.run_types import ReconstructOptions

    photo = ctx.workdir / f"{NAME}.png"
    Image.fromarray(skimage.data.astronaut()).save(photo)
    runner = Reconstructor(
        ReconstructOptions(
            inputs=[photo], out_dir=Path(options.out_dir), save=SAVE_KINDS, render_orig=True, batch_size=1
        ),
        deca=ctx.need(ctx.deca, "model"),
    )
    failures: List[str] = []
    prepared = runner.prepare(Item(name=NAME, source=photo), lambda outcome: failures.append(outcome.message))
    if prepared is None:
        raise DecaenvError(f"the astronaut photo could not be prepared: {'; '.join(failures)}")
    result = runner.run_model([prepared])
    opdict = result["opdict"]
    for key in ("verts", "landmarks2d", "landmarks3d", "uv_detail_normals", "shape_images"):
        value = opdict.get(key, result["visdict"].get(key))
        if not bool(np.isfinite(value.cpu().numpy()).all()):
            raise DecaenvError(f"reconstruction produced non-finite values in {key}")
    if float(opdict["alpha_images"].mean()) < 0.05:
        raise DecaenvError("the reconstructed head covers less than 5 % of the crop")
    ctx.runner, ctx.prepared, ctx.result = runner, prepared, result
    crop = prepared[2]
    return (
        f"{NAME} (512×512): crop from {crop.source}, {opdict['verts'].shape[1]} vertices, 68 landmarks, "
        f"head covers {float(opdict['alpha_images'].mean()):.0%} of the crop"
    )


def outputs(ctx: StageContext, options: StageOptions) -> str:
    """Write every output kind and a visualisation, then read them back."""
    from decaenv.runtime.readback import check_item

    runner = ctx.need(ctx.runner, "reconstruct")
    name, item, crop, image = ctx.need(ctx.prepared, "reconstruct")
    outcome = runner.save(ctx.need(ctx.result, "reconstruct"), 0, name, item, crop, image)
    if outcome.status != "ok":
        raise DecaenvError(f"writing the outputs failed: {outcome.message}")
    found = check_item(Path(options.out_dir), name, SAVE_KINDS)
    details = ", ".join(f"{k} {v}" for k, v in found.items())
    return (
        f"{len(outcome.files)} files in {options.out_dir} ({name}_vis.jpg is the visualisation); read back: {details}"
    )
