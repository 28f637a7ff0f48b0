"""Message validation: every malformed input becomes a Rejection with the right reason, never an exception."""

from __future__ import annotations

import json

import pytest

from sentimon.streams import schema
from sentimon.streams.schema import Message, Rejection, parse_message, parse_ts

NOW = 1_750_000_000_000


def parse(raw: bytes, **kw):
    return parse_message(raw, fallback_ts_ms=NOW - 5, now_ms=NOW, **kw)


def js(obj) -> bytes:
    return json.dumps(obj).encode()


GOOD = {"id": "m1", "ts": NOW - 1000, "source": "twitter", "text": "Great quarter for $AAPL"}

# (raw bytes, expected reason): the fuzz corpus the integration test also sends through Kafka.
BAD_CORPUS = [
    (b"\xff\xfe\x00garbage", schema.INVALID_UTF8),
    (b'{"id": "a", "text": "caf\xe9"}', schema.INVALID_UTF8),
    (b"not json at all", schema.INVALID_JSON),
    (b'{"id": "a", "text": "x"', schema.INVALID_JSON),
    (b"[" * 100_000 + b"]" * 100_000, schema.OVERSIZE),
    (b"[" * 5000 + b"]" * 5000, schema.TOO_DEEP),  # nesting too deep for the parser
    (b"", schema.INVALID_JSON),
    (b'["a", "b"]', schema.NOT_OBJECT),
    (b'"just a string"', schema.NOT_OBJECT),
    (b"42", schema.NOT_OBJECT),
    (b"null", schema.NOT_OBJECT),
    (js({"id": "a"}), schema.MISSING_TEXT),
    (js({"id": "a", "text": ""}), schema.EMPTY_TEXT),
    (js({"id": "a", "text": " \n\t "}), schema.EMPTY_TEXT),
    (js({"id": "a", "text": 5}), schema.WRONG_TYPE),
    (js({"id": "a", "text": ["x"]}), schema.WRONG_TYPE),
    (js({"text": "hello"}), schema.MISSING_ID),
    (js({"id": "", "text": "hello"}), schema.MISSING_ID),
    (js({"id": 7, "text": "hello"}), schema.WRONG_TYPE),
    (js({"id": "a" * 300, "text": "hello"}), schema.FIELD_TOO_LONG),
    (js({"id": "a", "text": "hello", "entities": "AAPL"}), schema.WRONG_TYPE),
    (js({"id": "a", "text": "hello", "entities": [1, 2]}), schema.WRONG_TYPE),
    (js({"id": "a", "text": "hello", "entities": ["x" * 65]}), schema.FIELD_TOO_LONG),
    (js({"id": "a", "text": "hello", "entities": [f"E{i}" for i in range(40)]}), schema.TOO_MANY_ENTITIES),
    (js({"id": "a", "text": "hello", "source": 3}), schema.WRONG_TYPE),
    (js({"id": "a", "text": "hello", "lang": {"x": 1}}), schema.WRONG_TYPE),
    (js({"id": "a", "text": "hello", "meta": [1]}), schema.WRONG_TYPE),
    (js({"id": "a", "text": "hello", "ts": "yesterday"}), schema.INVALID_TS),
    (js({"id": "a", "text": "hello", "ts": True}), schema.INVALID_TS),
    (js({"id": "a", "text": "hello", "ts": 1_700_000_000}), schema.INVALID_TS),  # seconds, not ms
    (js({"id": "a", "text": "hello", "ts": [1]}), schema.INVALID_TS),
    (js({"id": "a", "text": "hello", "ts": 1e300}), schema.INVALID_TS),
    (b'{"id": "a", "text": "hello", "ts": NaN}', schema.NON_FINITE_NUMBER),
    (js({"id": "a", "text": "hello", "ts": NOW + 3_600_000}), schema.FUTURE_TS),
    (b"x" * 70_000, schema.OVERSIZE),
]


@pytest.mark.parametrize(("raw", "reason"), BAD_CORPUS, ids=[f"{r}-{i}" for i, (_, r) in enumerate(BAD_CORPUS)])
def test_bad_input_is_rejected_with_reason(raw, reason):
    result = parse(raw)
    assert isinstance(result, Rejection), result
    assert result.reason == reason, result.detail
    assert result.reason in schema.REASONS
    assert result.detail


def test_tombstone_is_rejected():
    assert parse_message(None, fallback_ts_ms=NOW, now_ms=NOW).reason == schema.NOT_OBJECT


def test_good_message_round_trip():
    msg = parse(
        js({**GOOD, "entities": [" AAPL ", "AAPL", "", "TSLA"], "lang": "en", "meta": {"k": 1}, "label": "pos"})
    )
    assert isinstance(msg, Message)
    assert (msg.id, msg.ts_ms, msg.source, msg.lang) == ("m1", NOW - 1000, "twitter", "en")
    assert msg.entities == ("AAPL", "TSLA")
    assert msg.meta == {"k": 1}
    assert msg.extra == {"label": "pos"}


def test_defaults_missing_ts_uses_record_time_and_entities_none_means_extract():
    msg = parse(js({"id": "a", "text": "hi"}))
    assert msg.ts_ms == NOW - 5
    assert msg.entities is None and msg.source == "unknown"
    assert parse(js({"id": "a", "text": "hi", "entities": []})).entities is None


def test_oversize_limit_is_a_setting():
    raw = js({**GOOD, "text": "x" * 500})
    assert isinstance(parse(raw), Message)
    assert parse(raw, max_bytes=200).reason == schema.OVERSIZE


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-06-15T12:00:00Z", 1_749_988_800_000),
        ("2025-06-15T12:00:00+00:00", 1_749_988_800_000),
        ("2025-06-15T14:00:00+02:00", 1_749_988_800_000),
        ("2025-06-15T12:00:00", 1_749_988_800_000),  # naive = UTC
        ("2025-06-15T12:00:00.250Z", 1_749_988_800_250),
        (1_749_988_800_000, 1_749_988_800_000),
        (1_749_988_800_000.7, 1_749_988_800_000),
        ("1749988800000", 1_749_988_800_000),
    ],
)
def test_parse_ts(value, expected):
    assert parse_ts(value) == expected
