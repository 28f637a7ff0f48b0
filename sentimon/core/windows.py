"""``WindowStats``: the aggregate of one entity's mentions over a time range.

It lives in core because two independent layers build it: ``streams`` from Redis buckets, and ``alerts``
(its block cache) by adding up parts it read earlier.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class WindowStats:
    """Aggregates over one entity and a time range. ``mean_score`` is None when ``count`` is 0."""

    entity: str
    window_ms: int
    count: int = 0
    negative: int = 0
    neutral: int = 0
    positive: int = 0
    sum_score: float = 0.0

    @classmethod
    def total(cls, entity: str, window_ms: int, parts: Iterable[WindowStats]) -> WindowStats:
        """The aggregate of disjoint parts of one range (e.g. its buckets or cached blocks)."""
        count = negative = neutral = positive = 0
        sum_score = 0.0
        for p in parts:
            count += p.count
            negative += p.negative
            neutral += p.neutral
            positive += p.positive
            sum_score += p.sum_score
        return cls(entity, window_ms, count, negative, neutral, positive, sum_score)

    @property
    def mean_score(self) -> float | None:
        return self.sum_score / self.count if self.count else None

    def share(self, label: str) -> float | None:
        """Fraction of mentions with ``label`` (None when there are none)."""
        return getattr(self, label) / self.count if self.count else None

    def as_dict(self) -> dict:
        return {
            "entity": self.entity,
            "window_ms": self.window_ms,
            "count": self.count,
            "negative": self.negative,
            "neutral": self.neutral,
            "positive": self.positive,
            "sum_score": self.sum_score,
            "mean_score": self.mean_score,
        }
