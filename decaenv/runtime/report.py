"""`reconstruct --save report`: one self-contained HTML page for a run (`report.html` in the output folder)
— totals, stage timings, and a table of items with a thumbnail of the vis strip (embedded as a data URI, so
the page works when copied alone), status, message, seconds and links to the item's files (relative, so
they work next to the outputs)."""

from __future__ import annotations

import base64
import html
import io
import os
import time
from pathlib import Path
from typing import Dict, Optional, Sequence

REPORT_NAME = "report.html"
THUMB_HEIGHT = 64
STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;
vertical-align:top}th{background:#f4f4f4;position:sticky;top:0}td.num{text-align:right;white-space:nowrap}
.ok{color:#17692b}.failed{color:#b00020;font-weight:bold}.skipped{color:#777}img{display:block;max-height:THUMBpx}
.files a{margin-right:.6em;white-space:nowrap}.meta{color:#555}""".replace("THUMB", str(THUMB_HEIGHT))


def thumbnail_uri(path: Path, height: int = THUMB_HEIGHT) -> Optional[str]:
    """A JPEG data URI of an image scaled to `height` pixels (None if it cannot be read)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            width = max(1, round(img.width * height / img.height))
            small = img.resize((width, height), Image.Resampling.BOX)
    except (OSError, ValueError):
        return None
    buf = io.BytesIO()
    small.save(buf, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _row(out_dir: Path, item, seconds: Optional[float]) -> str:
    esc = html.escape
    vis = out_dir / f"{item.name}_vis.jpg"
    uri = thumbnail_uri(vis) if vis.is_file() else None
    thumb = f'<a href="{esc(vis.name)}"><img src="{uri}" alt="{esc(item.name)}"></a>' if uri else ""
    links = " ".join(f'<a href="{esc(Path(f).as_posix())}">{esc(Path(f).name)}</a>' for f in item.files)
    secs = "" if seconds is None else f"{seconds:.2f}"
    return (
        f"<tr><td>{thumb}</td><td>{esc(item.name)}<div class=meta>{esc(item.source)}</div></td>"
        f"<td class={esc(item.status)}>{esc(item.status)}</td><td>{esc(item.message)}</td>"
        f"<td class=num>{secs}</td><td class=files>{links}</td></tr>"
    )


def report_html(summary, seconds: Dict[str, float], extra_files: Sequence[str] = (), title: str = "decaenv run") -> str:
    """The page's text for a `RunSummary` and per-item seconds ({name: s})."""
    esc = html.escape
    out_dir = Path(summary.out_dir)
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in summary.stages.items() if v >= 0.05)
    head = (
        f"<p>{summary.count('ok')} ok, {summary.count('failed')} failed, {summary.count('skipped')} skipped "
        f"in {summary.seconds:.1f} s — device {esc(summary.device)}, detector {esc(summary.detector)}, "
        f"rasterizer {esc(summary.rasterizer)}. Written {time.strftime('%Y-%m-%d %H:%M:%S')}.</p>"
        f"<p class=meta>Stages: {esc(stages)}</p>"
    )
    if extra_files:
        head += "<p>Run outputs: " + " ".join(f'<a href="{esc(f)}">{esc(f)}</a>' for f in extra_files) + "</p>"
    rows = "\n".join(_row(out_dir, item, seconds.get(item.name)) for item in summary.items)
    return (
        f"<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>{esc(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{esc(title)}</h1>{head}\n<table><thead><tr><th>vis</th>"
        f"<th>item</th><th>status</th><th>message</th><th>seconds</th><th>files</th></tr></thead><tbody>\n"
        f"{rows}\n</tbody></table></body></html>\n"
    )


def report_name(suffix: str = "") -> str:
    """`report.html`, or `report-K-of-N.html` for a shard (`Shard.suffix`): shards in one folder keep theirs."""
    return REPORT_NAME if not suffix else f"report{suffix}.html"


def write_report(summary, seconds: Dict[str, float], extra_files: Sequence[str] = (), suffix: str = "") -> Path:
    """Write `report_name(suffix)` atomically into the run's output folder; returns its path."""
    out_dir = Path(summary.out_dir)
    final = out_dir / report_name(suffix)
    tmp = out_dir / f".{final.name}.partial"
    tmp.write_text(report_html(summary, seconds, extra_files, f"decaenv reconstruct: {out_dir.name}"), encoding="utf-8")
    os.replace(tmp, final)
    return final
