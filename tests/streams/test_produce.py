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


def test_produce_lines_paces_stamps_and_counts() -> None:
    from sentimon.core.pacing import Pacer
    from sentimon.streams.produce import OutgoingRecord, produce_lines

    now = [100.0]
    waits: list[float] = []

    def sleep(s: float) -> None:
        waits.append(s)
        now[0] += s

    sent: list[OutgoingRecord] = []
    lines = [b'{"id": "a", "ts": 1, "text": "x"}\n', b"\n", b"not json\n", b'{"id": "b", "text": "y"}\n']
    result = produce_lines(lines, sent.append, rate=2.0, clock=lambda: 1_800_000_000.0,
                           pacer=Pacer(clock=lambda: now[0], sleep=sleep))  # fmt: skip
    assert (result.sent, result.as_is) == (3, 1)  # the blank line is skipped, the non-object sent as it is
    assert [r.key for r in sent] == [b"a", None, b"b"]
    assert all(json.loads(r.value)["ts"] == 1_800_000_000_000 for r in sent if not r.as_is)
    assert waits == [0.5, 0.5]  # 2 per second, due by records sent: the skipped blank line takes no slot
    assert result.elapsed_s == 1.0


def test_produce_lines_keeps_ts_when_asked() -> None:
    from sentimon.streams.produce import OutgoingRecord, produce_lines

    sent: list[OutgoingRecord] = []
    produce_lines([b'{"id": "a", "ts": 1700000000000, "text": "x"}'], sent.append, keep_ts=True)
    assert json.loads(sent[0].value)["ts"] == 1_700_000_000_000 and sent[0].timestamp_ms == 1_700_000_000_000


def test_lines_that_parse_but_cannot_be_re_encoded_are_sent_as_is() -> None:
    for line in (b'{"id": "a", "text": "x", "meta": {"k": "\\ud800"}}', b'{"id": "\\udfff", "text": "x"}',
                 b'{"a": ' * 5000 + b"1" + b"}" * 5000):  # fmt: skip
        record = to_record(line, now_ms=1_800_000_000_000)
        assert record is not None and record.as_is and record.value == line
