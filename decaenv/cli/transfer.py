"""`decaenv transfer`: thin wrapper over `decaenv.runtime.transfer` (DECA's demo_transfer flags accepted too)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import List, Optional

import typer

from decaenv.cli import _options as opt
from decaenv.cli._state import state_of


def transfer(
    ctx: typer.Context,
    source: Optional[Path] = typer.Option(
        None,
        "--source",
        "-i",
        "--image_path",
        metavar="IMAGE",
        help="The identity: one image whose shape, detail and texture are kept.",
    ),
    targets: Optional[List[Path]] = typer.Option(
        None,
        "--target",
        "-e",
        "--exp_path",
        metavar="PATH",
        help="Expression/jaw pose from: an image, folder, text list or video. Repeat for several.",
    ),
    out: Optional[Path] = opt.OUT,
    pose: bool = typer.Option(False, "--pose/--no-pose", help="Also take the target's global head pose."),
    device: str = opt.DEVICE,
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Targets encoded and decoded together."),
    detector: str = opt.DETECTOR,
    rasterizer: str = opt.RASTERIZER,
    iscrop: str = opt.ISCROP,
    use_tex: bool = typer.Option(False, "--use-tex/--no-use-tex", help="Use the albedo model (needs its npz)."),
    use_tex_deca: Optional[str] = opt.USE_TEX_DECA,
    tex_type: str = opt.TEX_TYPE,
    sample_step: int = typer.Option(1, "--sample-step", "--sample_step", min=1, help="Video: every n-th frame."),
    save: Optional[str] = typer.Option(
        None,
        "--save",
        metavar="KINDS",
        help="Comma list of vis, obj, detail-obj, kpt, depth, mat, images, codes, "
        "glb, ply (or all / none). Default: vis.",
    ),
    save_vis: Optional[str] = opt.SAVE_VIS,
    save_kpt: Optional[str] = opt.SAVE_KPT,
    save_depth: Optional[str] = opt.SAVE_DEPTH,
    save_obj: Optional[str] = opt.SAVE_OBJ,
    save_mat: Optional[str] = opt.SAVE_MAT,
    save_images: Optional[str] = opt.SAVE_IMAGES,
    as_json: bool = opt.JSON_SUMMARY,
    trust_checkpoint: Optional[str] = opt.TRUST_CHECKPOINT,
) -> None:
    """Expression transfer (DECA's demo_transfer): the target's expression and jaw on the source's face."""
    from decaenv.cli._console import make_console, print_json, progress_enabled
    from decaenv.cli._runs import print_summary, run_with_progress
    from decaenv.cli.reconstruct import _boolean, _save_kinds
    from decaenv.errors import UsageError
    from decaenv.runtime.inputs import estimate_total
    from decaenv.runtime.transfer import Transfer, TransferOptions

    state = state_of(ctx)
    if source is None:
        raise UsageError("no source image given", hint="pass --source IMAGE (the identity)")
    if not targets:
        raise UsageError("no target given", hint="pass --target IMAGE|FOLDER|VIDEO (the expressions)")
    if out is None:
        raise UsageError("no output folder given", hint="pass -o DIR")
    deca_saves = {
        "saveVis": save_vis,
        "saveKpt": save_kpt,
        "saveDepth": save_depth,
        "saveObj": save_obj,
        "saveMat": save_mat,
        "saveImages": save_images,
    }
    options = TransferOptions(
        source=source,
        targets=list(targets),
        out_dir=out,
        data_dir=state.data_dir(must_exist=True),
        device=device,
        batch_size=batch_size,
        detector=detector,
        rasterizer=rasterizer,
        iscrop=_boolean("--iscrop", iscrop, True),
        use_tex=_boolean("--useTex", use_tex_deca, use_tex),
        tex_type=tex_type.upper(),
        sample_step=sample_step,
        pose=pose,
        save=_save_kinds(save, deca_saves),
        trusted_sha256=trust_checkpoint,
    )
    console = make_console(quiet=state.quiet or as_json, stderr=True)
    show = progress_enabled(state)
    with console.status("loading DECA…") if show else contextlib.nullcontext():
        runner = Transfer(options)
    console.print(f"DECA: {runner.deca.describe()}", markup=False, highlight=False)
    summary = run_with_progress(console, estimate_total(options.targets), "transferring", runner.run, show=show)
    if as_json:
        print_json(summary.to_json())
    else:
        videos = f"; videos: {', '.join(summary.videos)}" if summary.videos else ""
        print_summary("transferred", summary, videos)
    if summary.failed:
        raise typer.Exit(1)
