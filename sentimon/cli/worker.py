"""`sentimon worker | produce | windows | top`: the streaming worker and its Redis windows."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import typer

from sentimon.cli.common import console, out, settings_of, time_option, window_option, window_phrase
from sentimon.core.errors import UserError


def end_option(text: str | None) -> int:
    """--end: ISO 8601, epoch ms, or now (the default)."""
    return _now_ms() if text in (None, "now") else time_option(text, "--end")


def _store(settings):
    from sentimon.streams.windows import WindowStore
    from sentimon.streams.worker import connect_redis

    return WindowStore.from_settings(connect_redis(settings), settings.windows)


def worker(
    ctx: typer.Context,
    model: str = typer.Option(None, help="Model name or bundle path (default: setting `inference.model`)."),
    loglevel: str = typer.Option("info", help="Log level: debug (with Faust's own), info, warning, error."),
    ready_file: Path = typer.Option(None, help="File that exists while the worker holds partitions (readiness)."),
) -> None:
    """Run a streaming worker: raw topics -> scorer -> Redis windows, scored and dead-letter topics.

    Start several (any host) with the same `worker.id` (SENTIMON_WORKER__ID) to split the partitions between them.
    """
    from sentimon.streams.worker import run_worker

    settings = settings_of(ctx)
    if model:
        settings = settings.replace(inference={"model": model})
    run_worker(settings, loglevel=loglevel, ready_file=ready_file)


def produce(
    ctx: typer.Context,
    file: Path = typer.Option(..., "--file", "-f", help="JSONL file, one message per line ('-' for stdin)."),  # noqa: B008
    topic: str = typer.Option(None, help="Topic (default: the raw social topic)."),
    rate: float = typer.Option(0.0, min=0.0, help="Messages per second (0: as fast as possible)."),
    keep_ts: bool = typer.Option(False, "--keep-ts", help="Keep each message's ts (default: stamp it now)."),
) -> None:
    """Send JSONL messages to a raw topic, keyed by id. Lines that are not JSON objects are sent as they are
    (the worker dead-letters them), so nothing in the file is silently dropped."""
    import sys

    from kafka.errors import KafkaError

    from sentimon.infra import kafka_clients, require_topics
    from sentimon.streams.produce import OutgoingRecord, produce_lines, worker_check

    settings = settings_of(ctx)
    topic = topic or settings.topics.social
    if str(file) != "-" and not file.is_file():
        raise UserError(f"--file {file} does not exist")
    require_topics(settings, [topic])
    try:
        producer = kafka_clients.producer(settings, acks="all", linger_ms=5)
    except KafkaError as exc:
        raise UserError(f"Kafka at {settings.stack.kafka_servers} is unreachable ({exc}); run `sentimon up`") from None
    stream = sys.stdin.buffer if str(file) == "-" else file.open("rb")

    def send(record: OutgoingRecord) -> None:
        producer.send(topic, key=record.key, value=record.value, timestamp_ms=record.timestamp_ms)

    try:
        result = produce_lines(stream, send, rate, keep_ts, check=worker_check(settings.stream))
        producer.flush()
    finally:
        producer.close()
        if stream is not sys.stdin.buffer:
            stream.close()
    extra = f" ({result.as_is} not JSON objects, sent as-is)" if result.as_is else ""
    typer.echo(f"sent {result.sent} messages to {topic} in {result.elapsed_s:.1f} s{extra}")
    if result.blank:
        console.print(f"skipped {result.blank} blank line{'s' if result.blank != 1 else ''}")
    if result.rejected:
        reasons = ", ".join(f"{n} {reason}" for reason, n in result.rejected.most_common())
        console.print(f"the worker will dead-letter {sum(result.rejected.values())} of them: {reasons}")
    if result.sent and not result.valid:
        raise UserError(f"none of the {result.sent} lines is a valid message (see the reasons above)")
    if not result.sent:
        raise UserError(f"{'standard input' if str(file) == '-' else file} has no lines to send")


def _watchlist(settings) -> dict[str, list[str]]:
    from sentimon.streams.entities import DEFAULT_WATCHLIST, load_watchlist

    return load_watchlist(settings.stream.watchlist or DEFAULT_WATCHLIST)


def _find(settings, store, typed: str) -> str:
    """The stored entity a user means by ``typed`` (case, ``$`` and watchlist aliases ignored), or a UserError
    with "did you mean" suggestions."""
    from sentimon.streams.lookup import find_entity

    match = find_entity(typed, store.entities(), _watchlist(settings))
    if match.entity is None:
        hint = f"did you mean {', '.join(match.suggestions)}? " if match.suggestions else ""
        raise UserError(f"no entity {typed!r} in the windows; {hint}list the known ones with `sentimon entities`")
    if match.entity != typed:
        console.print(f"{typed!r} -> {match.entity} ({'watchlist alias' if match.how == 'alias' else 'same name'})")
    return match.entity


def windows(
    ctx: typer.Context,
    entity: str = typer.Argument(..., help="Entity as stored (AAPL, 'acme air'), any case, $-prefixed or an alias."),
    window: str = typer.Option("1h", help="Window length: 5m, 1h, 1h30m, 24h, 7d, ..."),
    end: str = typer.Option(None, help="Window end: ISO 8601 or epoch ms (default: now)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Sentiment of one entity over a window (from the Redis buckets)."""
    settings = settings_of(ctx)
    window_ms, end_ms = window_option(window, max_ms=settings.windows.retention_ms), end_option(end)
    store = _store(settings)
    entity = _find(settings, store, entity)
    stats = store.stats(entity, window_ms, end_ms)
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
        f"{entity}, {window_phrase(window, end_ms, _now_ms())}: {stats.count} mentions, negative {stats.negative}, "
        f"neutral {stats.neutral}, positive {stats.positive}, mean score {mean}"
    )


