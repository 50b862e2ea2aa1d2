"""`decaenv reconstruct`: thin wrapper over `decaenv.runtime.pipeline` (DECA's demo flags accepted too)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import List, Optional

import typer

from decaenv.cli import _options as opt
from decaenv.cli._state import state_of

_TRUE, _FALSE = ("true", "1", "yes", "y", "on"), ("false", "0", "no", "n", "off")
#: DECA's demo save flags → decaenv --save kinds.
_DECA_SAVE_FLAGS = {
    "saveVis": ("vis",),
    "saveKpt": ("kpt",),
    "saveDepth": ("depth",),
    "saveObj": ("obj", "detail-obj"),
    "saveMat": ("mat",),
    "saveImages": ("images",),
}


def _boolean(name: str, value: Optional[str], default: bool) -> bool:
    if value is None:
        return default
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    from decaenv.errors import UsageError

    raise UsageError(f"{name} takes true or false, got {value!r}")


def _save_kinds(save: Optional[str], deca_flags: dict) -> str:
    from decaenv.runtime.save_kinds import parse_save

    kinds = list(parse_save(save)) if save is not None else ["vis"]
    for flag, value in deca_flags.items():
        if value is None:
            continue
        for kind in _DECA_SAVE_FLAGS[flag]:
            if _boolean(f"--{flag}", value, False):
                kinds.append(kind)
            elif kind in kinds:
                kinds.remove(kind)
    return ",".join(dict.fromkeys(kinds)) or "none"


def reconstruct(
    ctx: typer.Context,
    inputs: Optional[List[Path]] = typer.Option(
        None,
        "--input",
        "-i",
        "--inputpath",
        metavar="PATH",
        help="Image, folder (jpg/jpeg/png/bmp/webp), text list of paths, or video. Repeat for several.",
    ),
    out: Optional[Path] = opt.OUT,
    device: str = opt.DEVICE,
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Images encoded and decoded together."),
    detector: str = opt.DETECTOR,
    rasterizer: str = opt.RASTERIZER,
    iscrop: str = opt.ISCROP,
    render_orig: bool = typer.Option(
        False, "--render-orig/--no-render-orig", help="Also render at the original image size (vis and images)."
    ),
    render_orig_deca: Optional[str] = typer.Option(None, "--render_orig", metavar="BOOL", hidden=True),
    use_tex: bool = typer.Option(False, "--use-tex/--no-use-tex", help="Use the albedo model (needs its npz)."),
    use_tex_deca: Optional[str] = opt.USE_TEX_DECA,
    extract_tex: bool = typer.Option(
        True, "--extract-tex/--no-extract-tex", help="With --use-tex: texture from the image inside the face mask."
    ),
    extract_tex_deca: Optional[str] = typer.Option(None, "--extractTex", metavar="BOOL", hidden=True),
    tex_type: str = opt.TEX_TYPE,
    sample_step: int = typer.Option(1, "--sample-step", "--sample_step", min=1, help="Video: every n-th frame."),
    save: Optional[str] = typer.Option(
        None,
        "--save",
        metavar="KINDS",
        help="Comma list of vis, obj, detail-obj, kpt, depth, mat, images, codes "
        "(or all / none), and detail-uv, glb, ply, video, report. Default: vis.",
    ),
    save_vis: Optional[str] = opt.SAVE_VIS,
    save_kpt: Optional[str] = opt.SAVE_KPT,
    save_depth: Optional[str] = opt.SAVE_DEPTH,
    save_obj: Optional[str] = opt.SAVE_OBJ,
    save_mat: Optional[str] = opt.SAVE_MAT,
    save_images: Optional[str] = opt.SAVE_IMAGES,
    skip_existing: bool = typer.Option(False, "--skip-existing", help="Skip items whose outputs all exist."),
    faces: str = typer.Option(
        "largest", "--faces", help="largest (DECA) or all: every detected face, items named <name>_face<k>."
    ),
    smooth: bool = typer.Option(
        False,
        "--smooth/--no-smooth",
        help="Video: smooth crop boxes and codes over frames (moving average; changes DECA's numbers).",
    ),
    smooth_alpha: float = typer.Option(0.5, "--smooth-alpha", help="--smooth weight of the new frame, in (0, 1]."),
    as_json: bool = opt.JSON_SUMMARY,
    precision: str = typer.Option(
        "fp32",
        "--precision",
        help="fp32 (exact: codes within 1e-6 of DECA's) or bf16 (faster on CPUs with "
        "AVX512-BF16/AMX and on GPUs; deviation in docs/BENCHMARKS.md).",
    ),
    graph: str = typer.Option(
        "auto", "--graph", help="Network graphs: auto, packed, freeze, compile, fused or off (DECA's eager modules)."
    ),
    shard: Optional[str] = typer.Option(
        None,
        "--shard",
        metavar="K/N|auto",
        help="Only item i with i mod N = K (0-based); auto reads Slurm/torchrun variables. See docs/cluster.md.",
    ),
    table_landmarks: bool = typer.Option(False, "--table-landmarks", help="--save table: add 2D/3D landmarks."),
    input_workers: str = typer.Option(
        "auto",
        "--input-workers",
        metavar="KIND[:N]",
        help="Who reads, detects and crops: auto (worker processes for runs of 1,000+ images or video frames, "
        "and beside a GPU for a video of unknown length; else threads), threads, processes, or threads:N / "
        "processes:N.",
    ),
    engine: str = typer.Option("local", "--engine", help="local, or ray (a Ray cluster; needs --save table)."),
    ray_address: Optional[str] = typer.Option(
        None, "--ray-address", metavar="ADDR", help="--engine ray: the cluster (default: RAY_ADDRESS or a local one)."
    ),
    trust_checkpoint: Optional[str] = opt.TRUST_CHECKPOINT,
) -> None:
    """Reconstruct 3D faces with DECA: codes, meshes, landmarks and images, with DECA's file names."""
    from decaenv.cli._console import make_console, print_json, progress_enabled
    from decaenv.cli._runs import run_with_progress
    from decaenv.errors import UsageError
    from decaenv.runtime.extended import ExtendedReconstructor, ExtraOptions
    from decaenv.runtime.run_types import ReconstructOptions
    from decaenv.runtime.shard import parse_shard

    state = state_of(ctx)
    if not inputs:
        raise UsageError("no input given", hint="pass -i IMAGE|FOLDER|LIST.txt|VIDEO")
    if out is None:
        raise UsageError("no output folder given", hint="pass -o DIR")
    if engine.lower() != "local" and (faces.lower() != "largest" or smooth):
        raise UsageError(
            "--engine ray reconstructs each item's largest face, without smoothing",
            hint="drop --faces all / --smooth, or run locally (with --shard K/N on several machines)",
        )
    deca_saves = {
        "saveVis": save_vis,
        "saveKpt": save_kpt,
        "saveDepth": save_depth,
        "saveObj": save_obj,
        "saveMat": save_mat,
        "saveImages": save_images,
    }
    options = ReconstructOptions(
        inputs=list(inputs),
        out_dir=out,
        data_dir=state.data_dir(must_exist=True),
        device=device,
        batch_size=batch_size,
        detector=detector,
        rasterizer=rasterizer,
        iscrop=_boolean("--iscrop", iscrop, True),
        render_orig=_boolean("--render_orig", render_orig_deca, render_orig),
        use_tex=_boolean("--useTex", use_tex_deca, use_tex),
        extract_tex=_boolean("--extractTex", extract_tex_deca, extract_tex),
        tex_type=tex_type.upper(),
        sample_step=sample_step,
        save=_save_kinds(save, deca_saves),
        skip_existing=skip_existing,
        trusted_sha256=trust_checkpoint,
        precision=precision.lower(),
        graph=graph.lower(),
        shard=parse_shard(shard),
        table_landmarks=table_landmarks,
        input_workers=input_workers,
    )
    console = make_console(quiet=state.quiet or as_json, stderr=True)
    runner = None
    show_progress = progress_enabled(state)
    if engine.lower() != "local":
        from decaenv.runtime.ray_job import RayJob

        job = RayJob(options, engine.lower(), ray_address)
        summary = run_with_progress(console, job.expected_items(), "reconstructing on Ray", job.run, show_progress)
    else:
        runner = ExtendedReconstructor(
            options, ExtraOptions(faces=faces, smooth=smooth, smooth_alpha=smooth_alpha), lazy=True
        )
        if runner.work_left():  # decided before any network loads: a finished run/shard ends here
            with console.status("loading DECA…") if show_progress else contextlib.nullcontext():
                runner.load()
            console.print(f"DECA: {runner.deca.describe()}", markup=False, highlight=False)
            detector = (
                f"{runner.detector.name} ({runner.detector.reason})"
                if runner.detector
                else "none (--iscrop false: whole images)"
            )
            console.print(f"face detector: {detector}", markup=False, highlight=False)
        try:
            summary = run_with_progress(console, runner.expected_items(), "reconstructing", runner.run, show_progress)
        finally:
            runner.close()  # the input worker processes, if the run started any
    run_files = runner.run_files if runner is not None else []
    if as_json:
        print_json({**summary.to_json(), "run_files": run_files})
    else:
        _print_summary(console, summary, make_console)
        if run_files:
            make_console(quiet=False, stderr=True).print(
                f"run outputs: {', '.join(run_files)}", markup=False, highlight=False
            )
    if summary.failed:
        raise typer.Exit(1)


def _print_summary(console, summary, make_console) -> None:
    ok, failed, skipped = summary.count("ok"), summary.count("failed"), summary.count("skipped")
    from decaenv.runtime.timing import STAGES

    stages = ", ".join(f"{k} {summary.stages[k]:.1f}s" for k in STAGES if summary.stages.get(k, 0) >= 0.05)
    line = (
        f"reconstructed {ok}, failed {failed}, skipped {skipped} in {summary.seconds:.1f} s "
        f"({stages}); outputs in {summary.out_dir}"
    )
    make_console(quiet=False, stderr=True).print(line, markup=False, highlight=False)
    if summary.fallback_line():
        make_console(quiet=False, stderr=True).print(summary.fallback_line(), markup=False, highlight=False)
