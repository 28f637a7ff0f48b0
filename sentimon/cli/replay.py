"""`sentimon replay`: re-score a time range of a topic with one or two models in an isolated namespace;
`sentimon replay clean` removes what replays created."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import typer

from sentimon.cli.common import console, out, settings_of, time_option
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
    topic: str = typer.Option(None, help="Topic to replay, e.g. sentimon.raw.social (required to replay)."),
    from_: str = typer.Option(
        None, "--from", metavar="TIME", help="Start (ISO 8601 or epoch ms; default: the beginning)."
    ),
    to: str = typer.Option(None, metavar="TIME", help="End, exclusive (ISO 8601 or epoch ms; default: the end)."),
    speed: str = typer.Option("max", help="max, or a factor of the original pace such as 60x."),
    model: str = typer.Option(None, help="Model (default: setting `inference.model`)."),
    compare: str = typer.Option(None, help="A second model to compare with."),
    namespace: str = typer.Option(None, help="Namespace for Redis keys, output topic and alert store."),
    report: Path = typer.Option(None, help="Report path (.json; .md and .png beside it). Default: reports/."),
    episodes: Path = typer.Option(None, help="Planted episodes (JSON from `sentimon demo`) to score alerts on."),
    batch_size: int = typer.Option(256, min=1, help="Records per micro-batch."),
    publish: bool = typer.Option(True, help="Write scored events to the namespace's own scored topic."),
) -> None:
    """Re-score history into an isolated namespace and report what became of every record (dead letters by
    reason), volume and sentiment over time, accuracy (messages with a gold `label`), model agreement and an alert
    diff. The Markdown report goes to stdout, progress to stderr. Production keys, topics and alerts are
    untouched; `sentimon replay clean` removes what a replay created."""
    if ctx.invoked_subcommand is not None:
        return
    if topic is None:
        raise UserError("--topic is required: name the topic to replay, e.g. --topic sentimon.raw.social")
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
    console.print(f"replaying {job.total:,} records into namespace {namespace}", highlight=False)
    # Progress only on a terminal: in a log file a redrawn bar is noise.
    with Progress(*columns, console=console, transient=False, disable=not console.is_terminal) as progress:
        task = progress.add_task("replay", total=job.total)
        outcome = job.run(on_batch=lambda n: progress.advance(task, n))
    paths = outcome.paths
    out.print(reporting.markdown(outcome.report, paths["plot"].name), markup=False, highlight=False, end="")
    console.print(
        f"report: {paths['markdown']} (JSON {paths['json'].name}, plot {paths['plot'].name}); "
        f"remove what this replay created with `sentimon replay clean {namespace}`",
        highlight=False,
    )
    if job.total and not any(m["scored"] for m in outcome.report["models"].values()):
        # A report was written, but the replay did not do what was asked: nothing in the range could be scored.
        console.print(f"error: none of the {outcome.report['records']:,} records is a valid message; see the dead "
                      "letters by reason in the report", highlight=False)  # fmt: skip
        raise typer.Exit(1)


def clean(
    ctx: typer.Context,
    namespace: str = typer.Argument(None, help="The replay namespace to remove (see the list on error)."),
    every: bool = typer.Option(False, "--all", help="Remove every replay namespace."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be removed; remove nothing."),
) -> None:
    """Remove what replays created: their scored topics, their Redis keys (replay:<namespace>.<model>:*) and
    their report files and alert histories (a folder only when the replay created it and it is empty). Prints one
    line per thing removed."""
    from sentimon.replay.clean import Services, discover, remove, select

    settings = settings_of(ctx)
    with Services(settings) as services:
        found = discover(services.client, services.admin, settings.topics.scored)
        chosen = select(found, namespace, every)
        if not chosen:
            console.print("nothing to clean: no replay has left anything")
            return
        for leftovers in chosen:
            lines = remove(services.client, services.admin, leftovers, dry_run)
            for line in lines:
                typer.echo(line)
            if not lines:
                console.print(f"{leftovers.namespace}: nothing left", highlight=False)


def register(app: typer.Typer) -> None:
    group = typer.Typer(invoke_without_command=True, no_args_is_help=False, add_completion=False)
    group.callback()(replay)
    group.command("clean")(clean)
    app.add_typer(group, name="replay")
