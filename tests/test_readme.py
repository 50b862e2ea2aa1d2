"""README.md: the two commands come first, and the troubleshooting section matches the doctor's registry."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_troubleshooting_section_is_in_sync_with_the_registry():
    out = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_troubleshooting.py"), "--check"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_check_and_symptom_is_in_the_readme():
    from decaenv.doctor.api import check_registry

    text = (REPO / "README.md").read_text()
    for check in check_registry().all():
        assert f"`decaenv doctor {check.id}`" in text
        for symptom in check.symptoms:
            assert symptom in text, symptom


def test_make_run_and_make_test_come_first():
    text = (REPO / "README.md").read_text()
    first_block = text.split("```bash", 1)[1].split("```", 1)[0]
    assert "make run" in first_block and "make test" in first_block


def test_linked_docs_exist():
    import re

    text = (REPO / "README.md").read_text()
    for target in re.findall(r"\]\(((?:docs|bench|scripts)/[^)#]+)\)", text):
        assert (REPO / target).exists(), target
