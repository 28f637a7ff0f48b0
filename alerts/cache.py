"""A read-through cache over the stream's window store for the alert engine (one per process).

Baselines span days of one-minute buckets (a 7-day ``stats`` is ~290 hash reads even with the store's hourly
rollups, and each rule of each touched entity reads its windows at every boundary). Buckets older than the
lateness horizon (every source partition's watermark minus the allowed lateness: the store's ``settled_ms``)
can never change -- later events for them are "late" and not applied -- so their aggregates are cached in
fixed blocks (10 minutes by default, LRU-bounded); only the edges of a range and the still-mutable recent part
are read from Redis. Reads repeated within one evaluation round (several rules over the same window) are
answered once.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from cachetools import LRUCache

from sentimon.alerts.evaluate import WindowCatalog
from sentimon.core.windows import WindowStats

BLOCK_MS = 10 * 60_000


class Bucket(Protocol):
    @property
    def start_ms(self) -> int: ...

    @property
    def stats(self) -> WindowStats: ...


@runtime_checkable
class WindowSource(WindowCatalog, Protocol):
    """What the cache reads: the stream's window store (``sentimon.streams.WindowStore``) provides it."""

    bucket_ms: int
    allowed_lateness_ms: int

    def stats(self, entity: str, window_ms: int, end_ms: int) -> WindowStats: ...

    def series(self, entity: str, start_ms: int, end_ms: int) -> Sequence[Bucket]: ...

    def settled_ms(self) -> int | None: ...


class CachedWindows:
    """``stats``/``entities``/``watermark`` of a window source, with immutable blocks cached (LRU)."""

    def __init__(
        self, store: WindowSource, block_ms: int = BLOCK_MS, max_blocks: int = 200_000, max_memo: int = 100_000
    ):
        if block_ms % store.bucket_ms:
            raise ValueError(f"block_ms {block_ms} must be a multiple of the store's bucket_ms {store.bucket_ms}")
        self.store = store
        self.block_ms = block_ms
        self.max_blocks = max_blocks
        self._blocks: LRUCache[tuple[str, int], WindowStats] = LRUCache(maxsize=max_blocks)
        # Reads repeated within one round; bounded too, as one round may evaluate a long backlog.
        self._memo: LRUCache[tuple[str, int, int], WindowStats] = LRUCache(maxsize=max_memo)
        self._cutoff: int | None = None
        self._lock = threading.Lock()
        self.redis_reads = 0  # store calls made, for tests and the benchmark

    def refresh(self) -> None:
        """Start an evaluation round: re-read where the settled buckets end, forget the round's memo."""
        settled = self.store.settled_ms()
        with self._lock:
            self._memo.clear()
            self._cutoff = settled

    def watermark(self) -> int | None:
        return self.store.watermark()

    def entities(self, since_ms: int | None = None) -> list[str]:
        return self.store.entities(since_ms)

    def _live(self, entity: str, window_ms: int, end_ms: int) -> WindowStats:
        self.redis_reads += 1
        return self.store.stats(entity, window_ms, end_ms)

    def stats(self, entity: str, window_ms: int, end_ms: int) -> WindowStats:
        key = (entity, window_ms, end_ms)
        with self._lock:
            hit = self._memo.get(key)
            cutoff = self._cutoff
        if hit is not None:
            return hit
        start = end_ms - window_ms
        first = -(-start // self.block_ms) * self.block_ms
        last = end_ms // self.block_ms * self.block_ms
        if cutoff is not None:
            last = min(last, cutoff // self.block_ms * self.block_ms)  # only blocks wholly behind the horizon
        if cutoff is None or first >= last:
            result = self._live(entity, window_ms, end_ms)
        else:
            parts = self._cached_blocks(entity, first, last)
            if start < first:
                parts.append(self._live(entity, first - start, first))
            if last < end_ms:
                parts.append(self._live(entity, end_ms - last, end_ms))
            result = WindowStats.total(entity, window_ms, parts)
        with self._lock:
            self._memo[key] = result
        return result

    def _cached_blocks(self, entity: str, first: int, last: int) -> list[WindowStats]:
        starts = range(first, last, self.block_ms)
        found: dict[int, WindowStats] = {}
        with self._lock:
            for s in starts:
                if (cached := self._blocks.get((entity, s))) is not None:  # get() marks it recently used
                    found[s] = cached
        missing = [s for s in starts if s not in found]
        if missing:
            # One pipelined read for every missing block, summed per block.
            self.redis_reads += 1
            rows = self.store.series(entity, missing[0], missing[-1] + self.block_ms)
            per_block: dict[int, list[WindowStats]] = {s: [] for s in missing}
            for row in rows:
                block = row.start_ms - row.start_ms % self.block_ms
                if block in per_block:
                    per_block[block].append(row.stats)
            with self._lock:
                for s, parts in per_block.items():
                    found[s] = self._blocks[(entity, s)] = WindowStats.total(entity, self.block_ms, parts)
        return [found[s] for s in starts]
