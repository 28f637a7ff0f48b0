"""`sentimon produce`'s line -> record mapping, without Kafka."""

from __future__ import annotations

import json

from sentimon.streams.produce import to_record


def test_object_is_keyed_by_id_and_stamped_with_its_event_time() -> None:
    record = to_record(b'{"id": 7, "ts": "2026-01-02T00:00:00Z", "text": "caf\xc3\xa9"}\r\n')
    assert record is not None and not record.as_is
    assert record.key == b"7" and record.timestamp_ms == 1_767_312_000_000
    assert json.loads(record.value) == {"id": 7, "ts": "2026-01-02T00:00:00Z", "text": "café"}
    assert "café".encode() in record.value  # UTF-8 kept, not \u-escaped


def test_now_replaces_ts() -> None:
    record = to_record(b'{"id": "a", "ts": 1, "text": "x"}', now_ms=1_800_000_000_000)
    assert record is not None
    assert json.loads(record.value)["ts"] == record.timestamp_ms == 1_800_000_000_000


def test_blank_lines_are_skipped_and_non_objects_sent_as_is() -> None:
    assert to_record(b"  \n") is None
    for line in (b"not json", b"[1, 2]", b'"text"'):
        record = to_record(line + b"\n")
        assert record is not None and record.as_is
        assert (record.key, record.value, record.timestamp_ms) == (None, line, None)


def test_bad_or_negative_ts_leaves_the_timestamp_to_the_broker() -> None:
    for ts in ('"soon"', "-5", "true"):
        record = to_record(b'{"id": "a", "text": "x", "ts": ' + ts.encode() + b"}")
        assert record is not None and record.timestamp_ms is None
        assert json.loads(record.value)["ts"] == json.loads(ts)  # the worker dead-letters it with the reason
    record = to_record(b'{"text": "no id"}')
    assert record is not None and record.key is None and record.timestamp_ms is None
