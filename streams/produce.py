"""JSONL lines -> the records `sentimon produce` sends to a raw topic (pure: no Kafka, no clock).

A JSON object is keyed by its ``id`` and carries its event time as the Kafka record timestamp, so
`sentimon replay --from/--to` finds history by timestamp lookup. Anything else is sent as it is and the worker
dead-letters it with the reason: nothing in a file is silently dropped.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sentimon.core.pacing import Pacer
from sentimon.core.parts import StreamSettings
from sentimon.streams.schema import Rejection, parse_message, parse_ts


@dataclass(frozen=True)
class OutgoingRecord:
    key: bytes | None
    value: bytes
    timestamp_ms: int | None  # None: the broker stamps the record
    as_is: bool = False  # not a JSON object: sent unchanged


def to_record(line: bytes, now_ms: int | None = None) -> OutgoingRecord | None:
    """One JSONL line -> its record; None for a blank line. ``now_ms`` replaces each object's ``ts`` (None keeps
    the message's own)."""
    line = line.rstrip(b"\r\n")
    if not line.strip():
        return None
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: nesting too deep for the parser
        obj = None
    if not isinstance(obj, dict):
        return OutgoingRecord(None, line, None, as_is=True)
    if now_ms is not None:
        obj["ts"] = now_ms
    try:
        key = str(obj["id"]).encode() if obj.get("id") is not None else None
        value = json.dumps(obj, ensure_ascii=False).encode()
    except (UnicodeEncodeError, RecursionError):
        # A lone surrogate escape ("\\ud800") parses but does not encode: the worker dead-letters the line.
        return OutgoingRecord(None, line, None, as_is=True)
    return OutgoingRecord(key, value, _record_timestamp(obj.get("ts")))


def _record_timestamp(ts: Any) -> int | None:
    # A bad ts stays in the message as it is (the worker dead-letters it with the reason); the record then
    # gets the broker's timestamp.
    try:
        ts_ms = parse_ts(ts) if ts is not None else None
    except (ValueError, OverflowError):
        return None
    return ts_ms if ts_ms is not None and ts_ms >= 0 else None  # Kafka rejects negative timestamps


@dataclass(frozen=True)
class ProduceResult:
    sent: int
    as_is: int  # lines that were not JSON objects, sent unchanged
    elapsed_s: float
    blank: int = 0  # empty lines: nothing to send
    rejected: Counter[str] = field(default_factory=Counter)  # reason -> lines the worker will dead-letter

    @property
    def valid(self) -> int:
        return self.sent - sum(self.rejected.values())


Check = Callable[[bytes, int], "Rejection | None"]


def worker_check(settings: StreamSettings) -> Check:
    """The worker's validation of one record value (same limits, same reasons), for producers to report what the
    worker will dead-letter."""

    def check(value: bytes, now_ms: int) -> Rejection | None:
        parsed = parse_message(value, fallback_ts_ms=now_ms, now_ms=now_ms, max_bytes=settings.max_message_bytes,
                               max_entities=settings.max_entities, max_future_ms=settings.max_future_ms,
                               max_depth=settings.max_json_depth)  # fmt: skip
        return parsed if isinstance(parsed, Rejection) else None

    return check


def produce_lines(
    lines: Iterable[bytes],
    send: Callable[[OutgoingRecord], None],
    rate: float = 0.0,
    keep_ts: bool = False,
    clock: Callable[[], float] = time.time,
    pacer: Pacer | None = None,
    check: Check | None = None,
) -> ProduceResult:
    """Turn each line into its record and hand it to ``send``, at most ``rate`` records per second (0: as fast as
    possible); each object's ``ts`` is the send time unless ``keep_ts``. With ``check`` (see ``worker_check``),
    count the records the worker will dead-letter by reason; they are sent all the same, so the dead-letter
    topic keeps them with their reason."""
    pacer = pacer or Pacer()
    sent = as_is = blank = 0
    rejected: Counter[str] = Counter()
    for line in lines:
        pacer.at_rate(sent, rate)
        now_ms = int(clock() * 1000)
        record = to_record(line, None if keep_ts else now_ms)
        if record is None:
            blank += 1
            continue
        send(record)
        sent, as_is = sent + 1, as_is + record.as_is
        rejection = check(record.value, now_ms) if check is not None else None
        if rejection is not None:
            rejected[rejection.reason] += 1
    return ProduceResult(sent, as_is, pacer.elapsed_s(), blank, rejected)
