"""The adaptive micro-batch controller (pure) and the limit Faust's take_events reads from it."""

from __future__ import annotations

import pytest

from sentimon.streams.app import BatchLimit
from sentimon.streams.microbatch import BatchController

# A batch costs 4 ms plus 2 ms per record: the worker does at most 500 records/s (full batches of 256: ~492/s).
A_S, B_S = 0.004, 0.002


def feed(ctl: BatchController, rate: float, batches: int = 200, within_s: float = 0.02) -> int:
    """Simulate records arriving every ``1 / rate`` s and a take_events loop: a batch closes when it holds the
    controller's size or ``within_s`` after the worker got free (not before its first record), and costs
    A_S + B_S n. Returns the size the controller settled on."""
    free_at = last_start = 0.0
    taken = 0  # records 0 .. taken-1 are processed; record i arrives at i / rate
    for _ in range(batches):
        size = ctl.size()
        full_at = (taken + size - 1) / rate
        close = max(free_at, min(full_at, max(free_at + within_s, taken / rate)))
        n = min(size, int(close * rate) + 1 - taken)
        processing = A_S + B_S * n
        ctl.observe(n, close - last_start, processing)
        last_start, free_at, taken = close, close + processing, taken + n
    return ctl.size()


def test_first_batch_holds_nothing_back():
    assert BatchController(256).size() == 1


def test_low_traffic_gets_batches_of_one():
    ctl = BatchController(256)
    for _ in range(20):
        ctl.observe(1, 0.1, A_S + B_S)  # 10 records/s, each alone
    assert ctl.size() == 1


def test_size_grows_with_the_arrival_rate_and_stays_below_max():
    sizes = [feed(BatchController(256), rate) for rate in (50, 200, 300)]
    assert sizes[0] < sizes[1] < sizes[2] < 256
    # The chosen size keeps up with headroom at the fitted cost: n / (a + b n) >= 1.5 x rate.
    assert sizes[2] / (A_S + B_S * sizes[2]) >= 1.5 * 300 * 0.95


def test_fitted_cost_recovers_the_per_batch_and_per_record_parts():
    ctl = BatchController(256)
    for n in (1, 8, 3, 40, 16, 100, 5, 64) * 5:
        ctl.observe(n, 0.05, A_S + B_S * n)
    a, b = ctl.cost() or (0, 0)
    assert a == pytest.approx(A_S, rel=0.05) and b == pytest.approx(B_S, rel=0.05)


def test_overload_or_backlog_gets_full_batches():
    ctl = BatchController(256)
    assert feed(ctl, 2000) == 256  # four times what the worker can do
    backlog = BatchController(64)
    for _ in range(10):  # a backlog: every batch is as full as allowed, back to back
        n = backlog.size()
        backlog.observe(n, A_S + B_S * n, A_S + B_S * n)
    assert backlog.size() == 64


def test_pinned_controller_always_says_max_batch():
    ctl = BatchController(128, adaptive=False)
    ctl.observe(1, 1.0, 0.001)
    assert ctl.size() == 128


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        BatchController(0)
    with pytest.raises(ValueError):
        BatchController(8, headroom=0.5)


def test_take_events_style_comparison_reads_the_current_size():
    limit = BatchLimit(BatchController(256))
    assert limit.value == 1 and 1 >= limit and not 0 >= limit  # faust: `buffer_size() >= max_`
    for _ in range(30):
        limit.observe(200, 200 / 1000, A_S + B_S * 200)  # 1,000 records/s: more than the worker does
    assert limit.value == 256 and not 255 >= limit and 256 >= limit
