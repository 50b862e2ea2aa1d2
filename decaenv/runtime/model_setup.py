"""Building the DECA model a run asks for (`ReconstructOptions`, `TransferOptions`, `AnimateOptions`), and the
check of its speed options (--precision, --graph).
"""

from __future__ import annotations

from typing import Optional, Protocol

from decaenv.errors import UsageError
from decaenv.paths import DataDir
from decaenv.runtime.config import GRAPHS, PRECISIONS


class ModelOptions(Protocol):
    """The options that say which model to build (`ReconstructOptions`, `TransferOptions`, `AnimateOptions`)."""

    @property
    def data_dir(self) -> Optional[DataDir]: ...
    @property
    def device(self) -> str: ...
    @property
    def rasterizer(self) -> str: ...
    @property
    def use_tex(self) -> bool: ...
    @property
    def extract_tex(self) -> bool: ...
    @property
    def tex_type(self) -> str: ...
    @property
    def trusted_sha256(self) -> Optional[str]: ...
    @property
    def precision(self) -> str: ...
    @property
    def graph(self) -> str: ...


def build_deca(options: ModelOptions):
    """The DECA model for a run (config from the options)."""
    from decaenv.runtime.config import get_cfg_defaults
    from decaenv.runtime.deca import DECA, check_data_dir

    cfg = get_cfg_defaults()
    if options.data_dir is not None:
        check_data_dir(options.data_dir.path)
        cfg.data_dir = options.data_dir
    cfg.model.use_tex = options.use_tex
    cfg.model.extract_tex = options.extract_tex
    cfg.model.tex_type = options.tex_type
    deca = DECA(config=cfg, device=options.device, rasterizer=options.rasterizer, trusted_sha256=options.trusted_sha256)
    if options.graph != "off":
        deca.accelerate(options.precision, options.graph)
    return deca


#: --graph values ("off" = DECA's eager modules as loaded).
GRAPH_CHOICES = GRAPHS + ("off",)


def check_speed_options(options: ModelOptions) -> None:
    """Raise UsageError for an unknown --precision/--graph, or bf16 without fast graphs."""
    if options.precision not in PRECISIONS:
        raise UsageError(f"unknown --precision {options.precision!r}", hint="use fp32 (default, exact) or bf16")
    if options.graph not in GRAPH_CHOICES:
        raise UsageError(f"unknown --graph {options.graph!r}", hint=f"use one of {', '.join(GRAPH_CHOICES)}")
    if options.graph == "off" and options.precision != "fp32":
        raise UsageError("--precision bf16 needs the fast graphs", hint="drop --graph off")
