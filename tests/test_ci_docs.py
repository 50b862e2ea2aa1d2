"""docs/ci.md: the sample workflows parse, and every decaenv command and option they use exists."""

import re
import shlex
from pathlib import Path

import pytest
import typer

yaml = pytest.importorskip("yaml")

from decaenv.cli import app  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "ci.md"


def _yaml_blocks():
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)]


def _scripts(node):
    """Every shell snippet: GitHub `run:` values and GitLab `script:` lists."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "run" and isinstance(value, str):
                yield value
            elif key == "script" and isinstance(value, list):
                yield from (v for v in value if isinstance(v, str))
            else:
                yield from _scripts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _scripts(item)


def _decaenv_invocations(snippet):
    for line in snippet.splitlines():
        for part in re.split(r"\|\||&&|;|\|", line):
            words = shlex.split(part.split(">")[0])
            if words and words[0] == "decaenv":
                yield words[1:]


def _options(command):
    return {opt for p in command.params for opt in getattr(p, "opts", []) + getattr(p, "secondary_opts", [])}


def test_two_workflows_parse():
    blocks = _yaml_blocks()
    assert len(blocks) == 2
    github, gitlab = blocks
    assert "jobs" in github and github["jobs"]["gate"]["steps"]
    assert "deca-environment" in gitlab and gitlab["deca-environment"]["script"]


def test_every_decaenv_command_and_option_exists():
    root = typer.main.get_command(app)
    seen = 0
    for block in _yaml_blocks():
        for snippet in _scripts(block):
            for words in _decaenv_invocations(snippet):
                name, args = words[0], words[1:]
                command = root.commands.get(name)
                assert command is not None, f"docs/ci.md uses unknown command `decaenv {name}`"
                known = _options(command) | _options(root)
                for arg in args:
                    if arg.startswith("-"):
                        assert arg.split("=")[0] in known, f"`decaenv {name}` has no option {arg}"
                seen += 1
    assert seen >= 8


def test_require_tokens_in_docs_parse():
    from decaenv.doctor import require
    from decaenv.doctor.api import _registry

    checks = _registry().all()
    categories = {}
    for check in checks:
        categories.setdefault(check.category, []).append(check.id)
    found = [t for t in re.findall(r"--require ([\w=,.-]+)", DOC.read_text()) if not t.startswith("REQ")]
    assert len(found) >= 4, f"docs/ci.md should show the --require gates; found {found}"
    for tokens in found:
        require.parse([tokens], [c.id for c in checks], categories)
