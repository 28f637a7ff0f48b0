"""The one pacing loop, on a fake clock."""

from __future__ import annotations

import pytest

from sentimon.core.pacing import Pacer


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_rate_schedule_is_absolute_so_a_slow_send_is_caught_up() -> None:
    clock = FakeClock()
    pacer = Pacer(clock, clock.sleep)
    due = []
    for i in range(5):
        pacer.at_rate(i, 10.0)
        due.append(round(pacer.elapsed_s(), 3))
        if i == 1:
            clock.now += 0.25  # a slow send: items 2 and 3 go out at once, item 4 back on schedule
    assert due == [0.0, 0.1, 0.35, 0.35, 0.4]


def test_event_time_runs_speed_times_faster_from_the_first_record() -> None:
    clock = FakeClock()
    pacer = Pacer(clock, clock.sleep)
    due = []
    for ts_ms in (5_000, 6_000, 6_000, 66_000):
        pacer.at_event_time(ts_ms, 10.0)
        due.append(round(pacer.elapsed_s(), 3))
    assert due == [0.0, 0.1, 0.1, 6.1]


@pytest.mark.parametrize("pace", [0, None])
def test_no_rate_or_speed_never_waits(pace) -> None:
    clock = FakeClock()
    pacer = Pacer(clock, clock.sleep)
    for i in range(3):
        pacer.at_rate(i, pace)
        pacer.at_event_time(i * 60_000, pace)
    assert clock.sleeps == []
