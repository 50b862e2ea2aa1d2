"""`decaenv doctor --require`: a CI gate that fails only on what the job needs.

Tokens (comma-separated, the flag may be repeated):
    cuda               a usable CUDA GPU with a torch that has kernels for it
    rasterizer=KIND    the rasterizer `auto` picks on that device is KIND or faster, in the order
                       cuda > cpu (compiled extension) > pytorch3d > torch (pure PyTorch); `any` = any backend
    data               every data check passes (FLAME, deca_model.tar and its weights, the other files, the folder)
    flame, checkpoint, toolchain, build, torch, face-alignment   shorthands for groups of checks (see ALIASES)
    <check id> or <category>   that check, or every check of that category (see `decaenv doctor --list-checks`)

A required check passes when it is `ok` or `warn` (`--strict`: `ok` only). Exit codes with `--require`: 0 every
requirement met (other checks may fail: they are reported, not fatal), 1 a requirement is not met, 2 a required
check crashed or timed out (the doctor could not tell).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from decaenv.doctor.model import Report, Status
from decaenv.errors import UsageError

#: Shorthands → check ids (categories are accepted as they are).
ALIASES: Dict[str, Tuple[str, ...]] = {
    "flame": ("flame-model", "flame-loader"),
    "checkpoint": ("deca-model", "deca-model-load"),
    "build": ("rasterizer-build",),
    "torch": ("torch",),
    "face-alignment": ("face-alignment",),
}
#: Speed order of rasterizer backends (higher is faster).
RASTER_RANK = {"reference": 0, "torch": 1, "pytorch3d": 2, "cpu": 3, "cuda": 4}


@dataclass(frozen=True)
class Requirement:
    """One parsed token: `checks` to pass, or a `cuda` / `rasterizer` capability."""

    token: str
    checks: Tuple[str, ...] = ()
    capability: Optional[str] = None  # "cuda" or "rasterizer"
    value: Optional[str] = None  # rasterizer kind


@dataclass
class RequireOutcome:
    """Per-token results and the gate's exit code."""

    items: List[Dict[str, object]] = field(default_factory=list)

    @property
    def met(self) -> bool:
        return all(i["met"] for i in self.items)

    @property
    def exit_code(self) -> int:
        if self.met:
            return 0
        return 2 if any(i.get("unchecked") for i in self.items if not i["met"]) else 1

    def line(self) -> str:
        marks = [f"{i['token']} {'✓' if i['met'] else '✗'}" for i in self.items]
        unmet = [f"{i['token']}: {i['reason']}" for i in self.items if not i["met"]]
        head = f"required: {', '.join(marks)}"
        return head if not unmet else f"{head} — " + "; ".join(unmet)

    def to_json(self) -> Dict[str, object]:
        return {"met": self.met, "exit_code": self.exit_code, "requirements": self.items}


def parse(
    values: Iterable[str], check_ids: Sequence[str], categories: Mapping[str, Sequence[str]]
) -> List[Requirement]:
    """Parse `--require` values.

    Args:
        values: raw flag values ("cuda,rasterizer=cuda", "data").
        check_ids: every registered check id. categories: category name → its check ids.
    Raises:
        UsageError: an unknown token or rasterizer kind.
    """
    out: List[Requirement] = []
    for token in (t.strip() for v in values for t in v.split(",")):
        if not token:
            continue
        if token == "cuda":
            out.append(Requirement(token, capability="cuda"))
        elif token.startswith("rasterizer="):
            kind = token.split("=", 1)[1]
            if kind != "any" and kind not in RASTER_RANK:
                raise UsageError(
                    f"--require {token}: unknown rasterizer kind {kind!r}",
                    hint="use one of cuda, cpu, pytorch3d, torch, any",
                )
            out.append(Requirement(token, capability="rasterizer", value=kind))
        elif token in ALIASES:
            out.append(Requirement(token, checks=ALIASES[token]))
        elif token in categories:
            out.append(Requirement(token, checks=tuple(categories[token])))
        elif token in check_ids:
            out.append(Requirement(token, checks=(token,)))
        else:
            raise UsageError(
                f"--require: unknown requirement {token!r}",
                hint="use cuda, rasterizer=KIND, data, a check id or a category (`decaenv doctor --list-checks`)",
            )
    return out


def checks_needed(requirements: Sequence[Requirement]) -> List[str]:
    """Check ids the requirements read (so a narrowed run still includes them)."""
    ids: List[str] = []
    for req in requirements:
        needed = req.checks or (("torch-cuda", "torch-gpu-arch", "rasterizer") if req.capability else ())
        ids += [c for c in needed if c not in ids]
    return ids


def _device_and_backend(report: Report) -> Tuple[Optional[str], Optional[str]]:
    from decaenv.doctor.verdict import _device_and_backend as derive

    return derive(report)


def _check_item(req: Requirement, report: Report, strict: bool) -> Dict[str, object]:
    failing, unchecked = [], False
    for cid in req.checks:
        result = report.get(cid)
        if result is None:
            failing.append(f"{cid} was not run")
            continue
        ok = result.status is Status.OK or (result.status is Status.WARN and not strict)
        if not ok:
            unchecked = unchecked or result.status.could_not_check
            failing.append(f"{cid} {result.status.value}: {result.summary}")
    return {
        "token": req.token,
        "met": not failing,
        "unchecked": unchecked,
        "reason": "; ".join(failing) if failing else "ok",
        "checks": list(req.checks),
    }


def _capability_item(req: Requirement, report: Report) -> Dict[str, object]:
    device, backend = _device_and_backend(report)
    if req.capability == "cuda":
        met = device == "cuda"
        cuda = report.get("torch-cuda")
        reason = "ok" if met else (cuda.summary if cuda is not None else "torch-cuda was not run")
        return {
            "token": req.token,
            "met": met,
            "unchecked": bool(cuda and cuda.status.could_not_check),
            "reason": reason,
            "device": device,
        }
    rank = RASTER_RANK.get(backend or "", -1)
    need = 0 if req.value in (None, "any") else RASTER_RANK[req.value]
    met = backend is not None and rank >= need
    raster = report.get("rasterizer")
    reason = (
        "ok"
        if met
        else (
            f"auto picks {backend or 'no backend'} on {device or 'no device'}"
            + (f" ({raster.summary})" if raster is not None else "")
        )
    )
    return {
        "token": req.token,
        "met": met,
        "unchecked": bool(raster and raster.status.could_not_check),
        "reason": reason,
        "device": device,
        "backend": backend,
    }


def evaluate(requirements: Sequence[Requirement], report: Report, strict: bool = False) -> RequireOutcome:
    """Check each requirement against a finished report."""
    outcome = RequireOutcome()
    for req in requirements:
        item = _capability_item(req, report) if req.capability else _check_item(req, report, strict)
        outcome.items.append(item)
    return outcome
