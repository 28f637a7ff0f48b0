"""Per-partition watermarks in the real Redis: a backlog is judged by its own partition's progress, dedup is
pruned by the lowest watermark, state is bounded, and the memory policy the windows need is checked."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass

import pytest
import redis

from sentimon.core.host import free_port
from sentimon.streams.windows import APPLIED, DUPLICATE, LATE, MemoryPolicyError, WindowStore

pytestmark = pytest.mark.integration

MIN = 60_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % MIN


@dataclass
class Ev:
    message_id: str
    ts_ms: int
    entities: tuple[str, ...]
    label: str
    score: float
    topic: str = "raw.social"
    partition: int = 0


class Clock:
    def __init__(self, t_s: float = 1000.0):
        self.t_s = t_s

    def __call__(self) -> float:
        return self.t_s


@pytest.fixture
def client(stack_settings):
    c = redis.Redis.from_url(stack_settings.stack.redis)
    yield c
    c.close()


def make_store(client, unique, **kw) -> WindowStore:
    opts = {"bucket_ms": MIN, "allowed_lateness_ms": 10 * MIN, "retention_ms": 24 * 60 * MIN, **kw}
    return WindowStore(client, prefix=unique, **opts)


def social(i: int, ts: int, partition: int = 0) -> Ev:
    return Ev(f"s{i}", ts, ("BRAND",), "negative", -0.5, "raw.social", partition)


def market(i: int, ts: int) -> Ev:
    return Ev(f"k{i}", ts, ("AAPL",), "neutral", 0.0, "raw.market", 0)


def test_backlog_of_one_topic_is_not_late_when_another_topic_is_live(client, unique):
    """The issue's scenario in the store: a slow topic reaches "now" first, the social backlog of the last 40
    minutes follows in batches -- every event counts, none is late."""
    store = make_store(client, unique)
    now = T0 + 40 * MIN
    backlog = [social(i, T0 + i * 2400) for i in range(1000)]  # ascending over 40 minutes
    live = [market(i, T0 + i * 24_000) for i in range(100)]
    # The market agent catches up in a few batches while the social one is still at its first.
    assert store.apply_detailed(backlog[:256]).late == 0
    assert store.apply_detailed(live).late == 0
    statuses = []
    for k in range(256, 1000, 256):
        statuses += store.apply_detailed(backlog[k : k + 256]).statuses
    assert statuses.count(LATE) == 0 and statuses.count(APPLIED) == 744
    assert store.stats("BRAND", 41 * MIN, now + MIN).count == 1000
    assert store.stats("AAPL", 41 * MIN, now + MIN).count == 100
    marks = store.watermarks()
    assert marks["raw.social:0"][0] == backlog[-1].ts_ms and marks["raw.market:0"][0] == live[-1].ts_ms


def test_early_clock_on_one_partition_does_not_make_others_late(client, unique):
    store = make_store(client, unique)
    assert store.apply([social(0, T0, partition=0)]) == 1
    # A producer 5 minutes ahead (the most stream.max_future_ms lets through) writes to partition 1 ...
    assert store.apply([social(1, T0 + 60 * MIN, partition=1)]) == 1
    # ... partition 0's on-time events still count; only partition 1's own lateness moved.
    result = store.apply_detailed([social(2, T0 + MIN, partition=0), social(3, T0 + 2 * MIN, partition=1)])
    assert result.statuses == [APPLIED, LATE]


def test_within_lateness_of_its_own_partition_still_applies_and_redelivery_is_deduped(client, unique):
    store = make_store(client, unique)
    batch = [social(i, T0 + i * 1000) for i in range(30)]
    assert store.apply(batch) == 30
    # Another partition far ahead prunes nothing partition 0 may still re-deliver.
    assert store.apply([social(100, T0 + 120 * MIN, partition=3)]) == 1
    assert store.apply_detailed(batch).statuses == [DUPLICATE] * 30
    assert store.stats("BRAND", 10 * MIN, T0 + 5 * MIN).count == 30


def test_dedup_sets_are_pruned_by_the_lowest_watermark(client, unique):
    store = make_store(client, unique)
    store.apply([social(0, T0, partition=0), social(1, T0, partition=1)])
    store.apply([social(2, T0 + 60 * MIN, partition=0)])
    assert client.exists(f"{unique}:seen:{T0}")  # partition 1 is still at T0: its re-deliveries need the set
    store.apply([social(3, T0 + 60 * MIN, partition=1)])
    assert not client.exists(f"{unique}:seen:{T0}")  # every partition is past T0 + lateness now
    assert client.zrangebyscore(f"{unique}:seenidx", "-inf", T0) == []


def test_partitions_and_entities_older_than_the_retention_are_forgotten(client, unique):
    store = make_store(client, unique, retention_ms=60 * MIN)
    store.apply([Ev("old", T0, ("GONE",), "neutral", 0.0, "raw.social", 7)])
    store.apply([social(1, T0 + 30 * MIN)])
    assert set(store.watermarks()) == {"raw.social:7", "raw.social:0"}
    store.apply([social(2, T0 + 61 * MIN)])
    assert set(store.watermarks()) == {"raw.social:0"}  # its buckets expired: it holds nothing back any more
    assert store.entities() == ["BRAND"]  # GONE's last mention is older than the retention


def test_watermark_is_the_lowest_active_partition_and_settled_the_lowest_of_all(client, unique):
    clock = Clock()
    store = make_store(client, unique, idle_partition_ms=60_000, clock=clock)
    assert store.watermark() is None and store.settled_ms() is None
    store.apply([social(0, T0 + 40 * MIN, partition=0), social(1, T0, partition=1)])
    assert store.watermark() == T0  # partition 1 is catching up: silence is not judged past it
    clock.t_s += 30
    store.apply([social(2, T0 + 41 * MIN, partition=0)])
    assert store.watermark() == T0
    clock.t_s += 45  # partition 1 idle for 75 s (> 60 s): it no longer holds back the watermark ...
    assert store.watermark() == T0 + 41 * MIN
    assert store.settled_ms() == T0 - 10 * MIN  # ... but its re-deliveries can still change its buckets


@pytest.fixture
def evicting_redis(tmp_path):
    """A Redis of its own with an evicting policy (the shared test Redis is left as it is)."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed (apt-get install redis-server)"
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path), "--maxmemory-policy", "allkeys-lru"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    c = redis.Redis(port=port, socket_timeout=2, socket_connect_timeout=2)
    deadline = time.monotonic() + 10
    while True:
        try:
            c.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    yield c
    c.close()
    proc.terminate()
    proc.wait(10)


def test_memory_policy_that_may_evict_is_refused_with_the_fix(evicting_redis, client, unique):
    store = WindowStore(evicting_redis, prefix=unique)
    warning = store.check_memory_policy()
    assert warning and "noeviction" in warning and "no maxmemory is set now" in warning  # no limit yet: a warning
    evicting_redis.config_set("maxmemory", "100mb")
    with pytest.raises(MemoryPolicyError, match="CONFIG SET maxmemory-policy noeviction"):
        store.check_memory_policy()
    with pytest.raises(MemoryPolicyError):
        WindowStore(evicting_redis, prefix=unique).apply([social(0, T0)])  # refused before the first write
    assert evicting_redis.dbsize() == 0
    evicting_redis.config_set("maxmemory-policy", "noeviction")
    assert store.check_memory_policy() is None
    assert make_store(client, unique).check_memory_policy() is None  # the stack's Redis is set up right
