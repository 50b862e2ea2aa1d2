"""`decaenv build`: compile, check and install the rasterizer extension ahead of time (thin wrapper)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from decaenv.cli._state import state_of


def _describe(result, console) -> None:
    for v in result.variants:
        if v.status in ("built", "up-to-date"):
            checks = "; ".join(f"{c['device']}: {c['detail']}" for c in v.verification.get("checks", []))
            what = f"built in {v.seconds:.1f} s" if v.status == "built" else f"up to date (built in {v.seconds:.1f} s)"
            console.print(f"[ok]   {v.variant} rasterizer {what}: {v.library}", markup=False, soft_wrap=True)
            if checks:
                console.print(
                    f"       checked against the reference rasterizer: {checks}", markup=False, soft_wrap=True
                )
        elif v.status == "skipped":
            console.print(
                f"[skip] {v.variant} rasterizer: {v.diagnosis.cause} — {v.diagnosis.fix}", markup=False, soft_wrap=True
            )


def _failure(result):
    """The BuildError for the first failed variant: its first compiler error, cause and fix."""
    from decaenv.errors import BuildError

    v = next(v for v in result.variants if not v.ok)
    diag = v.diagnosis
    after = f" after {v.seconds:.1f} s" if v.seconds else ""
    log = f"; full log: {v.log}" if v.log else ""
    return BuildError(
        f"building the {v.variant} rasterizer failed{after}: {diag.first_error or diag.cause}",
        hint=f"cause: {diag.cause}; fix: {diag.fix}{log}",
    )


def build(
    ctx: typer.Context,
    cpu: bool = typer.Option(False, "--cpu", help="Build the CPU extension."),
    cuda: bool = typer.Option(False, "--cuda", help="Build the CUDA extension (it also holds the CPU kernels)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the compiler output."),
    force: bool = typer.Option(False, "--force", help="Rebuild even when an up-to-date build exists."),
    into: Optional[Path] = typer.Option(
        None,
        "--into",
        metavar="DIR",
        help="Build root to write to (default: decaenv's cache dir; see docs/commands/build.md for wheels).",
    ),
    lock_timeout: float = typer.Option(
        900.0, "--lock-timeout", metavar="SECONDS", help="How long to wait for another build of this environment."
    ),
    timeout: float = typer.Option(1800.0, "--timeout", metavar="SECONDS", help="Give up on a compile after this."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Build the compiled rasterizer for this Python/torch/CUDA, check it against the reference, install it.

    Without --cpu/--cuda: the CPU extension, plus the CUDA one when torch has CUDA. Loading never compiles:
    until this has run, decaenv renders with the (slower) pure-PyTorch rasterizer.
    """
    from decaenv.cli._console import make_console, print_json
    from decaenv.runtime.rasterizer import build as run_build

    state = state_of(ctx)
    console = make_console(quiet=state.quiet or as_json)
    loud = verbose or state.verbose
    compiler_output = make_console(stderr=True)
    result = run_build(
        cpu=cpu or None,
        cuda=cuda or None,
        verbose=loud and not as_json,
        force=force,
        root=into.resolve() if into else None,
        lock_timeout=lock_timeout,
        timeout=timeout,
        echo=lambda line: compiler_output.print(line, markup=False, highlight=False),
    )
    if as_json:
        print_json(result.to_dict())
    else:
        console.print(f"environment {result.key} -> {result.folder}", markup=False, soft_wrap=True)
        _describe(result, console)
    if not result.ok:
        raise _failure(result)
