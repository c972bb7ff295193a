"""Errors the CLI turns into one line on stderr and exit status 2, and warnings it shows as one line."""


class UserError(Exception):
    """Bad input from the user: a config value, a path, a name, a file.

    The message is shown as is, on one line, so it should say what was wrong and,
    where it helps, what would be accepted instead.
    """


class DoubtfulInput(UserWarning):
    """Input that works but is probably not what the user meant; the CLI shows it as one
    line, ``nasbench: warning: ...``."""
