"""The one duration parser: '250ms', '90s', '5m', '1.5h', '1h30m', '7d', '2w' -> milliseconds.

Window options on the command line and durations in alert rule files both read through it, so a duration
means the same everywhere.
"""

from __future__ import annotations

import re

from sentimon.core.errors import UserError

UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
# "ms" before "m" so that "5ms" is five milliseconds, not five minutes and a stray "s".
_PART = r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)"
_DURATION = re.compile(rf"(?:\s*{_PART})+\s*")


class DurationError(UserError, ValueError):
    """Not a duration. A ``UserError`` (the CLI prints it as one line) and a ``ValueError`` (pydantic turns it
    into a validation error naming the rule and field)."""


def parse_duration_ms(text: str) -> int:
    """A duration with a unit on every part ('90s', '1h30m', '1h 30m') -> whole milliseconds (0 allowed)."""
    if not isinstance(text, str) or not _DURATION.fullmatch(text):
        raise DurationError(f"{text!r} is not a duration; use e.g. 90s, 5m, 1h30m, 24h or 7d")
    return int(sum(float(number) * UNIT_MS[unit] for number, unit in re.findall(_PART, text)))
