"""Fake command-line tools for tests (nvcc, gcc, ninja, ...): executable scripts in a folder."""

from __future__ import annotations

from pathlib import Path


def make_tool(folder: Path, name: str, text: str = "#!/bin/sh\nexit 0\n") -> str:
    """Write an executable script `folder/name` holding `text`; returns its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


def shell_tool(folder: Path, name: str, body: str) -> str:
    """`make_tool` with a `#!/bin/sh` line before `body`."""
    return make_tool(folder, name, "#!/bin/sh\n" + body)
