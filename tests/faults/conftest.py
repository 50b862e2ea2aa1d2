"""Fixtures for these tests; the servers and helpers they use live in `_support.faults`."""

from __future__ import annotations

import pytest
from _support.faults import Loopback


@pytest.fixture
def loopback():
    srv = Loopback()
    yield srv
    srv.close()
