"""A small per-entity ring of recent negative texts, for the payload's example texts, terms and sources."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from cachetools import LRUCache


def negative_examples(events: Iterable[Any]) -> dict[str, list[dict]]:
    """entity -> example dicts (id, text, source, ts_ms) of the negative events that carry a text."""
    out: dict[str, list[dict]] = {}
    for ev in events:
        text = getattr(ev, "text", None)
        if getattr(ev, "label", None) != "negative" or not isinstance(text, str) or not text.strip():
            continue
        example = {"id": str(ev.message_id), "text": text[:500], "source": getattr(ev, "source", None),
                   "ts_ms": int(ev.ts_ms)}  # fmt: skip
        for entity in dict.fromkeys(ev.entities):
            out.setdefault(entity, []).append(example)
    return out


class MemoryExamples:
    """The ring per entity in this process, for at most ``max_entities`` entities (least recently used go)."""

    def __init__(self, size: int = 5, max_entities: int = 100_000):
        self.size = size
        self._rings: LRUCache[str, dict[str, dict]] = LRUCache(maxsize=max_entities)

    def add(self, events: Iterable[Any]) -> None:
        for entity, examples in negative_examples(events).items():
            ring = self._rings.get(entity) or {}
            for ex in examples:
                ring[ex["id"]] = ex
            keep = sorted(ring.values(), key=lambda e: (e["ts_ms"], e["id"]))[-self.size :]
            self._rings[entity] = {e["id"]: e for e in keep}

    def recent(self, entity: str) -> list[dict]:
        return sorted(self._rings.get(entity, {}).values(), key=lambda e: (-e["ts_ms"], e["id"]))


class RedisExamples:
    """Sorted set per entity scored by event time; members are the JSON examples, so re-delivery is a no-op."""

    def __init__(self, client, prefix: str = "sentimon:alerts", size: int = 5, ttl_s: int = 7 * 24 * 3600):
        self.client = client
        self.prefix = prefix
        self.size = size
        self.ttl_s = ttl_s

    def key(self, entity: str) -> str:
        return f"{self.prefix}:examples:{entity}"

    def add(self, events: Iterable[Any]) -> None:
        grouped = negative_examples(events)
        if not grouped:
            return
        pipe = self.client.pipeline(transaction=False)
        for entity, examples in grouped.items():
            key = self.key(entity)
            pipe.zadd(key, {json.dumps(e, sort_keys=True): e["ts_ms"] for e in examples})
            pipe.zremrangebyrank(key, 0, -self.size - 1)
            pipe.expire(key, self.ttl_s)
        pipe.execute()

    def recent(self, entity: str) -> list[dict]:
        if self.size <= 0:  # zrevrange(0, -1) would mean "all"
            return []
        return [json.loads(m) for m in self.client.zrevrange(self.key(entity), 0, self.size - 1)]
