from sentimon.core.errors import UserError


class ConsoleError(UserError):
    """The console cannot start (port taken, bad address); the message names the fix."""
