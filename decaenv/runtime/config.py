"""DECA-shaped configuration: the same attribute names as `decalib.utils.config.cfg` (deca-spec §1-§8).

Projects that drive DECA as a library set attributes such as `cfg.model.use_tex`, `cfg.model.tex_type`,
`cfg.model.flame_tex_path`, `cfg.model.extract_tex` and `cfg.rasterizer_type` on DECA's yacs config; the
dataclasses here carry the same names, so that code keeps working after an import change:

    from decaenv.runtime.config import cfg as deca_cfg     # was: from decalib.utils.config import cfg
    deca_cfg.model.use_tex = True
    deca = DECA(config=deca_cfg, device="cuda")

Differences from DECA's defaults (see docs/compat-with-deca.md): paths default to None and resolve inside the
data dir; `use_tex` defaults to False (the demo's default; the texture spaces are separate downloads);
`extract_tex` and `flame_tex_path` exist (DECA's config lacks them, deca-spec §10.12).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional, Union

if TYPE_CHECKING:
    from decaenv.paths import DataDir

from decaenv.deca_layout import DATA_FILES

TEX_TYPES = ("BFM", "FLAME")
#: Network precisions and fast-graph kinds (`decaenv.runtime.fast`; `--graph off` = DECA's eager modules).
PRECISIONS = ("fp32", "bf16")
GRAPHS = ("auto", "packed", "fused", "freeze", "compile")
#: The encoders' codes of an item (its `_codes.npz`, its table row; what `--smooth` filters).
CODE_KEYS = ("shape", "tex", "exp", "pose", "cam", "light", "detail")


@dataclass
class ModelConfig:
    """`cfg.model`: code sizes, texture options and data-file paths (None = the file in the data dir)."""

    topology_path: Optional[str] = None
    dense_template_path: Optional[str] = None
    fixed_displacement_path: Optional[str] = None
    flame_model_path: Optional[str] = None
    flame_lmk_embedding_path: Optional[str] = None
    face_mask_path: Optional[str] = None
    face_eye_mask_path: Optional[str] = None
    mean_tex_path: Optional[str] = None
    tex_path: Optional[str] = None
    flame_tex_path: Optional[str] = None
    tex_type: str = "BFM"
    uv_size: int = 256
    param_list: List[str] = field(default_factory=lambda: ["shape", "tex", "exp", "pose", "cam", "light"])
    n_shape: int = 100
    n_tex: int = 50
    n_exp: int = 50
    n_cam: int = 3
    n_pose: int = 6
    n_light: int = 27
    use_tex: bool = False
    extract_tex: bool = True
    jaw_type: str = "aa"
    n_detail: int = 128
    max_z: float = 0.01


@dataclass
class DatasetConfig:
    """`cfg.dataset`: the crop (deca-spec §7)."""

    image_size: int = 224
    scale: float = 1.25
    batch_size: int = 1


@dataclass
class DecaConfig:
    """The root config (`cfg`). `data_dir` replaces DECA's `deca_dir/data`: a folder, a `DataDir` already
    resolved by the caller, or None = decaenv's resolution (`--data-dir`, `$DECAENV_DATA_DIR`, `./data`, the
    default location). `DECA` resolves it once (`resolve_data_dir`) and passes the result to `data_path`."""

    data_dir: Union[None, str, "DataDir"] = None
    device: str = "auto"
    device_id: str = "0"
    pretrained_modelpath: Optional[str] = None
    output_dir: str = ""
    rasterizer_type: str = "auto"
    model: ModelConfig = field(default_factory=ModelConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)

    def clone(self) -> "DecaConfig":
        """A deep copy (yacs' `CfgNode.clone`)."""
        return copy.deepcopy(self)

    def data_path(self, attribute: str, data_dir: Path) -> Path:
        """The file for a path attribute (`"tex_path"`, `"pretrained_modelpath"`, …): the explicit value, else
        `DATA_FILES[attribute]` inside `data_dir` (the folder `resolve_data_dir` gave)."""
        explicit = (
            getattr(self, attribute, None) if attribute == "pretrained_modelpath" else getattr(self.model, attribute)
        )
        if explicit:
            return Path(os.fspath(explicit)).expanduser()
        return data_dir / DATA_FILES[attribute]

    def resolve_data_dir(self) -> "DataDir":
        """The data dir with where it came from: `data_dir` as given (a `DataDir` is kept, a folder counts as
        `--data-dir`), else decaenv's resolution. Called once per model; its result is passed down."""
        from decaenv.paths import DataDir, resolve_data_dir

        if isinstance(self.data_dir, DataDir):
            return self.data_dir
        return resolve_data_dir(self.data_dir)

    def texture_path(self, data_dir: Path) -> Path:
        """The texture-space file for `model.tex_type`: BFM → `tex_path`; FLAME → `flame_tex_path`, else a
        `tex_path` that names a FLAME texture file (some DECA forks set that instead), else the data dir's."""
        if (
            self.model.tex_type == "FLAME"
            and not self.model.flame_tex_path
            and self.model.tex_path
            and "albedo_from_bfm" not in Path(self.model.tex_path).name.lower()
        ):
            return Path(self.model.tex_path).expanduser()
        return self.data_path("tex_path" if self.model.tex_type == "BFM" else "flame_tex_path", data_dir)


def get_cfg_defaults() -> DecaConfig:
    """A fresh default config (DECA's `get_cfg_defaults`)."""
    return DecaConfig()


#: Module-level default config, like `decalib.utils.config.cfg` (mutate a `clone()` in library code).
cfg = get_cfg_defaults()
