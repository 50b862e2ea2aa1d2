"""`decaenv exec`: shims active in the child (and its children), files untouched, exit status and signals."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # decaenv exec in subprocesses: `make test` only, not `make test-fast`

PY = sys.executable
PYENV = Path.home() / ".pyenv" / "versions"


def _exec(*args, env=None, **kwargs):
    return subprocess.run([PY, "-m", "decaenv", *args], capture_output=True, text=True, timeout=120,
                          env=env, **kwargs)


def _pyenv(version_prefix):
    found = sorted(PYENV.glob(f"{version_prefix}.*/bin/python"))
    if not found:
        pytest.skip(f"no pyenv Python {version_prefix} on this machine")
    return str(found[-1])


def test_shims_are_active_in_the_child_only():
    code = "import numpy as np, inspect; print(np.int is int, hasattr(inspect, 'getargspec'))"
    out = _exec("exec", "--", PY, "-c", code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True"]
    plain = subprocess.run([PY, "-c", code], capture_output=True, text=True)
    assert plain.returncode == 1 and "has no attribute 'int'" in plain.stderr


def test_options_after_the_command_belong_to_it():
    out = _exec("exec", PY, "-c", "import sys; print(sys.argv[1:])", "--only", "-v")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['--only', '-v']"


def test_exit_status_passes_through():
    assert _exec("exec", "--", PY, "-c", "import sys; sys.exit(7)").returncode == 7
    assert _exec("exec", "--", "sh", "-c", "exit 3").returncode == 3


def test_only_and_skip():
    code = "import numpy as np, inspect; print(hasattr(np, 'int'), hasattr(inspect, 'getargspec'))"
    assert _exec("exec", "--only", "numpy-aliases", "--", PY, "-c", code).stdout.split() == ["True", "False"]
    assert _exec("exec", "--skip", "numpy-aliases", "--", PY, "-c", code).stdout.split() == ["False", "True"]


def test_grandchildren_get_the_shims_and_verbose_reports():
    code = ("import subprocess, sys; "
            "subprocess.run([sys.executable, '-c', 'import numpy as np; print(np.float is float)'], check=True)")
    out = _exec("-v", "exec", "--", PY, "-c", code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"
    assert "decaenv exec: numpy-aliases applied (numpy " in out.stderr
    assert "when their module is imported (face_alignment, numpy, skimage.transform, torch, " \
           "torch.utils.cpp_extension)" in out.stderr
    assert "face-alignment-api" not in out.stderr  # face_alignment was never imported


def test_existing_sitecustomize_still_runs(tmp_path):
    other = tmp_path / "theirs"
    other.mkdir()
    marker = tmp_path / "marker"
    (other / "sitecustomize.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    env = dict(os.environ, PYTHONPATH=str(other))
    code = "import sys, numpy as np; print(np.int is int, [p for p in sys.path if 'theirs' in p] != [])"
    out = _exec("exec", "--", PY, "-c", code, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True"] and marker.read_text() == "ran"


def test_user_files_are_not_modified(tmp_path):
    script = tmp_path / "demo.py"
    script.write_text("import numpy as np\nprint(np.zeros(2, dtype=np.int).dtype)\n")
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()}
    out = _exec("exec", "--", PY, str(script), cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == "int64"
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()} == before


def test_errors_are_one_line():
    out = _exec("exec", "--only", "no-such-shim", "--", PY, "-c", "pass")
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "unknown shim 'no-such-shim'" in out.stderr
    out = _exec("exec", "--", "decaenv-no-such-program")
    assert out.returncode == 127 and "not found on PATH" in out.stderr and "Traceback" not in out.stderr
    out = _exec("exec")
    assert out.returncode == 1 and "no command given" in out.stderr


def test_not_executable_is_126(tmp_path):
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    out = _exec("exec", "--", str(script))
    assert out.returncode == 126 and "not executable" in out.stderr


@pytest.mark.skipif(os.name != "posix", reason="POSIX exec semantics")
def test_exec_replaces_decaenv_so_signals_reach_the_program(tmp_path):
    marker = tmp_path / "got"
    code = (f"import os, signal, sys, time\n"
            f"signal.signal(signal.SIGTERM, lambda *a: (open({str(marker)!r}, 'w').write(str(os.getpid())), "
            f"sys.exit(0)))\n"
            f"print(os.getpid(), flush=True)\n"
            f"time.sleep(60)\n")
    proc = subprocess.Popen([PY, "-m", "decaenv", "exec", "--", PY, "-c", code], stdout=subprocess.PIPE, text=True)
    pid = int(proc.stdout.readline())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert pid == proc.pid and marker.read_text() == str(proc.pid)
    proc = subprocess.Popen([PY, "-m", "decaenv", "exec", "--", PY, "-c", "import time; print(1, flush=True); "
                             "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    proc.stdout.readline()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM


@pytest.mark.skipif(os.name != "posix", reason="signals")
def test_spawn_mode_forwards_signals_and_returns_codes(tmp_path):
    marker, ready = tmp_path / "got", tmp_path / "ready"
    child = (f"import signal, sys, time\n"
             f"signal.signal(signal.SIGTERM, lambda *a: (open({str(marker)!r}, 'w').write('term'), sys.exit(4)))\n"
             f"open({str(ready)!r}, 'w').close()\n"
             f"time.sleep(60)\n")
    wrapper = ("import sys\nfrom decaenv.patches import launcher\n"
               "plan = launcher.prepare(sys.argv[1:])\nsys.exit(launcher.run(plan, replace=False))\n")
    proc = subprocess.Popen([PY, "-c", wrapper, PY, "-c", child])
    deadline = time.monotonic() + 60
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 4 and marker.read_text() == "term"
    killed = subprocess.run([PY, "-c", wrapper, PY, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"],
                            timeout=60)
    assert killed.returncode == 128 + signal.SIGKILL


def test_print_env_can_be_evaluated(tmp_path):
    out = _exec("exec", "--print-env", "--skip", "torch-load")
    assert out.returncode == 0
    assert "export PYTHONPATH=" in out.stdout and "export DECAENV_EXEC_SHIMS=auto" in out.stdout
    check = "import numpy as np, os; print(np.int is int, os.environ[\"DECAENV_EXEC_SKIP\"])"
    script = out.stdout + f"\n{PY} -c '{check}'\n"
    res = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    assert res.stdout.split() == ["True", "torch-load"], res.stderr


def test_trusted_checkpoint_loads_untrusted_does_not(tmp_path):
    torch = pytest.importorskip("torch")
    import datetime

    ckpt = tmp_path / "deca_model.tar"
    torch.save({"w": torch.ones(2), "when": datetime.date(2021, 5, 1)}, ckpt)
    code = f"import torch; print(torch.load({str(ckpt)!r})['when'].year)"
    assert _exec("exec", "--", PY, "-c", code).returncode != 0  # weights_only=True refuses the date
    out = _exec("exec", "--trust-checkpoint", str(ckpt), "--", PY, "-c", code)
    assert out.returncode == 0 and out.stdout.strip() == "2021", out.stderr
    other = tmp_path / "other.tar"
    torch.save({"when": datetime.date(2021, 5, 1), "x": 1}, other)
    out = _exec("exec", "--trust-checkpoint", str(ckpt), "--", PY, "-c", code.replace(str(ckpt), str(other)))
    assert out.returncode != 0 and "Weights only load failed" in out.stderr
    out = _exec("exec", "--trust-checkpoint", str(tmp_path / "missing.tar"), "--", PY, "-c", "pass")
    assert out.returncode == 1 and "cannot read checkpoint" in out.stderr


def test_child_without_decaenv_or_packaging():
    python = _pyenv("3.12")
    probe = subprocess.run([python, "-c", "import packaging"], capture_output=True)
    code = ("import inspect, sys; print(inspect.getargspec(lambda a, b=1: 0).args, "
            "sys.modules['packaging'].__file__.count('fallback'))")
    out = _exec("exec", "--", python, "-c", code)
    assert out.returncode == 0, out.stderr
    args, from_fallback = out.stdout.rsplit("]", 1)
    assert args + "]" == "['a', 'b']"
    assert int(from_fallback) == (1 if probe.returncode else 0)  # decaenv's copy only when the child has none


def test_old_interpreters_run_unchanged():
    python = _pyenv("2.7")
    out = _exec("exec", "--", python, "-c", "import sys; print(sys.version_info[0]); sys.exit(5)")
    assert out.returncode == 5 and out.stdout.strip() == "2" and out.stderr == ""


def test_site_dir_is_reused(tmp_path):
    from decaenv.patches import launcher

    first = launcher.site_dir(tmp_path)
    second = launcher.site_dir(tmp_path)
    assert first == second and (first / "sitecustomize.py").is_file()
    assert [p.name for p in tmp_path.iterdir()] == [first.name]
    compile((first / "sitecustomize.py").read_text(), "sitecustomize.py", "exec")
    env = json.dumps(launcher.exported_variables(launcher.child_env(first, base={}), base={}))
    assert str(first) in env


def test_nested_exec_lists_the_folder_once():
    code = "import os; print(os.environ['PYTHONPATH'].count('exec'))"
    out = _exec("exec", "--", PY, "-m", "decaenv", "exec", "--", PY, "-c", code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"
