"""Per-model label counts beside the windows, while a canary splits an entity's traffic between two models.

``<windows.prefix>:m:<entity>:<bucket_start_ms>`` is a hash of ``NAME@VERSION:<label>`` -> count, with the buckets'
TTL. Only events the window update applied are counted, so a re-delivery (a duplicate there) adds nothing; a
worker killed between the window update and this count leaves that one batch out of these counts, while the
windows themselves stay exact (a separate hash instead of a change to the windows' Lua script).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def model_counts_key(window_prefix: str, entity: str, bucket_start_ms: int) -> str:
    return f"{window_prefix}:m:{entity}:{bucket_start_ms}"


def count_by_model(events: Sequence[Any], redis: Any, window_prefix: str, bucket_ms: int, ttl_ms: int) -> None:
    """Add the applied ``events`` (``ScoredEvent``) to their entities' per-model counts."""
    pipe = redis.pipeline(transaction=False)
    touched = set()
    for ev in events:
        if ev.status != "applied":
            continue
        bucket = ev.ts_ms - ev.ts_ms % bucket_ms
        for entity in dict.fromkeys(ev.entities):
            key = model_counts_key(window_prefix, entity, bucket)
            pipe.hincrby(key, f"{ev.model}@{ev.model_version}:{ev.label}", 1)
            touched.add(key)
    for key in touched:
        pipe.pexpire(key, ttl_ms)
    if touched:
        pipe.execute()


def model_counts(redis: Any, window_prefix: str, entity: str, buckets: Sequence[int]) -> dict[str, dict[str, int]]:
    """Per-model label counts of ``entity`` over ``buckets`` (bucket starts): ``{"NAME@VERSION": {label: n}}``."""
    pipe = redis.pipeline(transaction=False)
    for bucket in buckets:
        pipe.hgetall(model_counts_key(window_prefix, entity, bucket))
    totals: dict[str, dict[str, int]] = {}
    for row in pipe.execute() if buckets else []:
        for field, value in row.items():
            text = field.decode() if isinstance(field, bytes) else field
            model, _, label = text.rpartition(":")
            totals.setdefault(model, {})[label] = totals.get(model, {}).get(label, 0) + int(value)
    return totals
