"""Errors that the CLI turns into one line and an exit code.

`InputError` is anything the user can fix (bad method file, unknown task, malformed bundle):
exit 2. The runner reports failed runs through its results, not through exceptions.
"""


class InputError(Exception):
    """Bad usage or bad input; the message is one line that names the culprit."""