def top(
    ctx: typer.Context,
    window: str = typer.Option("1h", help="Window length: 5m, 1h, 1h30m, 24h, 7d, ..."),
    limit: int = typer.Option(10, min=1, help="How many entities."),
    end: str = typer.Option(None, help="Window end: ISO 8601 or epoch ms (default: now)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Most-mentioned entities over a window, with their label mix and mean score."""
    from rich.table import Table

    settings = settings_of(ctx)
    window_ms, end_ms = window_option(window, max_ms=settings.windows.retention_ms), end_option(end)
    rows = _store(settings).top(window_ms, end_ms, limit)
    if as_json:
        typer.echo(json.dumps([{**r.as_dict(), "window": window} for r in rows]))
        return
    phrase = window_phrase(window, end_ms, _now_ms())
    table = Table("entity", "count", "negative", "neutral", "positive", "mean score", title=f"top entities, {phrase}")
    for r in rows:
        table.add_row(r.entity, str(r.count), str(r.negative), str(r.neutral), str(r.positive), f"{r.mean_score:+.3f}")
    out.print(table if rows else f"no mentions in {phrase}")


def entities(
    ctx: typer.Context,
    search: str = typer.Option(None, "--search", "-s", help="Only entities whose name or an alias contains this."),
    window: str = typer.Option("24h", help="Count mentions over this window (up to the windows' retention)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Entities the windows know, with their mentions over a window and their watchlist aliases."""
    from rich.table import Table

    from sentimon.streams.lookup import search_entities

    settings = settings_of(ctx)
    window_ms, end_ms = window_option(window, max_ms=settings.windows.retention_ms), _now_ms()
    store, aliases = _store(settings), _watchlist(settings)
    rows = [{"entity": name, "count": store.stats(name, window_ms, end_ms).count, "aliases": aliases.get(name, [])}
            for name in search_entities(search, store.entities(), aliases)]  # fmt: skip
    rows.sort(key=lambda r: (-r["count"], r["entity"]))
    if as_json:
        typer.echo(json.dumps([{**r, "window": window} for r in rows], ensure_ascii=False))
        return
    if not rows:
        out.print(
            f"no entities{f' matching {search!r}' if search else ''} in the windows (prefix {settings.windows.prefix})"
        )
        return
    table = Table("entity", f"mentions, {window}", "aliases", title=f"{len(rows)} entities")
    for r in rows:
        table.add_row(r["entity"], str(r["count"]), ", ".join(r["aliases"]))
    out.print(table)


def _now_ms() -> int:
    return int(time.time() * 1000)


def register(app: typer.Typer) -> None:
    app.command()(worker)
    app.command()(produce)
    app.command()(windows)
    app.command()(top)
    app.command()(entities)
