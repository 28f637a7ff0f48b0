"""Read a time range of a topic back, in event-time order across partitions, without joining a group."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass

from sentimon.streams.errors import StreamsError
from sentimon.streams.pipeline import RawRecord

IDLE_POLLS_BEFORE_GIVING_UP = 30  # 30 empty one-second polls below the end offset: the broker has nothing more


@dataclass(frozen=True)
class PartitionRange:
    partition: int
    start: int  # first offset to read
    end: int  # first offset not to read

    @property
    def size(self) -> int:
        return max(0, self.end - self.start)


class TopicRange:
    """The records of ``topic`` with ``from_ms <= timestamp < to_ms`` (either bound optional)."""

    def __init__(self, bootstrap: str, topic: str, from_ms: int | None = None, to_ms: int | None = None):
        from kafka import KafkaConsumer, TopicPartition

        self.bootstrap, self.topic = bootstrap, topic
        probe = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, client_id="sentimon-replay")
        try:
            partitions = probe.partitions_for_topic(topic)
            if not partitions:
                raise StreamsError(f"topic {topic!r} does not exist on {bootstrap}; list topics or check the name")
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            ends = probe.end_offsets(tps)
            begins = probe.beginning_offsets(tps)
            starts = self._lookup(probe, tps, from_ms, begins, ends)
            stops = self._lookup(probe, tps, to_ms, ends, ends)
        finally:
            probe.close()
        self.ranges = [PartitionRange(tp.partition, starts[tp], stops[tp]) for tp in tps]

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

    def __iter__(self) -> Iterator[RawRecord]:
        streams = [self._partition(r) for r in self.ranges if r.size]
        return heapq.merge(*streams, key=lambda rec: (rec.timestamp_ms or 0, rec.partition, rec.offset))

    def _partition(self, r: PartitionRange) -> Iterator[RawRecord]:
        from kafka import KafkaConsumer, TopicPartition

        tp = TopicPartition(self.topic, r.partition)
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, client_id="sentimon-replay",
            max_poll_records=2000,
        )  # fmt: skip
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
