"""The types of a `decaenv reconstruct` run: its options, each item's outcome and the run's summary; unique output
names; the output folder's check. Shared by the pipeline, the Ray engine, `transfer` and `animate`.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from decaenv.errors import UsageError
from decaenv.paths import DataDir
from decaenv.runtime.shard import Shard

log = logging.getLogger("decaenv")


@dataclass
class ReconstructOptions:
    """Everything `decaenv reconstruct` takes (see docs/commands/reconstruct.md)."""

    inputs: Sequence[Path]
    out_dir: Path
    data_dir: Optional[DataDir] = None
    device: str = "auto"
    batch_size: int = 1
    detector: str = "auto"
    rasterizer: str = "auto"
    iscrop: bool = True
    render_orig: bool = False
    use_tex: bool = False
    extract_tex: bool = True
    tex_type: str = "BFM"
    sample_step: int = 1
    save: Sequence[str] = ("vis",)
    skip_existing: bool = False
    trusted_sha256: Optional[str] = None
    precision: str = "fp32"
    graph: str = "auto"
    shard: Optional[Shard] = None
    table_landmarks: bool = False
    overlap: Optional[bool] = None  # False: one stage after the other; None: input side where it pays
    input_workers: str = "auto"  # auto, threads, processes, threads:N, processes:N (`overlap.parse_input_workers`)


@dataclass
class ItemOutcome:
    """What happened to one item: status "ok", "failed" or "skipped"."""

    name: str
    source: str
    status: str
    message: str = ""
    files: List[str] = field(default_factory=list)
    crop: str = ""


@dataclass
class RunSummary:
    """The whole run."""

    items: List[ItemOutcome] = field(default_factory=list)
    seconds: float = 0.0
    stages: Dict[str, float] = field(default_factory=dict)
    device: str = ""
    detector: str = ""
    rasterizer: str = ""
    out_dir: str = ""
    precision: str = "fp32"
    table: str = ""
    counts: Dict[str, int] = field(default_factory=dict)
    engine: Dict[str, object] = field(default_factory=dict)
    precision_check: Dict[str, object] = field(default_factory=dict)

    def count(self, status: str) -> int:
        if self.counts:
            return self.counts.get(status, 0)
        return sum(1 for i in self.items if i.status == status)

    @property
    def failed(self) -> bool:
        return self.count("failed") > 0

    def fallbacks(self) -> List[str]:
        """Names of the items cropped by `auto`'s fallback detector (FAN found no face, MTCNN did)."""
        from decaenv.runtime.detectors import FALLBACK_NOTE

        return [i.name for i in self.items if FALLBACK_NOTE in i.crop]

    def fallback_line(self) -> str:
        """ "FAN found no face in 2 image(s) (a, b): cropped with MTCNN instead", or "" when none."""
        names = self.fallbacks()
        if not names:
            return ""
        shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
        return (
            f"FAN found no face in {len(names)} image(s) ({shown}): cropped with MTCNN instead, so those "
            "crops differ from DECA's"
        )

    def to_json(self) -> dict:
        return {
            "schema": 1,
            "ok": self.count("ok"),
            "failed": self.count("failed"),
            "skipped": self.count("skipped"),
            "seconds": round(self.seconds, 3),
            "stages": self.stages,
            "device": self.device,
            "detector": self.detector,
            "detector_fallbacks": self.fallbacks(),
            "rasterizer": self.rasterizer,
            "out_dir": self.out_dir,
            "precision": self.precision,
            **({"table": self.table} if self.table else {}),
            **({"engine": self.engine} if self.engine else {}),
            **({"precision_check": self.precision_check} if self.precision_check else {}),
            "items": [asdict(i) for i in self.items],
        }


#: With --save table the summary keeps only failures, at most this many (the table holds every item).
MAX_KEPT_FAILURES = 1000


class NameRegistry:
    """Unique output names: a second input with the same name gets `_2`, … (a video's frames are unique
    within it, so only the video's own name is registered: memory does not grow per frame)."""

    def __init__(self, quiet: bool = False):
        self._seen: Dict[str, int] = {}
        self._videos: Dict[str, str] = {}
        self.quiet = quiet

    def unique_name(self, name: str) -> str:
        count = self._seen.get(name, 0)
        self._seen[name] = count + 1
        if count == 0:
            return name
        unique = f"{name}_{count + 1}"
        if not self.quiet:
            log.warning("output name %s is used by an earlier input: writing this one as %s", name, unique)
        return unique

    def unique(self, item) -> str:
        if getattr(item, "video", False):  # a whole video listed unread: its frames' prefix
            return self.video_name(item.source, item.name)
        if item.frame is None:
            return self.unique_name(item.name)
        from decaenv.runtime.inputs import frame_name

        return frame_name(self.video_name(item.source, item.name.rsplit("_frame", 1)[0]), item.frame)

    def video_name(self, source, name: str) -> str:
        """The unique name of the video at `source` (registered on its first frame), its frames' prefix."""
        key = str(source)
        if key not in self._videos:
            self._videos[key] = self.unique_name(name)
        return self._videos[key]


def item_context(name: str, item, crop):
    """The exporter's `ItemContext` of one prepared item."""
    from decaenv.runtime.export import ItemContext

    return ItemContext(
        name=name,
        source=str(item.source),
        frame=item.frame,
        tform=crop.tform,
        original_size=crop.original_size,
        crop_source=crop.source,
        box=crop.box,
    )


def prepare_out_dir(out_dir: Path) -> Path:
    """Create the output folder and prove it is writable (a throw-away file).

    Raises:
        UsageError: it is a file, cannot be created, or cannot be written.
    """
    out_dir = Path(out_dir).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"output folder {out_dir} is a file", hint="pass a folder to -o")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".decaenv-write-test-", dir=out_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(
            f"output folder {out_dir} is not writable: {exc.strerror or exc}",
            hint="choose another folder with -o, or fix its permissions",
        ) from exc
    return out_dir.resolve()
