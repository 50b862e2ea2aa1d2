"""The probe sections' contracts (`decaenv.doctor.contracts`): the worker's real answers and every hand-written
`FakeProbe` answer in these tests conform to them (the conftest checks each fake as it is built)."""

import typing

import pytest
from _support.contracts import ContractError, check_section

from decaenv.doctor import probes_build, probes_data, probes_env
from decaenv.doctor.contracts import SECTION_TYPES
from decaenv.doctor.probe import SystemProbe
from decaenv.doctor.testing import FakeProbe
from decaenv.doctor.worker import SECTION_SPECS


def test_every_worker_section_has_one_contract_and_returns_it():
    assert set(SECTION_TYPES) == set(SECTION_SPECS)
    functions = {**probes_env.SECTIONS, **probes_data.SECTIONS, **probes_build.SECTIONS}
    assert set(functions) == set(SECTION_SPECS)
    for name, func in functions.items():
        assert typing.get_type_hints(func)["return"] == SECTION_TYPES[name], name


@pytest.mark.slow
def test_the_real_worker_answers_conform(procedural_data_dir):
    pytest.importorskip("torch")
    probe = SystemProbe(common={"data_dir": str(procedural_data_dir)})
    try:
        for name in SECTION_SPECS:
            if name == "build":  # compiles for a minute: test_real_build_answer_conforms
                continue
            check_section(name, probe.section(name))
    finally:
        probe.close()


@pytest.mark.slow
@pytest.mark.ext
def test_real_build_answer_conforms():
    pytest.importorskip("torch")
    probe = SystemProbe(common={"build_timeout": 400.0})
    try:
        check_section("build", probe.section("build"))
    finally:
        probe.close()


def test_a_fake_that_drifts_from_the_contract_is_refused():
    with pytest.raises(ContractError, match="unexpected extra key"):
        FakeProbe(sections={"compat": {"api": True, "patches": [{"id": "x", "error": "ImportError: x"}]}})
    with pytest.raises(ContractError, match="is not an instance of bool"):
        FakeProbe(sections={"torch": {"installed": "yes"}})
    with pytest.raises(ContractError, match="no probe section"):
        FakeProbe(sections={"torch-cuda": {}})
