"""The one pacing loop: hold a producer or a replay to a wall-clock schedule.

`sentimon produce --rate`, the streaming benchmark, `sentimon replay --speed` and the demo all send through a
``Pacer``, so "N messages per second" and "N times faster than event time" mean the same in each.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Pacer:
    """A schedule measured from the pacer's creation. A falsy rate or speed never waits (as fast as possible).

    The schedule is absolute (item ``i`` is due at ``i / rate`` after the start), so a late send is followed by
    catch-up sends instead of drifting behind.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self._clock, self._sleep = clock, sleep
        self.started = clock()
        self._first_ts_ms: int | None = None

    def elapsed_s(self) -> float:
        return self._clock() - self.started

    def at_rate(self, index: int, rate_per_s: float | None) -> None:
        """Wait until item ``index`` (from 0) of a stream offered at ``rate_per_s`` is due."""
        if rate_per_s:
            self._wait_until(index / rate_per_s)

    def at_event_time(self, ts_ms: int, speed: float | None) -> None:
        """Wait until a record stamped ``ts_ms`` is due when event time runs ``speed`` times faster than wall
        time, counted from the first record this pacer saw."""
        if self._first_ts_ms is None:
            self._first_ts_ms = ts_ms
        if speed:
            self._wait_until((ts_ms - self._first_ts_ms) / 1000 / speed)

    def _wait_until(self, offset_s: float) -> None:
        delay = self.started + offset_s - self._clock()
        if delay > 0:
            self._sleep(delay)
