"""What the pages show, as plain functions of a window reader and alert rows (no Redis, HTTP or Kafka here).

Times are event time: "now" is the windows' watermark (the newest event applied), so a replayed day reads as
it did live. The reader is anything with ``WindowStore``'s ``stats``/``series``/``entities``/``watermark``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from sentimon.core.windows import WindowStats

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
SPARK_POINTS = 24  # the board's sparkline: the last 2 h in 5-minute steps
SPARK_STEP_MS = 5 * MINUTE_MS
TIMELINE_POINTS = 240  # at most this many steps on an entity's chart
RANGES_MS = {"1h": HOUR_MS, "6h": 6 * HOUR_MS, "24h": DAY_MS, "7d": 7 * DAY_MS}


class Bucket(Protocol):
    @property
    def start_ms(self) -> int: ...

    @property
    def stats(self) -> WindowStats: ...


class Reader(Protocol):
    bucket_ms: int

    def stats(self, entity: str, window_ms: int, end_ms: int) -> WindowStats: ...

    def series(self, entity: str, start_ms: int, end_ms: int, step_ms: int | None = None) -> Sequence[Bucket]: ...

    def entities(self, since_ms: int | None = None) -> list[str]: ...

    def watermark(self) -> int | None: ...


def now_ms(reader: Reader, wall_ms: int) -> int:
    """The end of every window shown: just past the newest event applied, or the wall clock before any."""
    wm = reader.watermark()
    return wall_ms if wm is None else wm + 1


def summary(stats: WindowStats) -> dict[str, Any]:
    return {
        "mentions": stats.count,
        "mean_score": stats.mean_score,
        "negative": stats.share("negative"),
        "positive": stats.share("positive"),
    }


def firing_by_entity(alerts: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for a in alerts:
        if a.get("state") == "firing":
            out.setdefault(a["entity"], []).append(
                {"rule": a["rule"], "severity": a["severity"], "started_at": a["started_at"]}
            )
    return out


def board(reader: Reader, end_ms: int, alerts: Iterable[dict[str, Any]], limit: int) -> dict[str, Any]:
    """The entity board: the ``limit`` entities with most mentions in 24 h (entities with a firing alert
    first), each with 1 h / 24 h aggregates, a sparkline of mentions and mean score, and its firing alerts."""
    firing = firing_by_entity(alerts)
    names = set(reader.entities(since_ms=end_ms - DAY_MS)) | set(firing)
    day = {e: reader.stats(e, DAY_MS, end_ms) for e in names}
    ranked = sorted(names, key=lambda e: (not firing.get(e), -day[e].count, e))[:limit]
    rows = []
    for e in ranked:
        spark = reader.series(e, end_ms - SPARK_POINTS * SPARK_STEP_MS, end_ms, SPARK_STEP_MS)
        rows.append(
            {
                "entity": e,
                "h1": summary(reader.stats(e, HOUR_MS, end_ms)),
                "h24": summary(day[e]),
                "spark": {
                    "mentions": [b.stats.count for b in spark],
                    "mean_score": [b.stats.mean_score for b in spark],
                },
                "firing": firing.get(e, []),
            }
        )
    return {"now_ms": end_ms, "now": iso(end_ms), "entities": rows}


def timeline_step(range_ms: int, bucket_ms: int) -> int:
    """A whole number of buckets, so that the range has at most ``TIMELINE_POINTS`` steps."""
    buckets = -(-range_ms // (TIMELINE_POINTS * bucket_ms))
    return max(buckets, 1) * bucket_ms


def timeline(reader: Reader, entity: str, end_ms: int, range_ms: int) -> dict[str, Any]:
    """Volume and sentiment of one entity over ``[end - range, end)``: parallel arrays for the chart."""
    step = timeline_step(range_ms, reader.bucket_ms)
    start = (end_ms - range_ms) // step * step
    points = reader.series(entity, start, end_ms, step)
    return {
        "step_ms": step,
        "t": [b.start_ms // 1000 for b in points],  # seconds: what the chart's time axis takes
        "mentions": [b.stats.count for b in points],
        "negative": [b.stats.negative for b in points],
        "positive": [b.stats.positive for b in points],
        "mean_score": [b.stats.mean_score for b in points],
    }


def episodes(alerts: Iterable[dict[str, Any]], end_ms: int) -> list[dict[str, Any]]:
    """Alert episodes as spans on the time axis (a firing one runs to ``end_ms``)."""
    out = []
    for a in alerts:
        start = parse_iso(a.get("started_at"))
        if start is None:
            continue
        stop = parse_iso(a.get("resolved_at")) or end_ms
        out.append({"rule": a["rule"], "severity": a["severity"], "state": a["state"],
                    "start_ms": start, "end_ms": max(stop, start)})  # fmt: skip
    return sorted(out, key=lambda e: e["start_ms"])


def filter_alerts(
    alerts: Iterable[dict[str, Any]],
    state: str | None = None,
    severity: str | None = None,
    entity: str | None = None,
    kind: str | None = None,
    text: str | None = None,
) -> list[dict[str, Any]]:
    """The alert list's filters; ``text`` matches the rule, entity or summary, case-insensitively."""
    needle = (text or "").strip().lower()
    out = []
    for a in alerts:
        if state and a.get("state") != state:
            continue
        if severity and a.get("severity") != severity:
            continue
        if entity and a.get("entity", "").lower() != entity.lower():
            continue
        if kind and a.get("rule_kind") != kind:
            continue
        summary_text = str((a.get("payload") or {}).get("summary", ""))
        if needle and not any(needle in str(v).lower() for v in (a.get("rule"), a.get("entity"), summary_text)):
            continue
        out.append(a)
    return out


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_iso(text: str | None) -> int | None:
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return int(value.timestamp() * 1000)
