"""Package-level guarantees: light import, entry points, version."""

import subprocess
import sys

import decaenv

HEAVY = ("torch", "numpy", "rich")


def _modules_after(code: str) -> set:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


def test_import_decaenv_is_light():
    loaded = _modules_after("import decaenv")
    assert not [m for m in HEAVY if m in loaded]


def test_help_is_light():
    code = "import sys\nfrom decaenv.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    loaded = _modules_after(code)
    assert not [m for m in HEAVY if m in loaded]


def test_python_m_decaenv_version():
    out = subprocess.run([sys.executable, "-m", "decaenv", "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout.strip() == f"decaenv {decaenv.__version__}"


def test_importtime_lists_no_heavy_module():
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import decaenv"], capture_output=True, text=True, check=True
    ).stderr
    names = {line.rsplit("|", 1)[-1].strip() for line in err.splitlines() if "|" in line}
    assert not {n.split(".")[0] for n in names} & set(HEAVY)
