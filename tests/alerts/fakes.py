"""In-memory stand-ins for pure-logic unit tests: a window reader with WindowStore's bucket semantics."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sentimon.core.windows import WindowStats
from sentimon.streams.windows import BucketStats

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a Thursday


@dataclass
class Event:
    message_id: str
    ts_ms: int
    entities: tuple[str, ...]
    label: str
    score: float
    text: str | None = None
    source: str | None = None


class FakeWindows:
    """Buckets keyed by (entity, bucket start); ranges are by bucket start in [start, end) like WindowStore."""

    def __init__(self, bucket_ms: int = MIN):
        self.bucket_ms = bucket_ms
        self.buckets: dict[tuple[str, int], list[float]] = defaultdict(lambda: [0, 0, 0, 0, 0.0])

    def add(self, entity: str, ts_ms: int, label: str, score: float, n: int = 1) -> None:
        row = self.buckets[(entity, ts_ms - ts_ms % self.bucket_ms)]
        row[0] += n
        row[1 + ("negative", "neutral", "positive").index(label)] += n
        row[4] += score * n

    def fill(self, entity: str, start_ms: int, end_ms: int, per_minute: int, label: str = "neutral",
             score: float = 0.0) -> None:  # fmt: skip
        for t in range(start_ms, end_ms, MIN):
            if per_minute:
                self.add(entity, t, label, score, per_minute)

    def _merge(self, entity: str, window_ms: int, starts) -> WindowStats:
        tot = [0, 0, 0, 0, 0.0]
        for b in starts:
            row = self.buckets.get((entity, b))
            if row:
                tot = [a + b for a, b in zip(tot, row, strict=True)]
        return WindowStats(entity, window_ms, int(tot[0]), int(tot[1]), int(tot[2]), int(tot[3]), tot[4])

    def _starts(self, start_ms: int, end_ms: int) -> range:
        first = start_ms - start_ms % self.bucket_ms
        if first < start_ms:
            first += self.bucket_ms
        return range(first, end_ms, self.bucket_ms)

    def stats(self, entity: str, window_ms: int, end_ms: int) -> WindowStats:
        return self._merge(entity, window_ms, self._starts(end_ms - window_ms, end_ms))

    def series(self, entity: str, start_ms: int, end_ms: int) -> list[BucketStats]:
        return [BucketStats(b, self._merge(entity, self.bucket_ms, [b])) for b in self._starts(start_ms, end_ms)]

    def entities(self, since_ms: int | None = None) -> list[str]:
        return sorted({e for e, b in self.buckets if since_ms is None or b + self.bucket_ms > since_ms})
