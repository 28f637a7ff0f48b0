"""`sentimon drift reference | status`: set the drift monitor's reference, and show what the workers measure."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.table import Table

from sentimon.cli.common import console, out, settings_of, time_option
from sentimon.core.errors import UserError

drift_app = typer.Typer(
    help="The drift monitor: label mix, confidence, unknown tokens and text length against a reference.",
    no_args_is_help=True,
)


@drift_app.command("reference")
def reference(
    ctx: typer.Context,
    from_replay: str = typer.Option(None, "--from-replay", metavar="NAMESPACE",
                                    help="Build it from what `sentimon replay --namespace NAMESPACE` scored."),
    topic: str = typer.Option(None, help="Build it from the live scored events of this raw topic."),
    since: str = typer.Option(None, metavar="TIME", help="With --topic: start (ISO 8601 or epoch ms)."),
    until: str = typer.Option(None, metavar="TIME", help="With --topic: end, exclusive (ISO 8601 or epoch ms)."),
    model: str = typer.Option(None, help="Whose tokenizer counts unknown tokens (default: setting inference.model)."),
    output: Path = typer.Option(None, "--output", "-o", help="Write here (default: setting drift.reference)."),
) -> None:  # fmt: skip
    """Set the reference the drift monitor compares with, from a quiet period of a topic or from a replay: per
    model and topic, the label mix and the mean and sigma of confidence, text length and unknown-token rate over
    windows of drift.window_events events (at least drift.min_reference_windows of them). Workers pick up the new
    file at their next batch. Prints the reference's JSON."""
    from sentimon.inference.drift import reference_path
    from sentimon.replay import drift

    settings = settings_of(ctx)
    if (from_replay is None) == (topic is None):
        raise UserError("give one of --from-replay NAMESPACE or --topic TOPIC (with --since/--until)")
    if from_replay is not None and (since or until):
        raise UserError("--since/--until go with --topic; a replay reference takes everything the replay scored")
    start = time_option(since, "--since") if since else None
    end = time_option(until, "--until") if until else None
    if start is not None and end is not None and end <= start:
        raise UserError("--until must be after --since")
    if from_replay is not None:
        ref = drift.reference_from_replay(settings, from_replay, model)
    else:
        ref = drift.reference_from_topic(settings, topic, start, end, model)
    path = output or reference_path(settings)
    ref.save(path)
    out.print(ref.to_json(), markup=False, highlight=False, end="")
    pairs = ", ".join(f"{r.model} on {r.topic} ({r.windows} windows)" for r in ref.topics.values())
    console.print(f"drift reference written to {path}: {pairs}", highlight=False)


@drift_app.command("status")
def status(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="JSON instead of a table."),
) -> None:
    """The reference in use and each worker's last drift window per model and topic: JS distance of the label
    mix, confidence z and Page-Hinkley statistic, length z, unknown-token z, and the signals drifting now."""
    from sentimon.inference.drift import DriftReference, reference_path
    from sentimon.replay import drift

    settings = settings_of(ctx)
    path = reference_path(settings)
    ref = DriftReference.load(path) if path.is_file() else None
    rows = drift.worker_status(settings)
    if as_json:
        body = {
            "reference": str(path) if ref else None,
            "reference_source": ref.source if ref else None,
            "window_events": ref.window_events if ref else None,
            "pairs": sorted(f"{m}|{t}" for m, t in ref.topics) if ref else [],
            "workers": rows,
        }
        typer.echo(json.dumps(body, indent=2))
        return
    if ref is None:
        console.print(f"no drift reference at {path}: set one with `sentimon drift reference`", highlight=False)
    else:
        console.print(f"reference {path}: {ref.source}, windows of {ref.window_events} events", highlight=False)
    if not rows:
        console.print("no worker has closed a drift window yet", highlight=False)
        return
    table = Table("model", "topic", "worker", "window", "label JS", "conf. z", "conf. PH", "length z", "unk. z",
                  "drifting", "age")  # fmt: skip
    now_ms = time.time() * 1000
    for r in rows:
        drifting = ", ".join(s for s, on in r["detected"].items() if on) or "-"
        unk = "-" if r["unk_z"] is None else f"{r['unk_z']:.1f}"
        table.add_row(r["model"], r["topic"], r["worker"], str(r["window"]), f"{r['label_js']:.3f}",
                      f"{r['confidence_z']:.1f}", f"{r['confidence_ph']:.1f}", f"{r['length_z']:.1f}", unk, drifting,
                      f"{(now_ms - r['at_ms']) / 1000:.0f} s")  # fmt: skip
    out.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(drift_app, name="drift")
