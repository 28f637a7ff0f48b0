"""`sentimon replay`: re-score a time range of a topic with one or two models in an isolated namespace."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import typer

from sentimon.cli.common import console, settings_of, time_option
from sentimon.core.errors import UserError


def parse_speed(text: str) -> float | None:
    """'max' -> None (as fast as possible); '10x' or '10' -> 10.0."""
    if text.strip().lower() == "max":
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*x?\s*", text.lower())
    if not match or float(match.group(1)) <= 0:
        raise UserError(f"--speed {text!r}: use max or a positive factor such as 10x")
    return float(match.group(1))


def replay(
    ctx: typer.Context,
    topic: str = typer.Option(..., help="Topic to replay, e.g. sentimon.raw.social."),
    from_: str = typer.Option(None, "--from", help="Start (ISO 8601 or epoch ms; default: the beginning)."),
    to: str = typer.Option(None, help="End, exclusive (ISO 8601 or epoch ms; default: the end)."),
    speed: str = typer.Option("max", help="max, or a factor of the original pace such as 60x."),
    model: str = typer.Option(None, help="Model (default: setting `inference.model`)."),
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
    from sentimon.replay.job import ReplayRequest, TopicReplay
    from sentimon.replay.timeline import Episode

    settings = settings_of(ctx)
    pace = parse_speed(speed)
    start_ms = time_option(from_, "--from") if from_ is not None else None
    end_ms = time_option(to, "--to") if to is not None else None
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise UserError("--to must be after --from")
    planted = None
    if episodes is not None:
        try:
            planted = [Episode(**e) for e in json.loads(episodes.read_text())]
        except (OSError, ValueError, TypeError) as exc:
            raise UserError(f"--episodes {episodes}: not a JSON list of episodes ({exc})") from None
    namespace = namespace or f"replay-{time.strftime('%Y%m%d-%H%M%S')}"
    request = ReplayRequest(
        topic=topic, models=[model or settings.inference.model, *([compare] if compare else [])],
        namespace=namespace, report_path=report or Path("reports") / f"{namespace}.json", start_ms=start_ms,
        end_ms=end_ms, speed=pace, batch_size=batch_size, publish=publish, episodes=planted,
    )  # fmt: skip
    job = TopicReplay(settings, request)
    columns = (TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("replay", total=job.total)
        outcome = job.run(on_batch=lambda n: progress.advance(task, n))
    console.print(reporting.markdown(outcome.report), markup=False, highlight=False)
    paths = outcome.paths
    console.print(f"report: {paths['markdown']} (JSON {paths['json'].name}, plot {paths['plot'].name})")


def register(app: typer.Typer) -> None:
    app.command()(replay)
