"""Probe-section answers checked against their contracts (`decaenv.doctor.contracts`), with typeguard."""

from typeguard import CollectionCheckStrategy, TypeCheckError, check_type

from decaenv.doctor.contracts import SECTION_TYPES


class ContractError(AssertionError):
    """A probe-section answer that does not match its contract."""


def check_section(name, answer):
    """Raise `ContractError` unless `answer` is a valid answer of probe section `name`."""
    if name not in SECTION_TYPES:
        raise ContractError(f"no probe section named {name!r} (known: {', '.join(SECTION_TYPES)})")
    try:
        check_type(answer, SECTION_TYPES[name], collection_check_strategy=CollectionCheckStrategy.ALL_ITEMS)
    except TypeCheckError as exc:
        raise ContractError(f"probe section {name!r}: {exc}") from exc
