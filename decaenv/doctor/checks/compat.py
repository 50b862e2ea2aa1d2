"""The `compat` category: decaenv's compatibility shims (from `decaenv.patches.registry`) and their state."""

from __future__ import annotations

from decaenv.doctor.model import CheckResult, ok, warn
from decaenv.doctor.registry import check


@check("compat-shims", title="Compatibility shims", category="compat", probes=("compat",), cache=("site",),
       fm=("FM12", "FM13", "FM14", "FM33"),
       symptoms=("AttributeError: _2D", "ImportError: cannot import name 'bool' from 'numpy'"),
       cause="Upstream APIs changed under DECA (face_alignment enum, numpy aliases, chumpy, torch.load default).",
       fix="decaenv applies a narrow, reversible shim only where its predicate says it is needed.")
def check_compat(ctx) -> CheckResult:
    """Each shim: needed here or not, active or not (the predicates run in the probe worker)."""
    info = ctx.section("compat")
    rows = info.get("patches", [])
    details = []
    broken = []
    for row in rows:
        state = row.get("state") or {True: "needed", False: "not needed", None: "unknown"}[row.get("needed")]
        why = row.get("detail") or row.get("reason")
        line = f"{row['id']}: {state}" + (f" ({why})" if why else "")
        if row.get("error"):
            broken.append(row["id"])
            line += f" (predicate failed: {row['error']})"
        details.append(line)
    needed_ids = [r["id"] for r in rows if r.get("needed")]
    data = {"patches": rows}
    if broken:
        return warn(f"{len(broken)} shim predicate(s) failed: {', '.join(broken)}", details, data=data)
    summary = (f"{len(rows)} shim(s); needed here: {', '.join(needed_ids)}" if needed_ids
               else f"{len(rows)} shim(s), none needed here")
    return ok(summary, details, data=data)
