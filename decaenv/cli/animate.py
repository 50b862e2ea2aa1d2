"""`decaenv animate`: thin wrapper over `decaenv.runtime.animate` (DECA's demo_teaser flags accepted too)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import List, Optional

import typer

from decaenv.cli import _options as opt
from decaenv.cli._state import state_of


def animate(
    ctx: typer.Context,
    inputs: Optional[List[Path]] = typer.Option(
        None,
        "--input",
        "-i",
        "--inputpath",
        metavar="PATH",
        help="Image, folder, text list or video (each frame a head). Repeat for several.",
    ),
    out: Optional[Path] = opt.OUT,
    expressions: Optional[List[Path]] = typer.Option(
        None,
        "--expressions",
        "-e",
        "--exp_path",
        metavar="PATH",
        help="Expression sequence from an image, folder or video (default: DECA's jaw opening only).",
    ),
    render: Optional[str] = typer.Option(
        None,
        "--render",
        metavar="STYLES",
        help="Rows: comma list of shape, detail, texture. Default: shape,detail (+texture with --use-tex).",
    ),
    formats: str = typer.Option("mp4,gif", "--format", metavar="FORMATS", help="mp4, gif or mp4,gif."),
    fps: float = typer.Option(10.0, "--fps", help="Frames per second of the mp4 and gif (DECA's gif: 10)."),
    gif_scale: float = typer.Option(0.6, "--gif-scale", help="GIF size relative to the frames (DECA: 0.6)."),
    max_yaw: int = typer.Option(30, "--max-yaw", help="Head turn amplitude in degrees (DECA: 30)."),
    yaw_step: int = typer.Option(5, "--yaw-step", help="Head turn step in degrees (DECA: 5)."),
    max_jaw: int = typer.Option(30, "--max-jaw", help="Jaw opening in degrees (DECA: 30)."),
    jaw_step: int = typer.Option(2, "--jaw-step", help="Jaw opening step in degrees (DECA: 2)."),
    device: str = opt.DEVICE,
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Frames decoded and rendered together."),
    detector: str = opt.DETECTOR,
    rasterizer: str = opt.RASTERIZER,
    iscrop: str = opt.ISCROP,
    use_tex: bool = typer.Option(False, "--use-tex/--no-use-tex", help="Albedo model; adds the texture row."),
    tex_type: str = opt.TEX_TYPE,
    sample_step: int = typer.Option(1, "--sample-step", min=1, help="--expressions video: every n-th frame."),
    as_json: bool = opt.JSON_SUMMARY,
    trust_checkpoint: Optional[str] = opt.TRUST_CHECKPOINT,
) -> None:
    """Animate reconstructed heads (DECA's demo_teaser): head turn and expressions as mp4 and gif."""
    from decaenv.cli._console import make_console, print_json, progress_enabled
    from decaenv.cli._runs import print_summary, run_with_progress
    from decaenv.cli.reconstruct import _boolean
    from decaenv.errors import UsageError
    from decaenv.runtime.animate import AnimateOptions, Animator
    from decaenv.runtime.inputs import estimate_total

    state = state_of(ctx)
    if not inputs:
        raise UsageError("no input given", hint="pass -i IMAGE|FOLDER|LIST.txt|VIDEO")
    if out is None:
        raise UsageError("no output folder given", hint="pass -o DIR")
    options = AnimateOptions(
        inputs=list(inputs),
        out_dir=out,
        expressions=list(expressions or ()),
        data_dir=state.data_dir(must_exist=True),
        device=device,
        batch_size=batch_size,
        detector=detector,
        rasterizer=rasterizer,
        iscrop=_boolean("--iscrop", iscrop, True),
        use_tex=use_tex,
        tex_type=tex_type.upper(),
        sample_step=sample_step,
        max_yaw=max_yaw,
        yaw_step=yaw_step,
        max_jaw=max_jaw,
        jaw_step=jaw_step,
        styles=render.split(",") if render is not None else None,
        formats=[f for f in formats.split(",") if f],
        fps=fps,
        gif_scale=gif_scale,
        trusted_sha256=trust_checkpoint,
    )
    console = make_console(quiet=state.quiet or as_json, stderr=True)
    show = progress_enabled(state)
    with console.status("loading DECA…") if show else contextlib.nullcontext():
        runner = Animator(options)
    console.print(f"DECA: {runner.deca.describe()}", markup=False, highlight=False)
    summary = run_with_progress(console, estimate_total(options.inputs), "animating", runner.run, show=show)
    if as_json:
        print_json({**summary.to_json(), "command": "animate", "frames": runner.frame_count})
    else:
        print_summary("animated", summary, f" ({runner.frame_count} frames each)")
    if summary.failed:
        raise typer.Exit(1)
