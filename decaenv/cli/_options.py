"""Options shared by the commands that run DECA (reconstruct, transfer, animate): one declaration each."""

from __future__ import annotations

import typer

JSON_SUMMARY = typer.Option(False, "--json", help="Print the run summary as JSON.")
TRUST_CHECKPOINT = typer.Option(
    None,
    "--trust-checkpoint",
    metavar="SHA256",
    help="Load deca_model.tar even if torch's safe loader refuses it, when its sha256 is this.",
)
