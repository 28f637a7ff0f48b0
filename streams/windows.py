"""Per-entity sentiment windows in Redis, built from event-time buckets.

Layout under ``<prefix>``:
- ``<prefix>:b:<entity>:<bucket_start_ms>``  hash: n, negative, neutral, positive, sum (TTL = retention)
- ``<prefix>:h:<entity>:<rollup_start_ms>``  the same, per rollup period (1 h): a 7-day window reads 168 of
                                              these plus the minute buckets at its edges, not 10,080 buckets
- ``<prefix>:entities``                       zset: entity -> latest event time seen (ms); pruned at retention
- ``<prefix>:wms``                            hash: "<topic>:<partition>" -> that partition's watermark (ms)
- ``<prefix>:wmat``                           hash: "<topic>:<partition>" -> wall clock of its last advance (ms)
- ``<prefix>:seen:<bucket_start_ms>``         set of message ids applied for that bucket (dedup)
- ``<prefix>:seenidx``                        zset of the dedup sets' bucket starts, for pruning

A batch is applied by ONE Lua script, so it is atomic, and idempotent: an id already in its bucket's seen set
is skipped. Each source partition has its own watermark (the highest event time applied from it); an event
older than ITS partition's ``watermark - allowed_lateness`` is "late": counted, not applied. So a backlog
consumed after an outage is judged against its own progress -- a fast topic, or a producer with an early
clock on another partition, cannot make it late -- and live, backlog and replay count the same events. Seen
sets are dropped once their whole bucket is behind the LOWEST partition watermark minus the lateness: any
re-delivery of those ids is late for its own partition by then.

Dedup is per (event-time bucket, id): a producer that re-sends an id with a different ``ts`` makes a new
event. ``stream.max_future_ms`` must stay below the allowed lateness (the settings check it), or one early
clock could make the on-time events of its own partition late.

All keys of one prefix live on one Redis server (the script touches many entities); Redis Cluster is not
supported -- use a single primary (with replicas / Sentinel) per prefix. Evicting any of these keys loses
counts or double-counts re-deliveries: the server must run with ``maxmemory-policy noeviction``
(``check_memory_policy`` says so at worker start).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sentimon.core.parts import WindowSettings
from sentimon.core.windows import WindowStats
from sentimon.streams.errors import StreamsError

log = logging.getLogger(__name__)

LABELS = ("negative", "neutral", "positive")

# Status codes returned by the script per event.
APPLIED, DUPLICATE, LATE = 0, 1, 2
STATUS_NAMES = {APPLIED: "applied", DUPLICATE: "duplicate", LATE: "late"}

_APPLY_LUA = """
local prefix = ARGV[1]
local bucket_ms = tonumber(ARGV[2])
local lateness = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local rollup_ms = tonumber(ARGV[5])
local wall_ms = ARGV[6]
local wms_key = prefix .. ':wms'
local wmat_key = prefix .. ':wmat'
local entities_key = prefix .. ':entities'
-- Each source partition has its own watermark: a partition catching up on a backlog is judged against its
-- own progress, never against a faster topic or a producer with an early clock on another partition.
local wm = {}
local advanced = {}
local out = {}
local i = 7
while i <= #ARGV do
  local id = ARGV[i]
  local ts = tonumber(ARGV[i + 1])
  local label = ARGV[i + 2]
  local score = ARGV[i + 3]
  local src = ARGV[i + 4]
  local n_ent = tonumber(ARGV[i + 5])
  if wm[src] == nil then
    wm[src] = tonumber(redis.call('HGET', wms_key, src) or '-1')
  end
  local status
  if wm[src] >= 0 and ts < wm[src] - lateness then
    status = 2
  else
    local bucket = string.format('%d', ts - (ts % bucket_ms))
    local seen = prefix .. ':seen:' .. bucket
    if redis.call('SADD', seen, id) == 0 then
      status = 1
    else
      status = 0
      redis.call('PEXPIRE', seen, ttl)
      redis.call('ZADD', prefix .. ':seenidx', bucket, bucket)
      local rollup = string.format('%d', ts - (ts % rollup_ms))
      for j = 1, n_ent do
        local entity = ARGV[i + 5 + j]
        local fine = prefix .. ':b:' .. entity .. ':' .. bucket
        local coarse = prefix .. ':h:' .. entity .. ':' .. rollup
        for _, key in ipairs({fine, coarse}) do
          redis.call('HINCRBY', key, 'n', 1)
          redis.call('HINCRBY', key, label, 1)
          redis.call('HINCRBYFLOAT', key, 'sum', score)
          redis.call('PEXPIRE', key, ttl)
        end
        local last = tonumber(redis.call('ZSCORE', entities_key, entity) or '-1')
        if ts > last then
          redis.call('ZADD', entities_key, ts, entity)
        end
      end
      if ts > wm[src] then
        wm[src] = ts
        advanced[src] = true
      end
    end
  end
  out[#out + 1] = status
  i = i + 6 + n_ent
end
if next(advanced) ~= nil then
  for src, _ in pairs(advanced) do
    redis.call('HSET', wms_key, src, string.format('%d', wm[src]))
    redis.call('HSET', wmat_key, src, wall_ms)
  end
  -- Partitions whose watermark is a whole retention behind the newest one hold nothing that still exists:
  -- forget them, so the minimum below (and the hash) only covers partitions that matter.
  local all = redis.call('HGETALL', wms_key)
  local high = -1
  for k = 2, #all, 2 do
    high = math.max(high, tonumber(all[k]))
  end
  local low = high
  for k = 1, #all, 2 do
    local w = tonumber(all[k + 1])
    if w < high - ttl then
      redis.call('HDEL', wms_key, all[k])
      redis.call('HDEL', wmat_key, all[k])
    else
      low = math.min(low, w)
    end
  end
  -- A re-delivery is applied only when it is within the lateness of ITS partition's watermark, so dedup sets
  -- are needed back to the lowest partition watermark minus the lateness, no further.
  local cutoff = low - lateness - bucket_ms
  local old = redis.call('ZRANGEBYSCORE', prefix .. ':seenidx', '-inf', '(' .. string.format('%d', cutoff + 1))
  for _, b in ipairs(old) do
    redis.call('DEL', prefix .. ':seen:' .. b)
  end
  if #old > 0 then
    redis.call('ZREMRANGEBYSCORE', prefix .. ':seenidx', '-inf', string.format('%d', cutoff))
  end
  -- Entities whose last mention is older than the retention have no bucket left.
  redis.call('ZREMRANGEBYSCORE', entities_key, '-inf', '(' .. string.format('%d', high - ttl))
end
redis.call('PEXPIRE', wms_key, ttl)
redis.call('PEXPIRE', wmat_key, ttl)
redis.call('PEXPIRE', entities_key, ttl)
redis.call('PEXPIRE', prefix .. ':seenidx', ttl)
return out
"""


class WindowEvent(Protocol):
    """What ``WindowStore.apply`` needs from an event (``streams.ScoredEvent`` provides it)."""

    # Read-only members, so frozen dataclasses and tuples of entities qualify.
    @property
    def message_id(self) -> str: ...
    @property
    def ts_ms(self) -> int: ...
    @property
    def entities(self) -> Sequence[str]: ...
    @property
    def label(self) -> str: ...
    @property
    def score(self) -> float: ...

    # Optional: ``topic`` and ``partition`` name the source whose watermark judges the event (events without
    # them share one source, "-:0").


class MemoryPolicyError(StreamsError):
    """Redis may evict the windows' keys (``maxmemory-policy`` is not ``noeviction``)."""


@dataclass(frozen=True)
class BucketStats:
    """One event-time bucket of one entity (``start_ms`` inclusive, ``start_ms + bucket_ms`` exclusive)."""

    start_ms: int
    stats: WindowStats


@dataclass(frozen=True)
class ApplyResult:
    statuses: list[int]  # per event, APPLIED / DUPLICATE / LATE

    @property
    def applied(self) -> int:
        return self.statuses.count(APPLIED)

    @property
    def duplicates(self) -> int:
        return self.statuses.count(DUPLICATE)

    @property
    def late(self) -> int:
        return self.statuses.count(LATE)


def _merge(entity: str, window_ms: int, rows: Iterable[list]) -> WindowStats:
    n = neg = neu = pos = 0
    s = 0.0
    for row in rows:
        if row[0] is None:
            continue
        n += int(row[0])
        neg += int(row[1] or 0)
        neu += int(row[2] or 0)
        pos += int(row[3] or 0)
        s += float(row[4] or 0)
    return WindowStats(entity, window_ms, n, neg, neu, pos, s)


class WindowStore:
    """Idempotent event-time windows over a ``redis.Redis`` client (decode_responses either way).

    Read API for consumers (alerts, CLI): ``stats``, ``series``, ``entities``, ``watermark``, ``settled_ms``.
    """

    _FIELDS = ("n", "negative", "neutral", "positive", "sum")

    def __init__(
        self,
        redis_client,
        prefix: str = "sentimon",
        bucket_ms: int = 60_000,
        allowed_lateness_ms: int = 600_000,
        retention_ms: int = 8 * 24 * 3600 * 1000,
        rollup_ms: int = 3_600_000,
        idle_partition_ms: int = 300_000,
        clock: Callable[[], float] = time.time,
    ):
        if bucket_ms <= 0 or allowed_lateness_ms < 0 or retention_ms <= 0:
            raise ValueError("bucket_ms and retention_ms must be > 0, allowed_lateness_ms >= 0")
        if rollup_ms < bucket_ms or rollup_ms % bucket_ms:
            raise ValueError(f"rollup_ms {rollup_ms} must be a multiple of bucket_ms {bucket_ms}")
        self.rollup_ms = rollup_ms
        self.redis = redis_client
        self.prefix = prefix
        self.bucket_ms = bucket_ms
        self.allowed_lateness_ms = allowed_lateness_ms
        self.idle_partition_ms = idle_partition_ms
        self.clock = clock
        # Dedup sets must outlive the lateness horizon; buckets must outlive the longest window read.
        self.retention_ms = max(retention_ms, allowed_lateness_ms + 2 * bucket_ms)
        self._script = redis_client.register_script(_APPLY_LUA)
        self._policy_checked = False

    @classmethod
    def from_settings(cls, redis_client, settings: WindowSettings) -> WindowStore:
        return cls(
            redis_client,
            prefix=settings.prefix,
            bucket_ms=settings.bucket_ms,
            allowed_lateness_ms=settings.allowed_lateness_ms,
            retention_ms=settings.retention_ms,
            idle_partition_ms=settings.idle_partition_ms,
        )

    def check_memory_policy(self) -> str | None:
        """Raise ``MemoryPolicyError`` when Redis has a memory limit and may evict keys; return a warning when
        it may once a limit is set, None when it is safe (or the server does not let us ask)."""
        import redis

        try:
            config = self.redis.config_get("maxmemory*")
        except redis.ResponseError:  # managed Redis services often disable CONFIG: we cannot tell
            return None
        config = {_text(k): _text(v) for k, v in config.items()}
        policy = config.get("maxmemory-policy", "noeviction")
        if policy == "noeviction":
            return None
        fix = (
            f"Redis maxmemory-policy is {policy!r}: it may evict window buckets and dedup sets (lost or "
            "double counts). Set it to noeviction (redis.conf `maxmemory-policy noeviction`, or "
            "`redis-cli CONFIG SET maxmemory-policy noeviction`) and size maxmemory for the retention"
        )
        if int(config.get("maxmemory", "0") or 0) > 0:
            raise MemoryPolicyError(fix)
        return fix + " (no maxmemory is set now, so nothing is evicted yet)"

    # -- writes
    def apply_detailed(self, events: Sequence[WindowEvent]) -> ApplyResult:
        """Apply a batch atomically; return each event's status (applied, duplicate or late)."""
        if not events:
            return ApplyResult([])
        if not self._policy_checked:
            # Once per store, before its first write: the worker, replays and benchmarks all write here.
            warning = self.check_memory_policy()
            if warning:
                log.warning("%s", warning)
            self._policy_checked = True
        args: list = [self.prefix, self.bucket_ms, self.allowed_lateness_ms, self.retention_ms, self.rollup_ms,
                      int(self.clock() * 1000)]  # fmt: skip
        for ev in events:
            if ev.label not in LABELS:
                raise ValueError(f"label {ev.label!r} is not one of {LABELS}")
            entities = list(dict.fromkeys(ev.entities))
            source = f"{getattr(ev, 'topic', None) or '-'}:{int(getattr(ev, 'partition', 0) or 0)}"
            args += [ev.message_id, int(ev.ts_ms), ev.label, repr(float(ev.score)), source, len(entities), *entities]
        statuses = self._script(keys=[], args=args)
        return ApplyResult([int(s) for s in statuses])

    def apply(self, events: Sequence[WindowEvent]) -> int:
        """Apply a batch atomically and idempotently; return how many events were newly applied."""
        return self.apply_detailed(events).applied

    # -- reads
    def _key(self, entity: str, bucket: int) -> str:
        return f"{self.prefix}:b:{entity}:{bucket}"

    def _buckets(self, start_ms: int, end_ms: int) -> range:
        # Buckets overlapping [start_ms, end_ms): a bucket counts whole once it starts inside the range.
        first = start_ms - start_ms % self.bucket_ms
        if first < start_ms:
            first += self.bucket_ms
        return range(first, end_ms, self.bucket_ms)

    def _rows(self, entity: str, buckets: range, kind: str = "b") -> list[list]:
        if not len(buckets):
            return []
        pipe = self.redis.pipeline(transaction=False)
        for b in buckets:
            pipe.hmget(f"{self.prefix}:{kind}:{entity}:{b}", *self._FIELDS)
        return pipe.execute()

    def _cover(self, start_ms: int, end_ms: int) -> tuple[range, Sequence[int]]:
        """Split the buckets starting in ``[start_ms, end_ms)`` into whole rollup periods and edge buckets."""
        buckets = self._buckets(start_ms, end_ms)
        if not len(buckets):
            return range(0), buckets
        first, stop = buckets.start, buckets.stop
        stop = stop + (-(stop - first) % self.bucket_ms)  # first bucket start not included
        r = self.rollup_ms
        first_full = first + (-first % r)
        last_full = stop - stop % r
        if first_full >= last_full:
            return range(0), buckets
        edges = [*range(first, first_full, self.bucket_ms), *range(last_full, stop, self.bucket_ms)]
        return range(first_full, last_full, r), edges

    def stats(self, entity: str, window_ms: int, end_ms: int) -> WindowStats:
        """Aggregates of the buckets starting in ``[end_ms - window_ms, end_ms)``."""
        rollups, edges = self._cover(end_ms - window_ms, end_ms)
        pipe = self.redis.pipeline(transaction=False)
        for b in rollups:
            pipe.hmget(f"{self.prefix}:h:{entity}:{b}", *self._FIELDS)
        for b in edges:
            pipe.hmget(self._key(entity, b), *self._FIELDS)
        rows = pipe.execute() if (len(rollups) or len(edges)) else []
        return _merge(entity, window_ms, rows)

    def series(self, entity: str, start_ms: int, end_ms: int, step_ms: int | None = None) -> list[BucketStats]:
        """One ``BucketStats`` per step starting in ``[start_ms, end_ms)``, empty steps included.

        ``step_ms`` defaults to ``bucket_ms``; ``rollup_ms`` (1 h) with an hour-aligned ``start_ms`` reads the
        hourly rollups directly (a 14-day hourly baseline is 336 reads).
        """
        step = step_ms or self.bucket_ms
        if step == self.rollup_ms and start_ms % self.rollup_ms == 0:
            periods = range(start_ms, end_ms, step)
            rows = self._rows(entity, periods, kind="h")
            return [BucketStats(p, _merge(entity, step, [row])) for p, row in zip(periods, rows, strict=True)]
        if step % self.bucket_ms:
            raise ValueError(f"step_ms {step} must be a multiple of bucket_ms {self.bucket_ms}")
        buckets = self._buckets(start_ms, end_ms)
        rows = self._rows(entity, buckets)
        if step == self.bucket_ms:
            return [BucketStats(b, _merge(entity, step, [row])) for b, row in zip(buckets, rows, strict=True)]
        grouped: dict[int, list] = {}
        for b, row in zip(buckets, rows, strict=True):
            grouped.setdefault(buckets.start + (b - buckets.start) // step * step, []).append(row)
        return [BucketStats(p, _merge(entity, step, grouped.get(p, []))) for p in range(buckets.start, end_ms, step)]

    def entities(self, since_ms: int | None = None) -> list[str]:
        """Entities seen (optionally only those with an event at or after ``since_ms``), sorted."""
        low = "-inf" if since_ms is None else since_ms
        names = self.redis.zrangebyscore(f"{self.prefix}:entities", low, "+inf")
        return sorted(n.decode() if isinstance(n, bytes) else n for n in names)

    def watermarks(self) -> dict[str, tuple[int, int]]:
        """``"topic:partition"`` -> (its watermark, wall-clock ms of its last advance)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(f"{self.prefix}:wms")
        pipe.hgetall(f"{self.prefix}:wmat")
        wms, wmat = pipe.execute()
        at = {_text(k): int(v) for k, v in wmat.items()}
        return {_text(k): (int(v), at.get(_text(k), 0)) for k, v in wms.items()}

    def watermark(self) -> int | None:
        """Event time up to which every active source partition has progressed (ms), None before any event.

        The lowest watermark of the partitions that advanced within ``idle_partition_ms`` (wall clock), so a
        partition catching up on a backlog holds it back while an idle one does not; with none active, the
        highest. Silence is judged here: no mentions before this time means none will come (but late ones).
        """
        marks = self.watermarks()
        if not marks:
            return None
        now = int(self.clock() * 1000)
        active = [wm for wm, at in marks.values() if now - at <= self.idle_partition_ms]
        return min(active) if active else max(wm for wm, _ in marks.values())

    def settled_ms(self) -> int | None:
        """Buckets starting before this never change again (every partition's watermark minus the lateness:
        later events for them are late wherever they come from); None before any event."""
        marks = self.watermarks()
        if not marks:
            return None
        return min(wm for wm, _ in marks.values()) - self.allowed_lateness_ms

    def top(self, window_ms: int, end_ms: int, limit: int = 10) -> list[WindowStats]:
        """Entities with the most mentions in the window, most first."""
        rows = [self.stats(e, window_ms, end_ms) for e in self.entities(since_ms=end_ms - window_ms)]
        rows = [r for r in rows if r.count]
        rows.sort(key=lambda r: (-r.count, r.entity))
        return rows[:limit]

    # -- dropping data (`sentimon forget`): SCAN + UNLINK in batches, never KEYS (it blocks a busy server)
    def forget(self, entities: Iterable[str], batch: int = 500, dry_run: bool = False) -> int:
        """Delete every minute bucket and hourly rollup of ``entities`` and drop them from the entity index;
        returns the number of keys deleted (or that would be, with ``dry_run``). Dedup sets are shared by all
        entities and stay: a re-delivery of a forgotten message is still a duplicate, never a new count."""
        names = list(dict.fromkeys(entities))
        total = 0
        for entity in names:
            for kind in ("b", "h"):
                head = f"{self.prefix}:{kind}:{entity}:"
                # The glob would also match an entity named "<entity>:x": keep keys ending in a bucket start only.
                keys = (k for k in scan_keys(self.redis, glob_escape(head) + "*", batch)
                        if _text(k)[len(head):].isdigit())  # fmt: skip
                total += count_or_unlink(self.redis, keys, batch, dry_run)
        if names and not dry_run:
            self.redis.zrem(f"{self.prefix}:entities", *names)
        return total

    def drop_all(self, batch: int = 500, dry_run: bool = False) -> int:
        """Delete every window key of this prefix (buckets, rollups, entity index, watermarks, dedup sets) and
        nothing else under it (alert states may share the prefix); returns the number of keys deleted."""
        p = glob_escape(self.prefix)
        total = 0
        for pattern in (f"{p}:b:*", f"{p}:h:*", f"{p}:seen:*"):
            total += count_or_unlink(self.redis, scan_keys(self.redis, pattern, batch), batch, dry_run)
        singles = [f"{self.prefix}:{name}" for name in ("entities", "wms", "wmat", "seenidx")]
        if dry_run:
            return total + int(self.redis.exists(*singles))
        return total + int(self.redis.unlink(*singles))


def glob_escape(text: str) -> str:
    """``text`` as a literal in a Redis MATCH pattern (``*``, ``?``, ``[``, ``]`` and ``\\`` escaped)."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def scan_keys(client, pattern: str, batch: int = 500) -> Iterable:
    """Keys matching ``pattern``, by SCAN (incremental: never blocks the server like KEYS)."""
    return client.scan_iter(match=pattern, count=batch)


def count_or_unlink(client, keys: Iterable, batch: int = 500, dry_run: bool = False) -> int:
    """UNLINK ``keys`` in batches of ``batch`` (freed in the background); returns how many were deleted, or with
    ``dry_run`` how many there are."""
    total, chunk = 0, []
    for key in keys:
        chunk.append(key)
        if len(chunk) >= batch:
            total += len(chunk) if dry_run else int(client.unlink(*chunk))
            chunk = []
    if chunk:
        total += len(chunk) if dry_run else int(client.unlink(*chunk))
    return total


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
