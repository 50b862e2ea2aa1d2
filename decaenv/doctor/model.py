"""The doctor's data model: statuses, results, remediations, fix actions, check descriptions and reports.

Everything here is plain data (frozen dataclasses of str/tuple/dict) so that results can be cached as JSON,
rendered three ways (rich text, JSON, Markdown) from one source, and built by hand in tests.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

#: Display order and titles of the categories (one module per category under `decaenv.doctor.checks`).
CATEGORIES: Tuple[Tuple[str, str], ...] = (
    ("platform", "Platform"),
    ("python", "Python packages"),
    ("torch", "PyTorch"),
    ("toolchain", "Build toolchain"),
    ("extension", "Rasterizer and extensions"),
    ("data", "Data files"),
    ("compat", "Compatibility shims"),
    ("checkout", "Your DECA checkout"),
)
CATEGORY_TITLES: Dict[str, str] = dict(CATEGORIES)


class Status(str, enum.Enum):
    """Outcome of one check.

    OK: fine. WARN: works, but something deserves attention. FAIL: broken or missing; the remediation says
    what to do. SKIP: not run (a requirement did not pass, the check does not apply here, or `--no-build`).
    TIMEOUT: a probe did not answer within its time budget. CRASH: the check itself raised (a decaenv bug).
    """

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"
    TIMEOUT = "timeout"
    CRASH = "crash"

    @property
    def is_problem(self) -> bool:
        """FAIL, TIMEOUT and CRASH make the environment "not ready"."""
        return self in (Status.FAIL, Status.TIMEOUT, Status.CRASH)

    @property
    def could_not_check(self) -> bool:
        """TIMEOUT and CRASH: the doctor could not reach a verdict (exit code 2)."""
        return self in (Status.TIMEOUT, Status.CRASH)


@dataclass(frozen=True)
class Remediation:
    """What to do about a result: human text plus the exact shell commands, one per entry."""

    text: str
    commands: Tuple[str, ...] = ()

    def to_json(self) -> Dict[str, Any]:
        return {"text": self.text, "commands": list(self.commands)}

    @classmethod
    def from_json(cls, data: Optional[Mapping[str, Any]]) -> Optional["Remediation"]:
        if not data:
            return None
        return cls(str(data.get("text", "")), tuple(data.get("commands", ())))


@dataclass(frozen=True)
class FixAction:
    """One change `decaenv doctor --fix` can make.

    Attributes:
        kind: "remove-path" | "convert-flame" | "build-rasterizer" | "fetch" | "pip-install".
        description: one line shown to the user ("remove stale lock /x/lock").
        args: kind-specific arguments (JSON-able: paths as strings).
        needs_yes: True for package installs/removals: done only with `--yes`.
    """

    kind: str
    description: str
    args: Mapping[str, Any] = field(default_factory=dict)
    needs_yes: bool = False

    def to_json(self) -> Dict[str, Any]:
        return {"kind": self.kind, "description": self.description, "args": dict(self.args),
                "needs_yes": self.needs_yes}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "FixAction":
        return cls(str(data["kind"]), str(data["description"]), dict(data.get("args", {})),
                   bool(data.get("needs_yes", False)))


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check (what a check function returns; the runner fills the bookkeeping fields).

    Attributes:
        status: see `Status`.
        summary: one line, e.g. "torch 2.13.0+cpu (CPU build)".
        details: extra lines shown with `-v`.
        remediation: the fix, with exact commands.
        link: where to read more.
        fm: failure-mode ids guarded (FM01..FM47); the runner adds the check's own when empty.
        data: machine-readable facts (JSON-able) for `--json`, the verdict and dependent logic.
        fixes: actions `--fix` may take.
        elapsed: seconds the check took (runner). cached: reused from the result cache (runner).
    """

    status: Status
    summary: str
    details: Tuple[str, ...] = ()
    remediation: Optional[Remediation] = None
    link: Optional[str] = None
    fm: Tuple[str, ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict)
    fixes: Tuple[FixAction, ...] = ()
    elapsed: float = 0.0
    cached: bool = False

    def with_(self, **changes: Any) -> "CheckResult":
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_json(self) -> Dict[str, Any]:
        return {
            "status": self.status.value,
            "summary": self.summary,
            "details": list(self.details),
            "remediation": self.remediation.to_json() if self.remediation else None,
            "link": self.link,
            "fm": list(self.fm),
            "data": dict(self.data),
            "fixes": [f.to_json() for f in self.fixes],
            "elapsed_s": round(self.elapsed, 3),
            "cached": self.cached,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "CheckResult":
        return cls(
            status=Status(data["status"]),
            summary=str(data["summary"]),
            details=tuple(data.get("details", ())),
            remediation=Remediation.from_json(data.get("remediation")),
            link=data.get("link"),
            fm=tuple(data.get("fm", ())),
            data=dict(data.get("data", {})),
            fixes=tuple(FixAction.from_json(f) for f in data.get("fixes", ())),
            elapsed=float(data.get("elapsed_s", 0.0)),
            cached=bool(data.get("cached", False)),
        )


def ok(summary: str, details=(), **kw: Any) -> CheckResult:
    """An OK result."""
    return CheckResult(Status.OK, summary, tuple(details), **kw)


def warn(summary: str, details=(), **kw: Any) -> CheckResult:
    """A WARN result (pass `remediation=` to say what to do)."""
    return CheckResult(Status.WARN, summary, tuple(details), **kw)


def fail(summary: str, details=(), **kw: Any) -> CheckResult:
    """A FAIL result (always pass `remediation=`)."""
    return CheckResult(Status.FAIL, summary, tuple(details), **kw)


def skip(summary: str, details=(), **kw: Any) -> CheckResult:
    """A SKIP result: the check does not apply here."""
    return CheckResult(Status.SKIP, summary, tuple(details), **kw)


def fix_it(text: str, *commands: str) -> Remediation:
    """Shorthand for a `Remediation`."""
    return Remediation(text, tuple(commands))


CheckFunc = Callable[[Any], CheckResult]


@dataclass(frozen=True)
class Check:
    """A registered check: identity, place in the report, dependencies and troubleshooting data.

    Attributes:
        id: stable kebab-case id (`decaenv doctor ID`, JSON, docs anchors).
        title: short human title ("PyTorch CUDA runtime").
        category: one of `CATEGORIES`.
        func: `func(ctx) -> CheckResult`.
        requires: ids whose failure makes this check SKIP (one root cause reported once).
        slow: run last and never started before the others (the build probe).
        fm: failure-mode ids this check guards (FM01..FM47 in docs/failure-modes).
        cache: fingerprint components the result depends on (see `decaenv.doctor.cache`); None: never cached.
        probes: probe sections the check will ask for, so the runner can start them early, concurrently.
        cpu_blocker: a FAIL here means the CPU path cannot run (`selftest_gate`).
        symptoms: error texts users search for. cause: why it happens. fix: what to do (troubleshooting data).
        link: where to read more.
    """

    id: str
    title: str
    category: str
    func: CheckFunc
    requires: Tuple[str, ...] = ()
    slow: bool = False
    fm: Tuple[str, ...] = ()
    cache: Optional[Tuple[str, ...]] = None
    probes: Tuple[str, ...] = ()
    cpu_blocker: bool = False
    symptoms: Tuple[str, ...] = ()
    cause: str = ""
    fix: str = ""
    link: Optional[str] = None

    def describe(self) -> Dict[str, Any]:
        """The check's static description (for `--list-checks --json` and the troubleshooting docs)."""
        return {"id": self.id, "title": self.title, "category": self.category, "requires": list(self.requires),
                "fm": list(self.fm), "slow": self.slow, "cached": self.cache is not None,
                "symptoms": list(self.symptoms), "cause": self.cause, "fix": self.fix, "link": self.link}


@dataclass
class Report:
    """All results of a doctor run, in display order, plus the run's metadata.

    Attributes:
        checks: the checks that were run, in display order (category order, then registry order).
        results: id -> result (same keys as `checks`).
        requirements: results of checks run only because a shown check requires them (not displayed, but
            they count for the verdict: a failed hidden requirement is still a problem).
        environment: short facts for the header (python, platform, torch, gpus, data dir).
        options: how the doctor was run (strict, no_build, selected ids).
        elapsed: wall-clock seconds of the whole run.
    """

    checks: List[Check]
    results: Dict[str, CheckResult]
    requirements: Dict[str, CheckResult] = field(default_factory=dict)
    environment: Dict[str, Any] = field(default_factory=dict)
    options: Dict[str, Any] = field(default_factory=dict)
    elapsed: float = 0.0

    def get(self, check_id: str) -> Optional[CheckResult]:
        """A shown or hidden (requirement) result by id."""
        return self.results.get(check_id) or self.requirements.get(check_id)

    def rows(self) -> List[Tuple[Check, CheckResult]]:
        """(check, result) pairs in display order."""
        return [(c, self.results[c.id]) for c in self.checks]

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results.values() if r.status is status)
