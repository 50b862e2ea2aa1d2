"""The `--json` document of `decaenv fetch` (schema in docs/commands/fetch.md): data, never printed here.

The human output (`decaenv.cli._fetch_output`) reads the same `FetchReport`, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import List, Optional

from decaenv.fetch.errors import error_code
from decaenv.fetch.manifest import Entry, Manifest
from decaenv.fetch.records import Licenses
from decaenv.fetch.status import FileStatus

JSON_SCHEMA = 1


def entry_json(entry: Entry, data_dir, status: Optional[FileStatus], licenses: Licenses) -> dict:
    """One file's JSON object (see docs/commands/fetch.md for the schema)."""
    lic = entry.license
    accepted = licenses.accepted(lic.id)
    return {
        "id": entry.id,
        "dest": entry.dest,
        "path": str(entry.path(data_dir)),
        "root": entry.root,
        "group": entry.group,
        "default": entry.default,
        "description": entry.description,
        "status": status.status if status else None,
        "size": status.size if status else None,
        "expected_size": status.expected_size if status else entry.size,
        "approx_size": entry.approx_size,
        "sha256": status.sha256 if status else None,
        "expected_sha256": status.expected_sha256 if status else entry.sha256,
        "hash_source": status.hash_source if status else ("manifest" if entry.sha256 else None),
        "content": status.content if status else None,
        "detail": status.detail if status else "",
        "license": {
            "id": lic.id,
            "name": lic.name,
            "url": lic.url,
            "account": lic.account,
            "accepted": accepted["accepted"] if accepted else None,
        },
        "sources": [
            {
                "kind": s.kind,
                "url": s.browser_url() if s.kind != "https" or not s.url else s.url,
                "archive": s.archive,
                "member": s.member,
                "code": s.code,
                "note": s.note,
            }
            for s in entry.sources
        ],
    }


def result_json(result, data_dir, licenses: Licenses) -> dict:
    """A fetch/import result: the entry's object plus action, source, notes and the error.

    A `--from` path that matched no entry has `"id": null` and only the result fields."""
    err = result.error
    if result.entry.id == "?":
        return {
            "id": None,
            "action": "failed",
            "from": result.source,
            "notes": [],
            "quarantined": None,
            "error": {"code": error_code(err), "message": err.message, "hint": err.hint},
        }
    row = entry_json(result.entry, data_dir, result.status, licenses)
    row.update(
        {
            "action": result.action,
            "from": result.source,
            "bytes": result.bytes,
            "seconds": round(result.seconds, 3),
            "notes": list(result.notes),
            "quarantined": err.quarantined if err else None,
            "error": None if err is None else {"code": error_code(err), "message": err.message, "hint": err.hint},
        }
    )
    return row


def document(command: str, data_dir, manifest: Manifest, files: List[dict], ok: bool) -> dict:
    """The top-level `--json` document."""
    return {
        "schema": JSON_SCHEMA,
        "command": command,
        "data_dir": str(data_dir),
        "ok": ok,
        "manifest": {"name": manifest.name, "schema": manifest.schema, "path": manifest.origin},
        "files": files,
    }
