"""Raw Kafka record bytes -> ``Message`` or ``Rejection`` (a reason code for the dead-letter topic).

Wire format (JSON object, UTF-8): ``id`` (non-empty string), ``ts`` (ISO 8601 or epoch milliseconds; when
absent the Kafka record timestamp is used), ``source`` (string), ``text`` (non-empty string), optional
``entities`` (list of strings), ``lang`` (string), ``meta`` (object). Other top-level keys are kept in
``Message.extra`` (e.g. a gold ``label`` for replay evaluation).

A message that passes is safe to re-encode and store: every string (keys included) encodes as UTF-8 (JSON allows
lone surrogates such as ``"\\ud800"``, UTF-8 does not), every number is finite (Python's json reads ``NaN`` and
``Infinity``, which are not JSON, and ``1e400`` as infinity), nesting is bounded, and every field has a size limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sentimon.core import strictjson
from sentimon.core.reasons import (  # noqa: F401 - re-exported: streams.schema names them for its users
    EMPTY_TEXT,
    FIELD_TOO_LONG,
    FUTURE_TS,
    INVALID_JSON,
    INVALID_TS,
    INVALID_UTF8,
    LONE_SURROGATE,
    MISSING_ID,
    MISSING_TEXT,
    NON_FINITE_NUMBER,
    NON_FINITE_SCORE,
    NOT_OBJECT,
    OVERSIZE,
    PROCESSING_FAILED,
    REASONS,
    SCORING_FAILED,
    TOO_DEEP,
    TOO_MANY_ENTITIES,
    UNSUPPORTED_LANGUAGE,
    WRONG_TYPE,
)

MAX_ID_CHARS = 256
MAX_ENTITY_CHARS = 64
MAX_SOURCE_CHARS = 256
MAX_LANG_CHARS = 64
DEFAULT_MAX_DEPTH = 16
_SURROGATE = re.compile("[\ud800-\udfff]")
# Before 2000-01-01 an "epoch ms" value is almost surely epoch seconds sent by mistake.
MIN_TS_MS = 946_684_800_000
MAX_TS_MS = 253_402_300_799_999  # 9999-12-31: beyond it is not a time
KNOWN_KEYS = frozenset({"id", "ts", "source", "text", "entities", "lang", "meta"})


@dataclass(frozen=True)
class Message:
    id: str
    ts_ms: int
    source: str
    text: str
    entities: tuple[str, ...] | None = None  # None: extract from the text
    lang: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rejection:
    reason: str
    detail: str


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def parse_ts(value: Any) -> int:
    """ISO 8601 string (naive = UTC) or epoch milliseconds (int, float or digit string) -> epoch ms.

    Raises ValueError with a message naming what was expected.
    """
    if isinstance(value, bool):
        raise ValueError("ts must be ISO 8601 or epoch milliseconds, got a boolean")
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("ts is not a finite number")
        ts = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            ts = int(text)
        else:
            try:
                dt = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
            except ValueError:
                raise ValueError(f"ts {value[:40]!r} is neither ISO 8601 nor epoch milliseconds") from None
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            ts = int(dt.timestamp() * 1000)
    else:
        raise ValueError(f"ts must be ISO 8601 or epoch milliseconds, got {_type_name(value)}")
    if ts < MIN_TS_MS:
        raise ValueError(f"ts {ts} is before 2000-01-01: epoch milliseconds expected (seconds given?)")
    if ts > MAX_TS_MS:
        raise ValueError(f"ts {str(ts)[:30]} is after year 9999: epoch milliseconds expected")
    return ts


def _short(path: str) -> str:
    return path if len(path) <= 80 else path[:77] + "..."


def check_tree(obj: Any, max_depth: int = DEFAULT_MAX_DEPTH) -> Rejection | None:
    """Every string and key of a parsed JSON value encodes as UTF-8, and containers nest at most ``max_depth``
    deep (the top-level container is depth 1). Iterative, so hostile nesting cannot exhaust the stack."""
    stack: list[tuple[Any, str, int]] = [(obj, "", 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            if not value.isascii() and _SURROGATE.search(value):
                return Rejection(LONE_SURROGATE, f"{_short(path) or 'the value'} holds a lone surrogate (not UTF-8)")
        elif isinstance(value, dict | list):
            if depth > max_depth:
                return Rejection(
                    TOO_DEEP, f"{_short(path)} nests deeper than {max_depth} (setting stream.max_json_depth)"
                )
            if isinstance(value, dict):
                for key, item in value.items():
                    if not key.isascii() and _SURROGATE.search(key):
                        return Rejection(
                            LONE_SURROGATE, f"a key in {_short(path) or 'the object'} holds a lone surrogate"
                        )
                    stack.append((item, f"{path}.{key}" if path else key, depth + 1))
            else:
                stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))
    return None


def parse_message(
    raw: bytes | None,
    *,
    fallback_ts_ms: int,
    now_ms: int,
    max_bytes: int = 64 * 1024,
    max_entities: int = 32,
    max_future_ms: int = 5 * 60 * 1000,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Message | Rejection:
    """Validate one record's value. Never raises: every problem becomes a ``Rejection``."""
    if raw is None:
        return Rejection(NOT_OBJECT, "record has no value (tombstone)")
    if len(raw) > max_bytes:
        return Rejection(OVERSIZE, f"{len(raw)} bytes > limit {max_bytes} (setting stream.max_message_bytes)")
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection(INVALID_UTF8, f"byte {exc.start}: {exc.reason}")
    try:
        obj = strictjson.loads(decoded)
    except strictjson.NonFiniteNumber as exc:
        return Rejection(NON_FINITE_NUMBER, str(exc))
    except RecursionError:
        return Rejection(TOO_DEEP, f"nesting too deep to parse (limit {max_depth}, setting stream.max_json_depth)")
    except ValueError as exc:
        return Rejection(INVALID_JSON, str(exc)[:200])
    if not isinstance(obj, dict):
        return Rejection(NOT_OBJECT, f"top-level JSON is {_type_name(obj)}, expected an object")
    unsafe = check_tree(obj, max_depth)
    if unsafe is not None:
        return unsafe

    if "text" not in obj:
        return Rejection(MISSING_TEXT, "no 'text' field")
    text = obj["text"]
    if not isinstance(text, str):
        return Rejection(WRONG_TYPE, f"'text' is {_type_name(text)}, expected string")
    if not text.strip():
        return Rejection(EMPTY_TEXT, "'text' is empty or whitespace")

    if "id" not in obj or obj["id"] is None:
        return Rejection(MISSING_ID, "no 'id' field")
    msg_id = obj["id"]
    if not isinstance(msg_id, str):
        return Rejection(WRONG_TYPE, f"'id' is {_type_name(msg_id)}, expected string")
    if not msg_id:
        return Rejection(MISSING_ID, "'id' is empty")
    if len(msg_id) > MAX_ID_CHARS:
        return Rejection(FIELD_TOO_LONG, f"'id' has {len(msg_id)} characters > {MAX_ID_CHARS}")

    for key, limit in (("source", MAX_SOURCE_CHARS), ("lang", MAX_LANG_CHARS)):
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            return Rejection(WRONG_TYPE, f"'{key}' is {_type_name(value)}, expected string")
        if value is not None and len(value) > limit:
            return Rejection(FIELD_TOO_LONG, f"'{key}' has {len(value)} characters > {limit}")
    meta = obj.get("meta")
    if meta is not None and not isinstance(meta, dict):
        return Rejection(WRONG_TYPE, f"'meta' is {_type_name(meta)}, expected object")

    entities: tuple[str, ...] | None = None
    raw_entities = obj.get("entities")
    if raw_entities is not None:
        if not isinstance(raw_entities, list) or not all(isinstance(e, str) for e in raw_entities):
            return Rejection(WRONG_TYPE, "'entities' must be a list of strings")
        cleaned = [e.strip() for e in raw_entities if e.strip()]
        if len(cleaned) > max_entities:
            return Rejection(
                TOO_MANY_ENTITIES, f"{len(cleaned)} entities > limit {max_entities} (setting stream.max_entities)"
            )
        if any(len(e) > MAX_ENTITY_CHARS for e in cleaned):
            return Rejection(FIELD_TOO_LONG, f"an entity is longer than {MAX_ENTITY_CHARS} characters")
        entities = tuple(dict.fromkeys(cleaned)) or None

    if obj.get("ts") is None:
        ts_ms = fallback_ts_ms
    else:
        try:
            ts_ms = parse_ts(obj["ts"])
        except (ValueError, OverflowError, OSError) as exc:
            return Rejection(INVALID_TS, str(exc))
    if ts_ms > now_ms + max_future_ms:
        return Rejection(
            FUTURE_TS, f"ts is {(ts_ms - now_ms) / 1000:.0f} s ahead of the clock (setting stream.max_future_ms)"
        )

    return Message(
        id=msg_id,
        ts_ms=ts_ms,
        source=obj.get("source") or "unknown",
        text=text,
        entities=entities,
        lang=obj.get("lang"),
        meta=meta or {},
        extra={k: v for k, v in obj.items() if k not in KNOWN_KEYS},
    )
