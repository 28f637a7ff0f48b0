"""`sentimon replay`: re-score a time range of a topic with one or two models in an isolated namespace."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import typer

from sentimon.cli.common import console, settings_of
from sentimon.core.errors import UserError


def parse_speed(text: str) -> float | None:
    """'max' -> None (as fast as possible); '10x' or '10' -> 10.0."""
    if text.strip().lower() == "max":
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*x?\s*", text.lower())
    if not match or float(match.group(1)) <= 0:
        raise UserError(f"--speed {text!r}: use max or a positive factor such as 10x")
    return float(match.group(1))


def parse_time(text: str | None, option: str) -> int | None:
    if text is None:
        return None
    from sentimon.streams.schema import parse_ts

    try:
        return parse_ts(text)
    except ValueError as exc:
        raise UserError(f"{option} {text!r}: {exc}") from None


def build_runs(settings, models: list[str], namespace: str, out_dir: Path) -> list:
    """One isolated ModelRun per model (same namespace, a sub-namespace each)."""
    import redis

    import sentimon.inference
    from sentimon.alerts import AlertService, History
    from sentimon.streams.pipeline import Pipeline
    from sentimon.replay.run import ModelRun, namespaced
    from sentimon.streams.windows import WindowStore

    runs = []
    for model in models:
        ns_settings = namespaced(settings, namespace, model, out_dir)
        client = redis.Redis.from_url(settings.redis)
        store = WindowStore.from_settings(client, ns_settings)
        service = AlertService(ns_settings, redis_client=client, history=History(ns_settings.database))
        scorer = inference.load(model, settings)
        run = ModelRun(scorer.name, ns_settings, None, service)  # type: ignore[arg-type]
        run.pipeline = Pipeline.from_settings(ns_settings, scorer, store, hooks=[run.hook])
        if any(r.name == run.name for r in runs):
            run.name = f"{run.name} ({model})"
        runs.append(run)
    return runs


def replay(
    ctx: typer.Context,
    topic: str = typer.Option(..., help="Topic to replay, e.g. sentimon.raw.social."),
    from_: str = typer.Option(None, "--from", help="Start (ISO 8601 or epoch ms; default: the beginning)."),
    to: str = typer.Option(None, help="End, exclusive (ISO 8601 or epoch ms; default: the end)."),
    speed: str = typer.Option("max", help="max, or a factor of the original pace such as 60x."),
    model: str = typer.Option(None, help="Model (default: setting `model`)."),
    compare: str = typer.Option(None, help="A second model to compare with."),
    namespace: str = typer.Option(None, help="Namespace for Redis keys, output topic and alert store."),
    report: Path = typer.Option(None, help="Report path (.json; .md and .png beside it). Default: reports/."),
    episodes: Path = typer.Option(None, help="Planted episodes (JSON from `sentimon demo`) to score alerts on."),
    batch_size: int = typer.Option(256, min=1, help="Records per micro-batch."),
    publish: bool = typer.Option(True, help="Write scored events to the namespace's own scored topic."),
) -> None:
    """Re-score history into an isolated namespace and report throughput, label mix, accuracy (messages with a
    gold `label`), model agreement and an alert diff. Production keys, topics and alerts are untouched."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from sentimon.replay import report as reporting
    from sentimon.replay.reader import TopicRange
    from sentimon.replay.run import replay as run_replay
    from sentimon.replay.timeline import Episode

    settings = settings_of(ctx)
    pace = parse_speed(speed)
    start_ms, end_ms = parse_time(from_, "--from"), parse_time(to, "--to")
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise UserError("--to must be after --from")
    planted = None
    if episodes is not None:
        try:
            planted = [Episode(**e) for e in json.loads(episodes.read_text())]
        except (OSError, ValueError, TypeError) as exc:
            raise UserError(f"--episodes {episodes}: not a JSON list of episodes ({exc})") from None
    namespace = namespace or f"replay-{time.strftime('%Y%m%d-%H%M%S')}"
    report = report or Path("reports") / f"{namespace}.json"
    report.parent.mkdir(parents=True, exist_ok=True)

    source = TopicRange(settings.kafka_servers, topic, start_ms, end_ms)
    models = [model or settings.model, *([compare] if compare else [])]
    runs = build_runs(settings, models, namespace, report.parent)
    producer = _producer(settings, [run.settings.topic_scored for run in runs]) if publish else None

    def send(run, events) -> None:
        for ev in events:
            producer.send(run.settings.topic_scored, json.dumps(ev.to_dict()).encode())

    columns = (TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TextColumn("ETA"), TimeRemainingColumn())
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task("replay", total=source.total)
            stats = run_replay(
                source, runs, batch_size=batch_size, speed=pace, publish=send if producer else None,
                on_batch=lambda n: progress.advance(task, n),
            )  # fmt: skip
    finally:
        if producer:
            producer.flush()
            producer.close()
        for run in runs:
            run.alerts.close()
    result = reporting.build(runs, stats, topic=topic, episodes=planted)
    paths = reporting.write(result, report, planted)
    console.print(reporting.markdown(result), markup=False, highlight=False)
    console.print(f"report: {paths['markdown']} (JSON {paths['json'].name}, plot {paths['plot'].name})")


def _producer(settings, topics: list[str]):
    from kafka import KafkaProducer

    from sentimon.infra import TopicSpec, ensure_topics

    ensure_topics(settings.kafka_servers, [TopicSpec(t, 1, settings.scored_retention_ms) for t in topics])
    return KafkaProducer(bootstrap_servers=settings.kafka_servers, linger_ms=20)


def register(app: typer.Typer) -> None:
    app.command()(replay)
