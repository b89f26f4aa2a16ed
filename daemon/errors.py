"""Errors meant for people.

Every message names what is wrong — the file, node, field or port — and, where it helps,
what to do. ``ctl`` prints the message (never a traceback) and exits with ``exit_code``.
"""


class UserError(Exception):
    """Something the user can fix; ``ctl`` exits with :attr:`exit_code`."""

    exit_code = 1


class BadInput(UserError):
    """Malformed input: a bad file, argument or value (exit code 2, like argparse)."""

    exit_code = 2
