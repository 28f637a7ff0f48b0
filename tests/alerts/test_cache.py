"""The block cache over the real WindowStore gives exactly the store's answers, with fewer Redis reads."""

from __future__ import annotations

import random

import pytest
import redis

from sentimon.alerts.cache import CachedWindows
from sentimon.streams.windows import WindowStore

from .fakes import HOUR, MIN, T0, Event

pytestmark = pytest.mark.integration


@pytest.fixture
def store(stack_settings, unique):
    client = redis.Redis.from_url(stack_settings.stack.redis)
    yield WindowStore(client, prefix=unique, allowed_lateness_ms=10 * MIN)
    client.close()


def events(start_ms: int, minutes: int, seed: int = 1) -> list[Event]:
    rng = random.Random(seed)
    labels = ("negative", "neutral", "positive")
    return [
        Event(f"m{start_ms}-{i}", start_ms + i * 20_000 + rng.randrange(20_000), ("AAPL",), rng.choice(labels),
              rng.uniform(-1, 1))
        for i in range(minutes * 3)
    ]  # fmt: skip


def test_cached_stats_equal_the_store_for_any_range(store):
    store.apply(events(T0, 6 * 60))
    cached = CachedWindows(store)
    cached.refresh()
    rng = random.Random(7)
    wm = store.watermark()
    cases = [(rng.choice([MIN, 5 * MIN, HOUR, 2 * HOUR, 5 * HOUR]), wm + 1 - rng.randrange(0, 4 * HOUR))
             for _ in range(60)]  # fmt: skip
    for window, end in cases:
        a, b = cached.stats("AAPL", window, end), store.stats("AAPL", window, end)
        assert (a.count, a.negative, a.neutral, a.positive) == (b.count, b.negative, b.neutral, b.positive)
        assert a.sum_score == pytest.approx(b.sum_score)
    reads = cached.redis_reads
    cached.refresh()
    long = cached.stats("AAPL", 5 * HOUR, wm + 1)
    assert long.count == store.stats("AAPL", 5 * HOUR, wm + 1).count
    assert cached.redis_reads - reads <= 2  # the edges only: every whole block came from the cache


def test_recent_blocks_are_not_cached_so_new_events_count(store):
    store.apply(events(T0, 60))
    cached = CachedWindows(store)
    cached.refresh()
    wm = store.watermark()
    before = cached.stats("AAPL", HOUR, wm + 1).count
    late_but_allowed = [Event("fresh", wm - 5 * MIN, ("AAPL",), "negative", -1.0)]  # inside the lateness
    assert store.apply(late_but_allowed) == 1
    cached.refresh()
    assert cached.stats("AAPL", HOUR, wm + 1).count == before + 1


def test_without_a_watermark_everything_is_read_live(store):
    cached = CachedWindows(store)
    cached.refresh()
    assert cached.stats("AAPL", HOUR, T0).count == 0 and cached.redis_reads == 1
    with pytest.raises(ValueError, match="multiple of the store's bucket_ms"):
        CachedWindows(store, block_ms=90_000)
