"""Errors of the streams package: all derive from UserError, so the CLI prints them as one line."""

from sentimon.core.errors import UserError


class StreamsError(UserError):
    """A streaming-worker problem the user can fix (bad watchlist, unreachable Redis, bad option)."""
