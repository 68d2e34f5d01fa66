"""Errors that the CLI turns into one line and an exit code.

`InputError` is anything the user can fix (bad method file, unknown task, malformed bundle):
exit 2. It is defined in `tasks.base`, so that tasks raise it without importing the harness; this
is the same class, so the CLI catches what tasks raise. The runner reports failed runs through
its results, not through exceptions.
"""

from tasks.base import InputError

__all__ = ["InputError"]
