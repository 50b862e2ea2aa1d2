"""The runtime's stages of `decaenv selftest`: model, reconstruct, outputs (see `decaenv.selftest`).

The photo is `skimage.data.astronaut()` (Eileen Collins, NASA, public domain), reconstructed through the
same pipeline as `decaenv reconstruct`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Dict

from decaenv.errors import DecaenvError

NAME = "astronaut"
SAVE_KINDS = ("vis", "obj", "detail-obj", "kpt", "depth", "mat", "images", "codes")


def model(ctx: Dict[str, object], options) -> str:
    """Load DECA from the synthetic data dir: checkpoint strictly, FLAME without chumpy."""
    from decaenv.runtime import DECA

    start = time.perf_counter()
    data_dir = ctx["assets"].data_dir
    deca = DECA(data_dir, device=options.device)
    ctx["deca"] = deca
    params = sum(p.numel() for net in (deca.E_flame, deca.E_detail, deca.D_detail) for p in net.parameters())
    return (
        f"checkpoint loaded strictly ({params:,} parameters), FLAME {deca.flame.v_template.shape[0]} vertices; "
        f"{deca.describe()}; {time.perf_counter() - start:.1f} s"
    )


def reconstruct(ctx: Dict[str, object], options) -> str:
    """Detect, crop, encode and decode the astronaut photo."""
    import numpy as np
    import skimage.data
    from PIL import Image

    from decaenv.runtime.inputs import Item
    from decaenv.runtime.pipeline import ReconstructOptions, Reconstructor

    photo = Path(ctx["workdir"]) / f"{NAME}.png"
    Image.fromarray(skimage.data.astronaut()).save(photo)
    runner = Reconstructor(
        ReconstructOptions(
            inputs=[photo], out_dir=Path(options.out_dir), save=SAVE_KINDS, render_orig=True, batch_size=1
        ),
        deca=ctx["deca"],
    )
    failures = []
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
    ctx.update(runner=runner, prepared=prepared, result=result)
    crop = prepared[2]
    return (
        f"{NAME} (512×512): crop from {crop.source}, {opdict['verts'].shape[1]} vertices, 68 landmarks, "
        f"head covers {float(opdict['alpha_images'].mean()):.0%} of the crop"
    )


def outputs(ctx: Dict[str, object], options) -> str:
    """Write every output kind and a visualisation, then read them back."""
    from decaenv.runtime.readback import check_item

    runner, (name, item, crop, image) = ctx["runner"], ctx["prepared"]
    outcome = runner.save(ctx["result"], 0, name, item, crop, image)
    if outcome.status != "ok":
        raise DecaenvError(f"writing the outputs failed: {outcome.message}")
    found = check_item(Path(options.out_dir), name, SAVE_KINDS)
    details = ", ".join(f"{k} {v}" for k, v in found.items())
    return (
        f"{len(outcome.files)} files in {options.out_dir} ({name}_vis.jpg is the visualisation); read back: {details}"
    )
