"""DECA inference runtime (torch). Import the submodules you need; this package imports nothing heavy."""
