"""Errors of the replay package: all derive from UserError, so the CLI prints them as one line."""

from sentimon.core.errors import UserError


class ReplayError(UserError):
    """A replay or demo problem the user can fix (an empty range, a bad episodes file)."""


class EmptyRangeError(ReplayError):
    """The requested time range of a topic holds no records (or the topic holds none at all)."""
