"""Upkeep core: config models, host access, pure decisions and errors.

This package imports no flow and no task; `flows/` and `tasks/` build on it.
"""

__version__ = "0.1.0"
