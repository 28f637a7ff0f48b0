"""`sentimon worker | produce | windows | top`: the streaming worker and its Redis windows."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import typer

from sentimon.cli.common import console, settings_of
from sentimon.core.errors import UserError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}


def parse_duration_ms(text: str) -> int:
    """'90s', '5m', '1h', '24h', '7d' -> milliseconds."""
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise UserError(f"window {text!r} is not a duration such as 5m, 1h, 24h or 7d")
    return int(float(match.group(1)) * _UNIT_MS[match.group(2)])


def parse_end_ms(text: str | None) -> int:
    if text is None or text == "now":
        return int(time.time() * 1000)
    from sentimon.streams.schema import parse_ts

    try:
        return parse_ts(text)
    except ValueError as exc:
        raise UserError(f"--end {text!r}: {exc}") from None


def _store(settings):
    from sentimon.streams.windows import WindowStore
    from sentimon.streams.worker import connect_redis

    return WindowStore.from_settings(connect_redis(settings), settings)


def worker(
    ctx: typer.Context,
    model: str = typer.Option(None, help="Model name or bundle path (default: setting `model`)."),
    loglevel: str = typer.Option("warning", help="Faust log level: debug, info, warning, error."),
) -> None:
    """Run a streaming worker: raw topics -> scorer -> Redis windows, scored and dead-letter topics.

    Start several (any host) with the same SENTIMON_WORKER_ID to split the partitions between them.
    """
    from sentimon.streams.worker import run_worker

    settings = settings_of(ctx)
    if model:
        settings = settings.model_copy(update={"model": model})
    run_worker(settings, loglevel=loglevel)


def produce(
    ctx: typer.Context,
    file: Path = typer.Option(..., "--file", "-f", help="JSONL file, one message per line ('-' for stdin)."),  # noqa: B008
    topic: str = typer.Option(None, help="Topic (default: the raw social topic)."),
    rate: float = typer.Option(0.0, help="Messages per second (0: as fast as possible)."),
    keep_ts: bool = typer.Option(False, "--keep-ts", help="Keep each message's ts (default: stamp it now)."),
) -> None:
    """Send JSONL messages to a raw topic, keyed by id. Lines that are not JSON objects are sent as they are
    (the worker dead-letters them), so nothing in the file is silently dropped."""
    import sys

    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    settings = settings_of(ctx)
    topic = topic or settings.topic_social
    if str(file) != "-" and not file.is_file():
        raise UserError(f"--file {file} does not exist")
    try:
        producer = KafkaProducer(bootstrap_servers=settings.kafka_servers, acks="all", linger_ms=5)
    except KafkaError as exc:
        raise UserError(f"Kafka at {settings.kafka_servers} is unreachable ({exc}); run `sentimon up`") from None
    stream = sys.stdin.buffer if str(file) == "-" else file.open("rb")
    sent = passthrough = 0
    started = time.monotonic()
    try:
        for line in stream:
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue
            key = timestamp_ms = None
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            if isinstance(obj, dict):
                if not keep_ts:
                    obj["ts"] = int(time.time() * 1000)
                # The record's Kafka timestamp is the event time, so `sentimon replay --from/--to` finds history
                # by timestamp lookup. A bad ts stays as it is: the worker dead-letters it with the reason.
                timestamp_ms = _record_timestamp(obj.get("ts"))
                key = str(obj["id"]).encode() if obj.get("id") is not None else None
                value = json.dumps(obj, ensure_ascii=False).encode()
            else:
                value, passthrough = line, passthrough + 1
            if rate > 0:
                delay = started + sent / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            producer.send(topic, key=key, value=value, timestamp_ms=timestamp_ms)
            sent += 1
        producer.flush()
    finally:
        producer.close()
        if stream is not sys.stdin.buffer:
            stream.close()
    elapsed = time.monotonic() - started
    extra = f" ({passthrough} not JSON objects, sent as-is)" if passthrough else ""
    typer.echo(f"sent {sent} messages to {topic} in {elapsed:.1f} s{extra}")


def _record_timestamp(ts) -> int | None:
    from sentimon.streams.schema import parse_ts

    try:
        ts_ms = parse_ts(ts) if ts is not None else None
    except ValueError:
        return None
    return ts_ms if ts_ms is not None and ts_ms >= 0 else None  # Kafka rejects negative timestamps


def windows(
    ctx: typer.Context,
    entity: str = typer.Argument(..., help="Entity, e.g. AAPL."),
    window: str = typer.Option("1h", help="Window length: 5m, 1h, 24h, 7d, ..."),
    end: str = typer.Option(None, help="Window end: ISO 8601 or epoch ms (default: now)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Sentiment of one entity over a window (from the Redis buckets)."""
    settings = settings_of(ctx)
    window_ms, end_ms = parse_duration_ms(window), parse_end_ms(end)
    stats = _store(settings).stats(entity, window_ms, end_ms)
    row = {
        "entity": entity,
        "window": window,
        "count": stats.count,
        "negative": stats.negative,
        "neutral": stats.neutral,
        "positive": stats.positive,
        "mean_score": stats.mean_score,
        "window_ms": window_ms,
        "end": datetime.fromtimestamp(end_ms / 1000, UTC).isoformat(),
    }
    if as_json:
        typer.echo(json.dumps(row))
        return
    mean = "-" if stats.mean_score is None else f"{stats.mean_score:+.3f}"
    typer.echo(
        f"{entity} last {window}: {stats.count} mentions, negative {stats.negative}, neutral {stats.neutral}, "
        f"positive {stats.positive}, mean score {mean}"
    )


def top(
    ctx: typer.Context,
    window: str = typer.Option("1h", help="Window length: 5m, 1h, 24h, 7d, ..."),
    limit: int = typer.Option(10, min=1, help="How many entities."),
    end: str = typer.Option(None, help="Window end: ISO 8601 or epoch ms (default: now)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Most-mentioned entities over a window, with their label mix and mean score."""
    from rich.table import Table

    settings = settings_of(ctx)
    window_ms, end_ms = parse_duration_ms(window), parse_end_ms(end)
    rows = _store(settings).top(window_ms, end_ms, limit)
    if as_json:
        typer.echo(json.dumps([{**r.as_dict(), "window": window} for r in rows]))
        return
    table = Table("entity", "count", "negative", "neutral", "positive", "mean score", title=f"top entities, {window}")
    for r in rows:
        table.add_row(r.entity, str(r.count), str(r.negative), str(r.neutral), str(r.positive), f"{r.mean_score:+.3f}")
    console.print(table if rows else f"no mentions in the last {window}")


def register(app: typer.Typer) -> None:
    app.command()(worker)
    app.command()(produce)
    app.command()(windows)
    app.command()(top)
