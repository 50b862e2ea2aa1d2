"""Machine and paste forms of a doctor report: versioned JSON (schema in docs/doctor-json.md) and a redacted
Markdown block for bug reports."""

from __future__ import annotations

import getpass
import os
import re
import socket
from typing import Any, Dict, List, Optional

from decaenv.doctor.model import CATEGORY_TITLES, Report, Status
from decaenv.doctor.verdict import Verdict

SCHEMA = "decaenv-doctor/1"
MD_MARKS = {
    Status.OK: "✅ ok",
    Status.WARN: "⚠️ warn",
    Status.FAIL: "❌ fail",
    Status.SKIP: "➖ skip",
    Status.TIMEOUT: "⏱️ timeout",
    Status.CRASH: "💥 crash",
}


def to_json(report: Report, verdict: Verdict, exit_code: int) -> Dict[str, Any]:
    """The report as a JSON-able dict (schema `decaenv-doctor/1`)."""
    from decaenv import __version__

    counts = {s.value: report.count(s) for s in Status}
    checks = []
    for item, result in report.rows():
        entry = {"id": item.id, "title": item.title, "category": item.category}
        entry.update(result.to_json())
        checks.append(entry)
    return {
        "schema": SCHEMA,
        "decaenv": __version__,
        "exit_code": exit_code,
        "verdict": verdict.to_json(),
        "counts": counts,
        "environment": report.environment,
        "options": report.options,
        "elapsed_s": round(report.elapsed, 3),
        "checks": checks,
    }


class Redactor:
    """Replaces the home folder, the user name and the host name in text (for reports pasted publicly)."""

    def __init__(self, home: Optional[str] = None, user: Optional[str] = None, host: Optional[str] = None):
        self.home = [
            h
            for h in {home or os.path.expanduser("~"), os.path.realpath(home or os.path.expanduser("~"))}
            if h and h not in ("/", "~")
        ]
        self.user = user if user is not None else _user()
        self.host = host if host is not None else _host()

    def __call__(self, text: str) -> str:
        for home in sorted(self.home, key=len, reverse=True):
            text = text.replace(home, "~")
        for value, token in ((self.host, "<host>"), (self.user, "<user>")):
            if value and len(value) >= 3:
                text = re.sub(rf"(?<![\w.-]){re.escape(value)}(?![\w-])", token, text)
        return text


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name is fine
        return ""


def _host() -> str:
    try:
        return socket.gethostname().split(".")[0]
    except OSError:
        return ""


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(report: Report, verdict: Verdict, exit_code: int, redactor: Optional[Redactor] = None) -> str:
    """A Markdown block for a bug report: verdict, environment, one table row per check, then the details
    of every check that needs attention. Home folder, user and host names are redacted."""
    from decaenv import __version__

    redact = redactor or Redactor()
    env = report.environment
    out: List[str] = [
        "### decaenv doctor report",
        "",
        f"**Verdict:** {verdict.line} (exit code {exit_code})",
        "",
        "| | |",
        "|---|---|",
        f"| decaenv | {__version__} |",
    ]
    for key in ("python", "os", "torch", "cuda", "gpus", "data_dir"):
        if env.get(key) not in (None, "", []):
            value = ", ".join(env[key]) if isinstance(env[key], list) else env[key]
            out.append(f"| {key.replace('_', ' ')} | {_md(value)} |")
    out += ["", "| status | check | result |", "|---|---|---|"]
    for item, result in report.rows():
        out.append(f"| {MD_MARKS[result.status]} | `{item.id}` | {_md(result.summary)} |")
    attention = [(c, r) for c, r in report.rows() if r.status not in (Status.OK, Status.SKIP)]
    if attention:
        out += ["", f"<details><summary>Details of {len(attention)} check(s) needing attention</summary>", ""]
        for item, result in attention:
            out += [
                f"#### {MD_MARKS[result.status]} `{item.id}` — {item.title} ({CATEGORY_TITLES[item.category]})",
                "",
                result.summary,
                "",
            ]
            out += [f"    {line}" for line in result.details if line]
            if result.remediation:
                out += ["", f"Fix: {result.remediation.text}"]
                if result.remediation.commands:
                    out += ["```sh"] + list(result.remediation.commands) + ["```"]
            if result.fm:
                out.append(f"Guards: {', '.join(result.fm)}")
            out.append("")
        out.append("</details>")
    return redact("\n".join(out) + "\n")
