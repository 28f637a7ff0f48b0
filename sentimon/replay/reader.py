"""Read a time range of a topic back, in event-time order across partitions, without joining a group."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sentimon.core.settings import Settings
from sentimon.infra import kafka_clients
from sentimon.replay.errors import EmptyRangeError
from sentimon.streams.errors import StreamsError
from sentimon.streams.pipeline import RawRecord

IDLE_POLLS_BEFORE_GIVING_UP = 30  # 30 empty one-second polls below the end offset: the broker has nothing more
TAIL_RECORDS = 100  # records read at a partition's end for its latest timestamp (CreateTime need not grow)
PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class PartitionRange:
    partition: int
    start: int  # first offset to read
    end: int  # first offset not to read

    @property
    def size(self) -> int:
        return max(0, self.end - self.start)


BOOTSTRAP_TIMEOUT_MS = 10_000  # a broker that does not answer in 10 s is down, not slow


class TopicRange:
    """The records of ``topic`` with ``from_ms <= timestamp < to_ms`` (either bound optional)."""

    def __init__(self, settings: Settings, topic: str, from_ms: int | None = None, to_ms: int | None = None):
        from kafka import TopicPartition

        self.settings, self.topic = settings, topic
        from kafka.errors import KafkaConnectionError, KafkaTimeoutError

        try:
            probe = kafka_clients.consumer(settings, enable_auto_commit=False, client_id="sentimon-replay",
                                           bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS)  # fmt: skip
        except (KafkaConnectionError, KafkaTimeoutError) as exc:
            raise StreamsError(
                f"Kafka at {settings.stack.kafka_servers} is unreachable ({type(exc).__name__}); start it with "
                f"`sentimon up`, or {kafka_clients.settings_to_check(settings)}"
            ) from None
        try:
            partitions = probe.partitions_for_topic(topic)
            if not partitions:
                raise StreamsError(
                    f"topic {topic!r} does not exist on {settings.stack.kafka_servers}; list topics or check the name"
                )
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            ends = probe.end_offsets(tps)
            begins = probe.beginning_offsets(tps)
            starts = self._lookup(probe, tps, from_ms, begins, ends)
            stops = self._lookup(probe, tps, to_ms, ends, ends)
        finally:
            probe.close()
        self.from_ms, self.to_ms = from_ms, to_ms
        self.ranges = [PartitionRange(tp.partition, starts[tp], stops[tp]) for tp in tps]
        self.held = [PartitionRange(tp.partition, begins[tp], ends[tp]) for tp in tps]

    @staticmethod
    def _lookup(consumer, tps, ts_ms, default, ends) -> dict:
        if ts_ms is None:
            return dict(default)
        found = consumer.offsets_for_times({tp: ts_ms for tp in tps})
        # No record at or after ts_ms in a partition: the range ends (or starts) at its end.
        return {tp: (found[tp].offset if found.get(tp) is not None else ends[tp]) for tp in tps}

    @property
    def total(self) -> int:
        return sum(r.size for r in self.ranges)

    def require_records(self) -> None:
        """Raise EmptyRangeError, naming what the topic does hold, when the range has no records.

        Raw topics keep a week: a range older than that (or a demo played more than a week ago) is gone, and a
        replay of it would otherwise "succeed" with 0 records and an empty report.
        """
        if self.total:
            return
        wanted = _describe_range(self.from_ms, self.to_ms)
        span = self.available_span()
        if span is None:
            raise EmptyRangeError(
                f"no records to replay: the topic {self.topic!r} is empty (records older than its retention are "
                f"deleted; raw topics keep 7 days by default); produce to it or re-run `sentimon demo`"
            )
        raise EmptyRangeError(
            f"no records on {self.topic!r} {wanted}; the topic holds records from {_iso(span[0])} to "
            f"{_iso(span[1])} (older ones are deleted by its retention): pick --from/--to inside that span"
        )

    def available_span(self) -> tuple[int, int] | None:
        """(earliest, latest) record timestamp on the whole topic; None when it holds no records."""
        from kafka import TopicPartition

        held = [r for r in self.held if r.size]
        if not held:
            return None
        consumer = kafka_clients.consumer(self.settings, enable_auto_commit=False, client_id="sentimon-replay")
        try:
            stamps: list[int] = []
            for r in held:
                tp = TopicPartition(self.topic, r.partition)
                consumer.assign([tp])
                for start, end in ((r.start, r.start + 1), (max(r.start, r.end - TAIL_RECORDS), r.end)):
                    stamps += _timestamps(consumer, tp, start, end)
        finally:
            consumer.close()
        return (min(stamps), max(stamps)) if stamps else None

    def __iter__(self) -> Iterator[RawRecord]:
        streams = [self._partition(r) for r in self.ranges if r.size]
        return heapq.merge(*streams, key=lambda rec: (rec.timestamp_ms or 0, rec.partition, rec.offset))

    def _partition(self, r: PartitionRange) -> Iterator[RawRecord]:
        from kafka import TopicPartition

        tp = TopicPartition(self.topic, r.partition)
        consumer = kafka_clients.consumer(
            self.settings, enable_auto_commit=False, client_id="sentimon-replay", max_poll_records=2000
        )
        try:
            consumer.assign([tp])
            consumer.seek(tp, r.start)
            idle = 0
            # Offsets can have gaps (transaction markers, compaction): progress is the consumer's position.
            while consumer.position(tp) < r.end and idle < IDLE_POLLS_BEFORE_GIVING_UP:
                records = consumer.poll(timeout_ms=1000, max_records=2000).get(tp, [])
                idle = 0 if records else idle + 1
                for record in records:
                    if record.offset >= r.end:
                        return
                    yield RawRecord(record.value, self.topic, r.partition, record.offset, record.timestamp)
        finally:
            consumer.close()


def _timestamps(consumer, tp, start: int, end: int) -> list[int]:
    """Timestamps of the records at offsets [start, end) of an assigned partition (fewer if gaps or a timeout)."""
    import time

    consumer.seek(tp, start)
    stamps: list[int] = []
    deadline = time.monotonic() + PROBE_TIMEOUT_S
    while consumer.position(tp) < end and time.monotonic() < deadline:
        for record in consumer.poll(timeout_ms=500).get(tp, []):
            if record.offset < end:
                stamps.append(record.timestamp)
    return stamps


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _describe_range(from_ms: int | None, to_ms: int | None) -> str:
    if from_ms is not None and to_ms is not None:
        return f"from {_iso(from_ms)} to {_iso(to_ms)}"
    if from_ms is not None:
        return f"from {_iso(from_ms)} on"
    return f"before {_iso(to_ms)}" if to_ms is not None else "at all"
