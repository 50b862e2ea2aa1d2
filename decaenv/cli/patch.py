"""`decaenv patch DECA_DIR [--dry-run] [--revert]`: fix the known breakages in your DECA checkout's source."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from decaenv.cli._state import state_of

_DONE = {"patched", "would patch", "reverted", "would revert"}


def patch(
    ctx: typer.Context,
    deca_dir: Path = typer.Argument(..., metavar="DECA_DIR", help="Your DECA checkout (the folder with decalib/)."),
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="Show the diff only; change nothing."),
    revert: bool = typer.Option(False, "--revert", help="Restore the original files byte for byte."),
    force: bool = typer.Option(False, "--force", help="Also patch (or, with --revert, restore) files changed "
                                                      "since decaenv patched them."),
    no_diff: bool = typer.Option(False, "--no-diff", help="Do not print the unified diff."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON (diff included)."),
) -> None:
    """Rewrite DECA's known breakages (face_alignment enum, rasterizer JIT flags and ATen API, torch.load
    map_location, numpy aliases, skimage multichannel) with a diff preview and backups.

    The diff goes to stdout (`git apply`-compatible), the summary to stderr. Files in a form decaenv does not
    recognise are reported and left untouched (exit status 1); lines that `decaenv exec` handles at run time
    (hard-coded gcc-7 in the rasterizer's setup.py, ...) are reported as such and are not a failure.
    """
    from decaenv.cli._console import make_console, print_json
    from decaenv.patches.rewrite import patch_checkout, revert_checkout

    state = state_of(ctx)
    run = revert_checkout if revert else patch_checkout
    outcome = run(deca_dir, dry_run=dry_run, force=force)
    if as_json:
        print_json(outcome.to_json(revert))
    else:
        if not no_diff and not state.quiet:
            _write_bytes(outcome.diff_bytes())
        _summary(make_console(quiet=state.quiet, stderr=True), outcome, revert, deca_dir)
    if outcome.problems:
        raise typer.Exit(1)


def _write_bytes(data: bytes) -> None:
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is not None:
        buffer.write(data)
        buffer.flush()
    else:
        sys.stdout.write(data.decode("utf-8", errors="replace"))
    sys.stdout.flush()


def _summary(console, outcome, revert: bool, deca_dir: Path) -> None:
    from decaenv.patches.rewrite.engine import NEEDS_EXEC

    for report in outcome.files:
        rules = ", ".join(f"{rule} ×{n}" for rule, n in report.rules.items())
        if report.status in _DONE:
            console.print(f"{report.status}: {report.path}" + (f" ({rules})" if rules else ""),
                          markup=False, soft_wrap=True)
        else:
            console.print(f"{report.status}: {report.path}", markup=False, soft_wrap=True)
        for note in report.notes:
            console.print(f"    {note}", markup=False, soft_wrap=True)
    done = len(outcome.by_status(*_DONE))
    left = len(outcome.problems)
    with_exec = len([f for f in outcome.files if f.notes and f.status in _DONE | {NEEDS_EXEC}])
    verb = ("would revert" if outcome.dry_run else "reverted") if revert else \
        ("would patch" if outcome.dry_run else "patched")
    if not done and not left:
        text = "nothing to revert: no decaenv patch record" if revert else \
            "nothing to patch: no known breakage found"
    elif not done:
        text = f"nothing {'reverted' if revert else 'patched'}, {left} file(s) left untouched (see above)"
    else:
        text = f"{verb} {done} file(s)" + (f", {left} left untouched (see above)" if left else "")
        if outcome.dry_run:
            text += "; dry run: nothing was written"
        elif not revert and done:
            text += f"; originals kept in {outcome.root / '.decaenv-patch'} (undo: decaenv patch {deca_dir} --revert)"
    if with_exec and not revert:
        text += f"; {with_exec} file(s) have lines that need `decaenv exec` rather than a rewrite (see above)"
    console.print(f"decaenv patch: {text}", markup=False, soft_wrap=True)
