"""Per-entity sentiment windows in Redis, built from event-time buckets.

Layout under ``<prefix>``:
- ``<prefix>:b:<entity>:<bucket_start_ms>``  hash: n, negative, neutral, positive, sum (TTL = retention)
- ``<prefix>:h:<entity>:<rollup_start_ms>``  the same, per rollup period (1 h): a 7-day window reads 168 of
                                              these plus the minute buckets at its edges, not 10,080 buckets
- ``<prefix>:entities``                       zset: entity -> latest event time seen (ms)
- ``<prefix>:wm``                             the watermark: highest event time applied (ms)
- ``<prefix>:seen:<bucket_start_ms>``         set of message ids applied for that bucket (dedup)
- ``<prefix>:seenidx``                        zset of the dedup sets' bucket starts, for pruning

A batch is applied by ONE Lua script, so it is atomic, and idempotent: an id already in its bucket's seen set
is skipped. Events older than ``watermark - allowed_lateness`` are "late": counted, not applied. Seen sets are
dropped once their whole bucket is behind ``watermark - allowed_lateness`` -- any re-delivery of those ids is
late by then, so dedup memory covers only the lateness horizon, driven by event time (replays behave as live).

Dedup is per (event-time bucket, id): a producer that re-sends an id with a different ``ts`` makes a new
event. Keep ``stream.max_future_ms`` below the allowed lateness, or one early clock can make on-time events late.

All keys of one prefix live on one Redis server (the script touches many entities); Redis Cluster is not
supported -- use a single primary (with replicas / Sentinel) per prefix.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sentimon.core.parts import WindowSettings
from sentimon.core.windows import WindowStats

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
local wm_key = prefix .. ':wm'
local wm = tonumber(redis.call('GET', wm_key) or '-1')
local horizon = wm - lateness
local new_wm = wm
local out = {}
local i = 6
while i <= #ARGV do
  local id = ARGV[i]
  local ts = tonumber(ARGV[i + 1])
  local label = ARGV[i + 2]
  local score = ARGV[i + 3]
  local n_ent = tonumber(ARGV[i + 4])
  local status
  if wm >= 0 and ts < horizon then
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
        local entity = ARGV[i + 4 + j]
        local fine = prefix .. ':b:' .. entity .. ':' .. bucket
        local coarse = prefix .. ':h:' .. entity .. ':' .. rollup
        for _, key in ipairs({fine, coarse}) do
          redis.call('HINCRBY', key, 'n', 1)
          redis.call('HINCRBY', key, label, 1)
          redis.call('HINCRBYFLOAT', key, 'sum', score)
          redis.call('PEXPIRE', key, ttl)
        end
        local last = tonumber(redis.call('ZSCORE', prefix .. ':entities', entity) or '-1')
        if ts > last then
          redis.call('ZADD', prefix .. ':entities', ts, entity)
        end
      end
      if ts > new_wm then
        new_wm = ts
      end
    end
  end
  out[#out + 1] = status
  i = i + 5 + n_ent
end
if new_wm > wm then
  redis.call('SET', wm_key, string.format('%d', new_wm))
  local cutoff = new_wm - lateness - bucket_ms
  local old = redis.call('ZRANGEBYSCORE', prefix .. ':seenidx', '-inf', '(' .. string.format('%d', cutoff + 1))
  for _, b in ipairs(old) do
    redis.call('DEL', prefix .. ':seen:' .. b)
  end
  if #old > 0 then
    redis.call('ZREMRANGEBYSCORE', prefix .. ':seenidx', '-inf', string.format('%d', cutoff))
  end
end
redis.call('PEXPIRE', wm_key, ttl)
redis.call('PEXPIRE', prefix .. ':entities', ttl)
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

    Read API for consumers (alerts, CLI): ``stats``, ``series``, ``entities``, ``watermark``.
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
        # Dedup sets must outlive the lateness horizon; buckets must outlive the longest window read.
        self.retention_ms = max(retention_ms, allowed_lateness_ms + 2 * bucket_ms)
        self._script = redis_client.register_script(_APPLY_LUA)

    @classmethod
    def from_settings(cls, redis_client, settings: WindowSettings) -> WindowStore:
        return cls(
            redis_client,
            prefix=settings.prefix,
            bucket_ms=settings.bucket_ms,
            allowed_lateness_ms=settings.allowed_lateness_ms,
            retention_ms=settings.retention_ms,
        )

    # -- writes
    def apply_detailed(self, events: Sequence[WindowEvent]) -> ApplyResult:
        """Apply a batch atomically; return each event's status (applied, duplicate or late)."""
        if not events:
            return ApplyResult([])
        args: list = [self.prefix, self.bucket_ms, self.allowed_lateness_ms, self.retention_ms, self.rollup_ms]
        for ev in events:
            if ev.label not in LABELS:
                raise ValueError(f"label {ev.label!r} is not one of {LABELS}")
            entities = list(dict.fromkeys(ev.entities))
            args += [ev.message_id, int(ev.ts_ms), ev.label, repr(float(ev.score)), len(entities), *entities]
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

    def watermark(self) -> int | None:
        """Highest event time applied (ms), or None before the first event."""
        raw = self.redis.get(f"{self.prefix}:wm")
        return int(raw) if raw is not None else None

    def top(self, window_ms: int, end_ms: int, limit: int = 10) -> list[WindowStats]:
        """Entities with the most mentions in the window, most first."""
        rows = [self.stats(e, window_ms, end_ms) for e in self.entities(since_ms=end_ms - window_ms)]
        rows = [r for r in rows if r.count]
        rows.sort(key=lambda r: (-r.count, r.entity))
        return rows[:limit]
