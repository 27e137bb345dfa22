"""User-facing errors: the CLI prints their message on one line and exits non-zero."""


class UserError(Exception):
    """Bad input a user can fix: the message names the file or value and how to fix it."""
