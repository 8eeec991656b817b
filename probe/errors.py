"""Errors that end a command before any connection: the user's input is wrong.

The CLI turns :class:`InputError` into one line on stderr and exit code 2. Messages say what is
wrong and what to do, and never contain a password or key material.
"""


class InputError(Exception):
    """Bad usage or unreadable input (exit code 2)."""
