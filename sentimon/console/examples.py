"""Example posts per entity and label, from the scored topic: a bounded book (pure) and the Kafka tail that
fills it (a daemon thread reading the last ``lookback`` records of each partition, then following).

The windows keep counts only; the scored topic is where the texts are. Memory stays bounded: a few texts per
(entity, label) and the most recently mentioned ``max_entities`` entities.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict, deque
from typing import Any

from sentimon.alerts.payload import top_terms
from sentimon.core.settings import Settings
from sentimon.streams.windows import LABELS

log = logging.getLogger(__name__)


class ExampleBook:
    def __init__(self, per_label: int = 3, texts_for_terms: int = 50, max_entities: int = 2000):
        self.per_label = per_label
        self.texts_for_terms = texts_for_terms
        self.max_entities = max_entities
        self.lock = threading.Lock()
        self._labels: OrderedDict[str, dict[str, deque[dict[str, Any]]]] = OrderedDict()
        self._texts: dict[str, deque[str]] = {}

    def add(self, record: dict[str, Any]) -> None:
        """One scored record (the scored topic's JSON); duplicates and records without text are skipped."""
        text, label = record.get("text"), record.get("label")
        if record.get("status") == "duplicate" or not isinstance(text, str) or not text.strip():
            return
        if label not in LABELS:
            return
        example = {"id": record.get("id"), "ts_ms": record.get("ts"), "text": text[:500],
                   "score": record.get("score"), "source": record.get("source")}  # fmt: skip
        with self.lock:
            for entity in dict.fromkeys(record.get("entities") or []):
                per = self._labels.get(entity)
                if per is None:
                    per = self._labels[entity] = {lab: deque(maxlen=self.per_label) for lab in LABELS}
                    self._texts[entity] = deque(maxlen=self.texts_for_terms)
                    if len(self._labels) > self.max_entities:
                        gone, _ = self._labels.popitem(last=False)
                        del self._texts[gone]
                self._labels.move_to_end(entity)
                per[label].appendleft(example)
                self._texts[entity].append(text)

    def for_entity(self, entity: str, terms: int = 8) -> dict[str, Any]:
        """Newest examples per label and the entity's frequent terms (its own name left out)."""
        with self.lock:
            per = self._labels.get(entity)
            texts = list(self._texts.get(entity, ()))
            examples = {lab: list(per[lab]) if per else [] for lab in LABELS}
        return {"examples": examples, "top_terms": top_terms(texts, exclude=[entity], limit=terms)}


class ScoredTail:
    """Follows the scored topic into an ``ExampleBook`` until ``stop()``; a Kafka outage is logged and retried."""

    def __init__(self, settings: Settings, topic: str, book: ExampleBook, lookback: int, retry_s: float = 5.0):
        self.settings, self.topic, self.book, self.lookback, self.retry_s = settings, topic, book, lookback, retry_s
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="console-scored-tail", daemon=True)

    def start(self) -> ScoredTail:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._follow()
                return
            except Exception as exc:  # Kafka down or the topic missing: the board shows it, and we retry
                self.error = f"scored topic {self.topic!r} at {self.settings.stack.kafka_servers}: {exc}"
                log.warning("console: %s; retrying in %.0f s", self.error, self.retry_s)
                self._stop.wait(self.retry_s)

    def _follow(self) -> None:
        from kafka import TopicPartition

        from sentimon.infra import kafka_clients

        consumer = kafka_clients.consumer(self.settings, enable_auto_commit=False, group_id=None,
                                          consumer_timeout_ms=500, request_timeout_ms=15000)  # fmt: skip
        try:
            partitions = consumer.partitions_for_topic(self.topic)
            if not partitions:
                raise RuntimeError("topic not found (create it with `sentimon topics create`)")
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            ends = consumer.end_offsets(tps)
            begins = consumer.beginning_offsets(tps)
            for tp in tps:
                consumer.seek(tp, max(ends[tp] - self.lookback, begins[tp]))
            self.error = None
            while not self._stop.is_set():
                for batch in consumer.poll(timeout_ms=500, max_records=2000).values():
                    for rec in batch:
                        try:
                            self.book.add(json.loads(rec.value))
                        except (ValueError, TypeError, AttributeError):
                            continue  # not a scored record: nothing to show
        finally:
            consumer.close()
