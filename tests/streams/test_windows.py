"""WindowStore against the real Redis of the test stack: exact counts, idempotence, lateness, reads."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import redis

from sentimon.streams.windows import APPLIED, DUPLICATE, LATE, WindowStore

pytestmark = pytest.mark.integration

MIN = 60_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % MIN  # a bucket boundary


@dataclass
class Ev:
    message_id: str
    ts_ms: int
    entities: list[str]
    label: str
    score: float


@pytest.fixture
def client(stack_settings):
    c = redis.Redis.from_url(stack_settings.stack.redis)
    yield c
    c.close()


@pytest.fixture
def store(client, unique) -> WindowStore:
    return WindowStore(client, prefix=unique, bucket_ms=MIN, allowed_lateness_ms=5 * MIN, retention_ms=3600_000)


def test_counts_sums_and_multi_entity(store):
    events = [
        Ev("a", T0 + 1, ["AAPL"], "positive", 0.8),
        Ev("b", T0 + 2, ["AAPL", "TSLA"], "negative", -0.6),
        Ev("c", T0 + MIN + 5, ["AAPL"], "neutral", 0.1),
    ]
    assert store.apply(events) == 3
    s = store.stats("AAPL", 2 * MIN, T0 + 2 * MIN)
    assert (s.count, s.negative, s.neutral, s.positive) == (3, 1, 1, 1)
    assert s.sum_score == pytest.approx(0.3)
    # The script writes exactly the fields the reader sums (no per-event work nobody reads).
    written = {f for b in (T0, T0 + MIN) for f in store.redis.hgetall(f"{store.prefix}:b:AAPL:{b}")}
    assert written == {b"n", b"negative", b"neutral", b"positive", b"sum"}
    assert s.mean_score == pytest.approx(0.1)
    t = store.stats("TSLA", 2 * MIN, T0 + 2 * MIN)
    assert (t.count, t.negative) == (1, 1)
    # A window covering only the first bucket.
    assert store.stats("AAPL", MIN, T0 + MIN).count == 2
    assert store.entities() == ["AAPL", "TSLA"]
    assert store.watermark() == T0 + MIN + 5


def test_buckets_written_by_the_old_script_with_sumsq_still_read_and_update(store):
    # Hashes from before sumsq was dropped (minute bucket and hourly rollup) stay in Redis until their TTL.
    hour = T0 - T0 % 3_600_000
    old = {"n": 2, "negative": 1, "positive": 1, "sum": "0.25", "sumsq": "0.8125"}
    for key in (f"{store.prefix}:b:AAPL:{T0}", f"{store.prefix}:h:AAPL:{hour}"):
        store.redis.hset(key, mapping=old)
    assert store.apply([Ev("new", T0 + 1, ["AAPL"], "neutral", 0.5)]) == 1
    minute = store.stats("AAPL", MIN, T0 + MIN)
    assert (minute.count, minute.negative, minute.neutral, minute.positive) == (3, 1, 1, 1)
    assert minute.sum_score == pytest.approx(0.75)
    [rollup] = store.series("AAPL", hour, hour + 3_600_000, step_ms=3_600_000)
    assert (rollup.stats.count, rollup.stats.sum_score) == (3, pytest.approx(0.75))
    assert store.redis.hget(f"{store.prefix}:b:AAPL:{T0}", "sumsq") == b"0.8125"  # left alone, never read


def test_redelivery_never_double_counts(store):
    batch = [Ev(f"m{i}", T0 + i * 1000, ["X"], "positive", 1.0) for i in range(50)]
    assert store.apply(batch) == 50
    # Same batch again, and a batch mixing old and new ids.
    result = store.apply_detailed(batch)
    assert result.applied == 0 and result.duplicates == 50
    mixed = batch[:10] + [Ev("new", T0 + 51_000, ["X"], "negative", -1.0)]
    assert store.apply_detailed(mixed).statuses == [DUPLICATE] * 10 + [APPLIED]
    s = store.stats("X", 10 * MIN, T0 + 10 * MIN)
    assert (s.count, s.positive, s.negative) == (51, 50, 1)


def test_late_events_within_lateness_land_in_their_bucket_later_ones_are_not_applied(store):
    store.apply([Ev("now", T0 + 10 * MIN, ["E"], "neutral", 0.0)])
    within = Ev("within", T0 + 6 * MIN, ["E"], "negative", -0.5)  # 4 min behind the watermark
    too_late = Ev("late", T0 + 2 * MIN, ["E"], "negative", -0.5)  # 8 min behind, lateness is 5
    assert store.apply_detailed([within, too_late]).statuses == [APPLIED, LATE]
    series = store.series("E", T0 + 5 * MIN, T0 + 11 * MIN)
    assert [b.start_ms for b in series] == [T0 + k * MIN for k in range(5, 11)]
    assert [b.stats.count for b in series] == [0, 1, 0, 0, 0, 1]
    assert store.stats("E", 60 * MIN, T0 + 11 * MIN).count == 2


def test_dedup_sets_are_pruned_behind_the_lateness_horizon(store, client):
    store.apply([Ev("old", T0, ["E"], "neutral", 0.0)])
    assert client.exists(f"{store.prefix}:seen:{T0}")
    store.apply([Ev("far", T0 + 30 * MIN, ["E"], "neutral", 0.0)])
    assert not client.exists(f"{store.prefix}:seen:{T0}")
    # Re-delivery of the pruned id is late, so still not double counted.
    assert store.apply_detailed([Ev("old", T0, ["E"], "neutral", 0.0)]).statuses == [LATE]
    assert store.stats("E", 60 * MIN, T0 + 31 * MIN).count == 2


def test_keys_carry_ttl_and_entities_since(store, client):
    store.apply([Ev("a", T0, ["A"], "positive", 0.5), Ev("b", T0 + 3 * MIN, ["B"], "positive", 0.5)])
    ttl = client.pttl(f"{store.prefix}:b:A:{T0}")
    assert 0 < ttl <= 3600_000
    assert store.entities(since_ms=T0 + MIN) == ["B"]
    top = store.top(10 * MIN, T0 + 4 * MIN)
    assert [r.entity for r in top] == ["A", "B"]


def test_bad_label_is_refused_before_touching_redis(store):
    with pytest.raises(ValueError, match="label"):
        store.apply([Ev("a", T0, ["A"], "angry", 0.5)])
    assert store.entities() == []


def test_long_windows_read_hourly_rollups_and_agree_with_minute_buckets(client, unique):
    import random

    store = WindowStore(client, prefix=unique, bucket_ms=MIN, allowed_lateness_ms=10 * 24 * 60 * MIN)
    rng = random.Random(5)
    start = T0 - T0 % 3_600_000
    labels = ["negative", "neutral", "positive"]
    events = [
        Ev(f"r{i}", start + rng.randrange(0, 3 * 24 * 60) * MIN + rng.randrange(MIN), ["R"], rng.choice(labels),
           round(rng.uniform(-1, 1), 3))
        for i in range(3000)
    ]  # fmt: skip
    events.sort(key=lambda e: e.ts_ms)
    for i in range(0, len(events), 500):
        store.apply(events[i : i + 500])

    def expected(lo: int, hi: int) -> tuple[int, int, float]:
        inside = [e for e in events if lo <= e.ts_ms - e.ts_ms % MIN < hi]
        return len(inside), sum(e.label == "negative" for e in inside), sum(e.score for e in inside)

    # Windows with unaligned edges, whole hours, shorter than an hour and spanning all three days.
    for window_ms, end_ms in [
        (3 * 24 * 3_600_000, start + 3 * 24 * 3_600_000),
        (26 * 3_600_000 + 17 * MIN, start + 30 * 3_600_000 + 5 * MIN + 123),
        (45 * MIN, start + 7 * 3_600_000 + 20 * MIN),
        (2 * 3_600_000, start + 5 * 3_600_000),
        (7 * 24 * 3_600_000, start + 3 * 24 * 3_600_000 + 1),
    ]:
        s = store.stats("R", window_ms, end_ms)
        count, negative, total = expected(end_ms - window_ms, end_ms)
        assert (s.count, s.negative) == (count, negative), (window_ms, end_ms)
        assert s.sum_score == pytest.approx(total)

    hourly = store.series("R", start, start + 24 * 3_600_000, step_ms=3_600_000)
    assert len(hourly) == 24
    assert [h.stats.count for h in hourly] == [expected(h.start_ms, h.start_ms + 3_600_000)[0] for h in hourly]
    by_10 = store.series("R", start, start + 3_600_000, step_ms=10 * MIN)
    assert [b.start_ms - start for b in by_10] == [k * 10 * MIN for k in range(6)]
    assert sum(b.stats.count for b in by_10) == hourly[0].stats.count
    with pytest.raises(ValueError, match="multiple"):
        store.series("R", start, start + MIN, step_ms=1000)
