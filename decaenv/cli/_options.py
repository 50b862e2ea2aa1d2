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
OUT = typer.Option(None, "--out", "-o", "--savefolder", "-s", metavar="DIR", help="Output folder (created).")
DEVICE = typer.Option("auto", "--device", help="auto (CUDA, else Apple MPS, when usable), cpu, cuda, cuda:N or mps.")
DETECTOR = typer.Option("auto", "--detector", help="Face detector: auto, fan, mtcnn or none.")
RASTERIZER = typer.Option(
    "auto",
    "--rasterizer",
    "--rasterizer_type",
    help="Rasterizer backend (auto, cpu, cuda, torch, pytorch3d, reference; DECA's 'standard' = auto).",
)
ISCROP = typer.Option(
    "true", "--iscrop", metavar="BOOL", help="Crop round the face (true) or use the whole image (false)."
)
TEX_TYPE = typer.Option(
    "BFM", "--tex-type", help="Albedo model: BFM (FLAME_albedo_from_BFM.npz) or FLAME (FLAME_texture.npz)."
)

# DECA's own spellings of flags with a decaenv form (hidden from --help; `decaenv.cli.reconstruct._boolean`).
USE_TEX_DECA = typer.Option(None, "--useTex", metavar="BOOL", hidden=True)
SAVE_VIS = typer.Option(None, "--saveVis", metavar="BOOL", hidden=True)
SAVE_KPT = typer.Option(None, "--saveKpt", metavar="BOOL", hidden=True)
SAVE_DEPTH = typer.Option(None, "--saveDepth", metavar="BOOL", hidden=True)
SAVE_OBJ = typer.Option(None, "--saveObj", metavar="BOOL", hidden=True)
SAVE_MAT = typer.Option(None, "--saveMat", metavar="BOOL", hidden=True)
SAVE_IMAGES = typer.Option(None, "--saveImages", metavar="BOOL", hidden=True)
