"""Terminal rendering of a doctor report (rich): one table, grouped by category, then the verdict line.

Kept apart from the runner so the text, JSON and Markdown forms all render the same `Report`.
"""

from __future__ import annotations

from typing import Any, List

from decaenv.doctor.model import CATEGORY_TITLES, Check, CheckResult, Report, Status
from decaenv.doctor.verdict import Verdict

MARKS = {Status.OK: ("✓", "green"), Status.WARN: ("!", "yellow"), Status.FAIL: ("✗", "red"),
         Status.SKIP: ("-", "dim"), Status.TIMEOUT: ("T", "magenta"), Status.CRASH: ("☠", "bold red")}
ASCII_MARKS = {Status.OK: "ok", Status.WARN: "!!", Status.FAIL: "XX", Status.SKIP: "--", Status.TIMEOUT: "TT",
               Status.CRASH: "!!!"}


def mark(status: Status, unicode: bool = True) -> str:
    """The row marker for a status: "[✓]" (or "[ok]" on terminals that cannot show it)."""
    return f"[{MARKS[status][0] if unicode else ASCII_MARKS[status]}]"


def _cell(item: Check, result: CheckResult, verbose: bool, Text) -> Any:
    text = Text(result.summary)
    if result.cached and verbose:
        text.append("  (cached)", style="dim")
    elif verbose and result.elapsed >= 0.05:
        text.append(f"  ({result.elapsed:.1f} s)", style="dim")
    lines: List[Any] = []
    if verbose:
        lines += [Text(f"  {d}", style="dim") for d in result.details if d]
    attention = result.status in (Status.FAIL, Status.WARN, Status.TIMEOUT, Status.CRASH)
    if attention and result.remediation:
        lines.append(Text(f"→ {result.remediation.text}", style="cyan"))
        lines += [Text(f"  $ {cmd}", style="bold") for cmd in result.remediation.commands]
    if attention and result.link:
        lines.append(Text(f"  see {result.link}", style="dim"))
    if attention and result.fm and verbose:
        lines.append(Text(f"  guards {', '.join(result.fm)}", style="dim"))
    for line in lines:
        text.append("\n")
        text.append_text(line)
    return text


def render(report: Report, verdict: Verdict, console, verbose: bool = False) -> None:
    """Print the report table and the verdict line to a rich `Console`."""
    from rich.table import Table
    from rich.text import Text

    unicode = (console.encoding or "").lower().startswith("utf")
    env = report.environment
    header = ", ".join(f"{k} {v}" for k, v in (("Python", env.get("python")), ("torch", env.get("torch"))) if v)
    console.print(Text(f"decaenv doctor — {header}" if header else "decaenv doctor", style="bold"))
    if env.get("data_dir"):
        console.print(Text(f"data dir: {env['data_dir']}", style="dim"))
    table = Table(show_header=False, box=None, pad_edge=False, padding=(0, 1), expand=False)
    table.add_column("mark", no_wrap=True, width=3 if unicode else 5)
    table.add_column("check", no_wrap=True, style="bold")
    table.add_column("result", overflow="fold")
    category = None
    for item, result in report.rows():
        if item.category != category:
            category = item.category
            table.add_row("", Text(CATEGORY_TITLES[category], style="bold underline"), "")
        symbol, style = MARKS[result.status]
        table.add_row(Text(mark(result.status, unicode), style=style), Text(item.title), _cell(item, result, verbose, Text))
    console.print(table)
    style = "bold green" if verdict.ready and not verdict.warnings else "bold yellow" if verdict.ready else "bold red"
    console.print(Text(verdict.line, style=style))
    if not verbose and any(r.details for r in report.results.values()):
        console.print(Text("(-v shows details; --markdown a block for bug reports)", style="dim"))


def render_list(checks: List[Check], console) -> None:
    """`--list-checks`: id, category, title and guarded failure modes."""
    from rich.table import Table

    table = Table(box=None, pad_edge=False, padding=(0, 2))
    for column in ("id", "category", "title", "requires", "guards"):
        table.add_column(column)
    for item in checks:
        table.add_row(item.id, item.category, item.title, ", ".join(item.requires), " ".join(item.fm))
    console.print(table)
