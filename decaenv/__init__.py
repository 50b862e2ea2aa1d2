"""decaenv: make DECA install, fetch its data and run on any machine.

Importing this package is deliberately cheap: it imports no torch, numpy or rich, so that
`decaenv doctor` still works on a machine whose scientific stack is broken.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
