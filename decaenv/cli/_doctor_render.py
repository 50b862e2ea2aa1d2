"""Terminal rendering of a doctor report (rich): one table, grouped by category, then the verdict line.

Kept apart from the runner so the text, JSON and Markdown forms all render the same `Report`.
"""

from __future__ import annotations

from typing import Any, List

from decaenv.doctor.model import CATEGORY_TITLES, Check, CheckResult, Report, Status
from decaenv.doctor.verdict import Verdict

MARKS = {
    Status.OK: ("✓", "green"),
    Status.WARN: ("!", "yellow"),
    Status.FAIL: ("✗", "red"),
    Status.SKIP: ("-", "dim"),
    Status.TIMEOUT: ("T", "magenta"),
    Status.CRASH: ("☠", "bold red"),
}
ASCII_MARKS = {
    Status.OK: "ok",
    Status.WARN: "!!",
    Status.FAIL: "XX",
    Status.SKIP: "--",
    Status.TIMEOUT: "TT",
    Status.CRASH: "!!!",
}


def mark(status: Status, unicode: bool = True) -> str:
    """The row marker for a status: "[✓]" (or "[ok]" on terminals that cannot show it)."""
    return f"[{MARKS[status][0] if unicode else ASCII_MARKS[status]}]"


def _summary(result: CheckResult, verbose: bool, Text) -> Any:
    text = Text(result.summary)
    if result.cached and verbose:
        text.append("  (cached)", style="dim")
    elif verbose and result.elapsed >= 0.05:
        text.append(f"  ({result.elapsed:.1f} s)", style="dim")
    return text


def _extra_lines(console, result: CheckResult, verbose: bool, indent: int) -> None:
    """Details (-v), then for problems the remediation, its `$ command` lines (never wrapped, so they can be
    copied whole), the link and the failure modes (-v)."""
    from rich.padding import Padding
    from rich.text import Text

    if verbose:
        for line in result.details:
            if line:
                console.print(Padding(Text(line, style="dim"), (0, 0, 0, indent + 2)), soft_wrap=False)
    if result.status not in (Status.FAIL, Status.WARN, Status.TIMEOUT, Status.CRASH):
        return
    if result.remediation:
        console.print(
            Padding(Text(f"→ {result.remediation.text}", style="cyan"), (0, 0, 0, indent)), soft_wrap=False
        )  # wrapped inside the indent (a soft-wrapped Padding is cropped)
        for cmd in result.remediation.commands:
            console.print(Text(" " * (indent + 2) + f"$ {cmd}", style="bold"), soft_wrap=True)
    if result.link:
        console.print(Text(" " * (indent + 2) + f"see {result.link}", style="dim"), soft_wrap=True)
    if result.fm and verbose:
        console.print(Text(" " * (indent + 2) + f"guards {', '.join(result.fm)}", style="dim"))


def render(report: Report, verdict: Verdict, console, verbose: bool = False) -> None:
    """Print the report (one line per check, grouped by category) and the verdict line to a rich `Console`."""
    from rich.table import Table
    from rich.text import Text

    unicode = (console.encoding or "").lower().startswith("utf")
    env = report.environment
    header = ", ".join(f"{k} {v}" for k, v in (("Python", env.get("python")), ("torch", env.get("torch"))) if v)
    console.print(Text(f"decaenv doctor — {header}" if header else "decaenv doctor", style="bold"))
    if env.get("data_dir"):
        console.print(Text(f"data dir: {env['data_dir']}", style="dim"))
    mark_w = 3 if unicode else 5
    title_w = max((len(c.title) for c in report.checks), default=10)
    indent = mark_w + 1 + title_w + 1
    category = None
    for item, result in report.rows():
        if item.category != category:
            category = item.category
            console.print(Text(" " * (mark_w + 1) + CATEGORY_TITLES[category], style="bold underline"))
        row = Table.grid(padding=(0, 1))
        row.add_column(width=mark_w, no_wrap=True)
        row.add_column(width=title_w, no_wrap=True)
        row.add_column(overflow="fold")
        row.add_row(
            Text(mark(result.status, unicode), style=MARKS[result.status][1]),
            Text(item.title, style="bold"),
            _summary(result, verbose, Text),
        )
        console.print(row)
        _extra_lines(console, result, verbose, indent)
    style = "bold green" if verdict.ready and not verdict.warnings else "bold yellow" if verdict.ready else "bold red"
    console.print(Text(verdict.line, style=style))
    if not verbose and any(r.details for r in report.results.values()):
        console.print(Text("(-v shows details; --markdown a block for bug reports)", style="dim"))


def render_list(checks: List[Check], console) -> None:
    """`--list-checks`: id, category, title and guarded failure modes."""
    from rich.table import Table

    table = Table(box=None, pad_edge=False, padding=(0, 2))
    for column in ("id", "category", "title", "requires", "guards"):
        table.add_column(column, no_wrap=column == "id")
    for item in checks:
        table.add_row(item.id, item.category, item.title, ", ".join(item.requires), " ".join(item.fm))
    console.print(table)
