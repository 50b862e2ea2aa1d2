"""`decaenv selftest`: thin wrapper over `decaenv.selftest` (and `--make-assets`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from decaenv.cli._state import state_of

_STATUS_MARK = {"ok": "[ok]  ", "fail": "[FAIL]", "skip": "[skip]"}


def selftest(
    ctx: typer.Context,
    out: Path = typer.Option(
        Path("decaenv-selftest"),
        "--out",
        "-o",
        metavar="DIR",
        help="Folder for the reconstruction outputs and visualisation.",
    ),
    make_assets: Optional[Path] = typer.Option(
        None,
        "--make-assets",
        metavar="DIR",
        help="Only write a synthetic DECA data dir (random weights, official formats) to DIR and exit.",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the synthetic weights (same seed, same bytes)."),
    topology_from: Optional[Path] = typer.Option(
        None,
        "--topology-from",
        metavar="DIR",
        help="Folder with DECA's public files (head_template.obj, ...) to build the synthetic model on. "
        "Default: the data dir if it has them, else $DECAENV_TEST_ASSETS/deca-data, else a procedural head.",
    ),
    small: bool = typer.Option(
        False,
        "--small",
        help="With --make-assets: leave the optimizer state out of deca_model.tar (214 MB instead of 434 MB).",
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Check the whole chain on synthetic weights: doctor, model load, reconstruction of a photo, outputs."""
    from decaenv.cli._console import make_console, print_json
    from decaenv.selftest import SelftestOptions, find_public_topology, run_selftest

    state = state_of(ctx)
    options = SelftestOptions(
        out_dir=out.resolve(), seed=seed, device=device, topology_dir=topology_from, data_dir=state.data_dir()
    )
    console = make_console(quiet=state.quiet or as_json)
    if make_assets is not None:
        from decaenv.synthetic import make_assets as write_assets

        report = write_assets(
            make_assets, seed=seed, public_dir=find_public_topology(options), with_optimizer=not small
        )
        if as_json:
            print_json(
                {
                    "data_dir": str(report.data_dir),
                    "topology": report.topology,
                    "files": report.files,
                    "seconds": round(report.seconds, 2),
                }
            )
        else:
            console.print(
                f"wrote {len(report.files)} synthetic DECA files to {report.data_dir} "
                f"(topology: {report.topology}, {report.seconds:.1f} s)"
            )
        return

    def show(stage) -> None:
        console.print(
            f"{_STATUS_MARK[stage.status]} {stage.name:<12} {stage.summary} ({stage.seconds:.1f} s)", markup=False
        )
        if state.verbose:
            for line in stage.details:
                console.print(f"         {line}", markup=False)

    report = run_selftest(options, on_stage=show)
    if as_json:
        print_json(report.to_json())
    else:
        make_console(quiet=False).print(f"self-test: {report.verdict}", markup=False)
    if not report.passed:
        raise typer.Exit(1)
