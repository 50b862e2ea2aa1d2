"""Helpers shared by the test suite (importable as `_support`: pytest puts `tests/` on `sys.path`)."""
