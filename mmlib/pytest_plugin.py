"""Pytest plugin (enabled in ``pyproject.toml``): tests and nbval's kernels run with portable numerics.

Loading it imports mmlib, which puts the portable-numerics environment (``mmlib/portable.py``)
into this process's environment before any test module loads numpy; every kernel that nbval
starts, every subprocess and every pytest-xdist worker inherits it from its first instruction.
So ``pytest --nbval notebooks/`` checks the stored outputs on the same code paths that produced
them, with or without ``make``.
"""
import mmlib  # noqa: F401  (sets the environment on import)
