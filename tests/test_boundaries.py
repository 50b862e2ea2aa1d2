"""Package boundaries: only `decaenv.cli` talks to the terminal (typer, rich, the console factory, exit codes);
every other package returns data to it."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "decaenv"
CLI_ONLY = ("decaenv.cli", "typer", "rich", "click")


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_only_the_cli_imports_the_terminal_libraries_and_the_cli():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "cli" or relative.name == "__main__.py":
            continue
        for name in _imports(path):
            if any(name == banned or name.startswith(banned + ".") for banned in CLI_ONLY):
                offenders.append(f"{relative}: imports {name}")
    assert offenders == []
    assert "rich.console" in set(_imports(PACKAGE / "cli" / "_console.py"))  # lazy imports are seen too


def test_the_scan_finds_a_planted_import(tmp_path):
    planted = tmp_path / "m.py"
    planted.write_text("def f():\n    from decaenv.cli._console import make_console\n    import rich.table\n")
    assert list(_imports(planted)) == ["decaenv.cli._console", "rich.table"]
