"""When rules are evaluated: at event-time boundaries, never at batch ends, so arrival does not matter.

Evaluating at the end of each batch made alerts depend on how events were batched: live traffic (small
batches, one every few seconds) evaluated every minute, a backlog after an outage (256 events spanning
several minutes per batch) only a few times an hour -- a 30-minute burst could breach and clear between two
evaluations and never fire. Here each entity is evaluated at every boundary (a multiple of ``step_ms``, the
window bucket or a multiple of it) that its events cross, in order, over the complete buckets before that
boundary. The same event history then gives the same evaluations, and so the same alerts and the same
``for:`` durations (event time), whether it arrives live, as a backlog or in a replay.

A boundary ``b`` is evaluated at event time ``b - 1``: the window then holds the buckets starting before
``b``, all complete (an event at or after ``b`` arrived for the entity). Pure: no Redis, no clock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from cachetools import LRUCache

from sentimon.alerts.schema import RuleSet


def horizon_ms(rulesets: Sequence[RuleSet]) -> int:
    """How far back a gap in an entity's evaluations is worth catching up: the longest rule window plus its
    ``for:`` -- evaluations before that no longer see anything the current window still holds."""
    spans = [getattr(rule, "window_ms", 0) + rule.for_ms for rs in rulesets for rule in rs.rules]
    return max(spans, default=0)


class EvaluationSchedule:
    """Per entity (LRU-bounded): the last boundary evaluated in this process, and the last boundary its
    events reached; thread-safe.

    A boundary is evaluated once the entity's events crossed it AND the windows' watermark passed it (every
    active source partition is beyond it: its buckets are complete), so a partition that is behind -- one
    catching up on a backlog -- holds evaluations back instead of being missing from them.
    """

    def __init__(self, step_ms: int, horizon_ms: int, max_entities: int = 100_000):
        if step_ms <= 0:
            raise ValueError(f"step_ms must be > 0, got {step_ms}")
        self.step_ms = step_ms
        self.horizon_ms = horizon_ms
        # entity -> (last boundary evaluated, last boundary its events reached)
        self._marks: LRUCache[str, tuple[int, int]] = LRUCache(maxsize=max_entities)
        self._waiting: set[str] = set()  # entities whose events are ahead of the watermark
        self._lock = threading.Lock()

    def floor(self, ts_ms: int) -> int:
        """The last boundary at or before ``ts_ms``."""
        return ts_ms - ts_ms % self.step_ms

    def _points(self, entity: str, end: int) -> range:
        done, reached = self._marks[entity]
        if end <= done:
            return range(0)
        self._marks[entity] = (end, reached)
        if end >= reached:
            self._waiting.discard(entity)  # caught up with its events (catch-up may go past them)
        # A gap longer than the horizon starts at the horizon: older evaluations see nothing still in a window.
        start = max(done + self.step_ms, end - self.floor(self.horizon_ms))
        return range(start, end + 1, self.step_ms)

    def crossed(
        self, events: Iterable[Any], watched: Callable[[str], bool] = lambda entity: True, until_ms: int | None = None
    ) -> dict[int, list[str]]:
        """Boundary -> entities (ascending boundaries) due after this batch: those whose events crossed a
        boundary that the watermark ``until_ms`` (None: no limit) has passed too -- in this batch or before."""
        spans: dict[str, tuple[int, int]] = {}
        for ev in events:
            ts = int(ev.ts_ms)
            for entity in ev.entities:
                lo, hi = spans.get(entity, (ts, ts))
                spans[entity] = (min(lo, ts), max(hi, ts))
        due: dict[int, list[str]] = {}
        with self._lock:
            for entity, (lo, hi) in spans.items():
                if not watched(entity):
                    continue
                # First seen here: boundaries count from its first event (nothing before it to evaluate).
                done, reached = self._marks.get(entity) or (self.floor(lo), self.floor(lo))
                self._marks[entity] = (done, max(reached, self.floor(hi)))
                if self.floor(hi) > done:
                    self._waiting.add(entity)
            for entity in list(self._waiting):
                if entity not in self._marks:  # forgotten by the LRU
                    self._waiting.discard(entity)
                    continue
                # Without a watermark (a plain reader), as far as this batch's own events for the entity went.
                until = until_ms if until_ms is not None else spans.get(entity, (0, 0))[1]
                for b in self._points(entity, min(self._marks[entity][1], self.floor(until))):
                    due.setdefault(b, []).append(entity)
        return dict(sorted(due.items()))

    def catch_up(self, until_ms: int) -> dict[int, list[str]]:
        """Boundary -> entities tracked here not yet evaluated up to the watermark ``until_ms``, also those
        with no event since: a burst followed by quiet still resolves, with no new event crossing a boundary.
        An entity quiet for longer than the horizon has empty windows: it is evaluated up to there, no further."""
        due: dict[int, list[str]] = {}
        with self._lock:
            for entity in list(self._marks.keys()):
                reached = self._marks[entity][1]
                end = min(self.floor(until_ms), reached + self.floor(self.horizon_ms) + self.step_ms)
                for b in self._points(entity, end):
                    due.setdefault(b, []).append(entity)
        return dict(sorted(due.items()))

    def __len__(self) -> int:
        return len(self._marks)
