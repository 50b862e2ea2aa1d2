"""Splitting a job over processes: `--shard K/N` (item i belongs to shard i mod N) and `--shard auto`.

`auto` reads the launcher's variables: Slurm job arrays (`SLURM_ARRAY_TASK_ID` / `SLURM_ARRAY_TASK_COUNT`,
minus `SLURM_ARRAY_TASK_MIN`, divided by `SLURM_ARRAY_TASK_STEP`), torchrun (`RANK` / `WORLD_SIZE`),
Open MPI (`OMPI_COMM_WORLD_RANK` / `OMPI_COMM_WORLD_SIZE`) and PMI/MPICH (`PMI_RANK` / `PMI_SIZE`); with
none of them set it is the whole job (0/1). Ray needs no shard: `--engine ray` spreads the items itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Optional, Tuple

from decaenv.errors import UsageError

#: (rank variable, count variable, launcher) in the order `auto` tries them.
LAUNCHERS: Tuple[Tuple[str, str, str], ...] = (
    ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "Slurm job array"),
    ("RANK", "WORLD_SIZE", "torchrun"),
    ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "Open MPI"),
    ("PMI_RANK", "PMI_SIZE", "PMI/MPICH"),
)


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (0-based); `origin` says where it came from."""

    index: int
    count: int
    origin: str = "--shard"

    def owns(self, position: int) -> bool:
        """Whether item `position` of the sorted input list belongs to this shard."""
        return position % self.count == self.index

    def share(self, total: int) -> int:
        """How many of `total` items (positions 0 … total-1) belong to this shard."""
        return max(0, (total - self.index + self.count - 1) // self.count)

    @property
    def suffix(self) -> str:
        """File-name part that keeps shards apart: "" for the whole job, "-K-of-N" otherwise."""
        return "" if self.count == 1 else f"-{self.index}-of-{self.count}"

    def describe(self) -> str:
        return f"shard {self.index}/{self.count} ({self.origin})"


def _int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"{name}={value!r} is not an integer", hint="fix the launcher's environment") from None


def from_environment(environ: Mapping[str, str]) -> Shard:
    """The shard the launcher's variables describe (0/1 when none is set)."""
    for rank_var, count_var, launcher in LAUNCHERS:
        if rank_var in environ and count_var in environ:
            rank, count = _int(rank_var, environ[rank_var]), _int(count_var, environ[count_var])
            if rank_var.startswith("SLURM"):
                rank = (rank - _int("SLURM_ARRAY_TASK_MIN", environ.get("SLURM_ARRAY_TASK_MIN", "0"))) // max(
                    1, _int("SLURM_ARRAY_TASK_STEP", environ.get("SLURM_ARRAY_TASK_STEP", "1"))
                )
            return checked(rank, count, f"{launcher}: {rank_var}/{count_var}")
    return Shard(0, 1, "auto: no launcher variables set, whole job")


def checked(index: int, count: int, origin: str) -> Shard:
    """A Shard after range checks. Raises UsageError."""
    if count < 1 or not 0 <= index < count:
        raise UsageError(
            f"shard {index}/{count} from {origin} is out of range",
            hint="K/N needs N >= 1 and 0 <= K < N (K is 0-based)",
        )
    return Shard(index, count, origin)


def parse_shard(text: Optional[str], environ: Optional[Mapping[str, str]] = None) -> Optional[Shard]:
    """`--shard` value → Shard ("K/N" 0-based, or "auto"); None for no value.

    Raises:
        UsageError: not K/N or auto, or out of range.
    """
    if text is None or not text.strip():
        return None
    value = text.strip().lower()
    if value == "auto":
        return from_environment(os.environ if environ is None else environ)
    parts = value.split("/")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise UsageError(
            f"--shard takes K/N or auto, got {text!r}", hint="e.g. --shard 0/4 (shards 0..3) or --shard auto"
        )
    return checked(int(parts[0]), int(parts[1]), "--shard")
