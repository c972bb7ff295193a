"""The errors of search_spaces: every bad architecture is one of these, with one line that says why."""

from __future__ import annotations


class InvalidArchitecture(ValueError):
    """An architecture that is malformed or cannot run on the given input shape."""


class NotAnArchitecture(InvalidArchitecture, TypeError):
    """An object of no registered kind was given where an architecture goes.

    A ``TypeError`` too, since the object is of the wrong type rather than a bad value.
    """
