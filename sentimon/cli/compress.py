"""`sentimon compress [--recipe FILE] [--from STAGE]` and `sentimon models list | show NAME`."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from sentimon.cli.common import console, out, settings_of
from sentimon.compression.pipeline import STAGE_NAMES

models_app = typer.Typer(help="Model bundles (built by `sentimon compress`).", no_args_is_help=True)


def compress(
    ctx: typer.Context,
    recipe: str = typer.Option(None, "--recipe", help="Recipe YAML file or a shipped recipe name (default, tiny)."),
    work_dir: str = typer.Option(
        None, "--work-dir", help="Stage outputs (default: <stack.cache_dir>/compress/<recipe>)."
    ),
    restart_from: str = typer.Option(
        None,
        "--from",
        metavar="[" + "|".join(STAGE_NAMES) + "]",
        help="Rerun from this stage on even if its outputs are up to date (earlier stages are reused).",
    ),
) -> None:
    from rich.markup import escape

    from sentimon.compression import load_recipe, run
    from sentimon.compression.workspace import Workspace

    settings = settings_of(ctx)
    rec = load_recipe(recipe)
    work = Path(work_dir) if work_dir else Workspace.default(settings.stack.cache_dir, rec.name).root
    command = "sentimon " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    console.print(f"recipe [bold]{rec.name}[/] ({rec.source_file}); stages in {work}")
    summary = run(rec, settings.stack.cache_dir, work, say=lambda m: console.print(escape(m), highlight=False),
                  restart_from=restart_from, command=command)  # fmt: skip
    table = Table("model", "texts/s", "mean macro-F1", "mean binary acc")
    from sentimon.compression.report import PRETTY, mean_metric

    for name, entry in summary["results"].items():
        table.add_row(PRETTY.get(name, name), f"{entry['texts_per_s']:,.0f}", f"{mean_metric(entry, 'macro_f1'):.3f}",
                      f"{mean_metric(entry, 'binary_accuracy'):.3f}")  # fmt: skip
    out.print(table)
    console.print(f"report {summary['report']}; bundles: " + ", ".join(summary["bundles"].values()))


def _resolve(name: str, models_dir: Path) -> Path:
    path = Path(name)
    return path if path.is_dir() else models_dir / name


def _entry(name: str, folder: Path) -> dict[str, Any]:
    """One row of the catalogue: every name `--model` accepts (built-in lexicon, cascades, bundles)."""
    from importlib.metadata import version

    from sentimon.compression.report import mean_metric
    from sentimon.inference.bundle import BundleError, read_manifest
    from sentimon.inference.cascade import CASCADE_FILE, read_cascade

    if name == "vader":
        return {"name": name, "kind": "lexicon", "version": version("vaderSentiment"), "path": None,
                "about": "VADER lexicon + rules (built in): the lower anchor"}  # fmt: skip
    path = _resolve(name, folder)
    try:
        if (path / CASCADE_FILE).is_file():
            c = read_cascade(path)
            return {"name": name, "kind": "cascade", "version": c.version, "path": str(path),
                    "about": f"{c.fast} first; {c.accurate} when the fast margin < {c.threshold:g}"}  # fmt: skip
        m = read_manifest(path, verify_files=False)
    except BundleError as exc:
        return {"name": name, "kind": "invalid", "version": "", "path": str(path), "error": str(exc)}
    return {"name": m.name, "kind": m.kind, "version": m.version, "path": str(path),
            "size_mb": round((m.size_bytes or 0) / 1e6, 2), "texts_per_s": m.throughput.get("texts_per_s"),
            "macro_f1": round(mean_metric({"metrics": m.metrics}, "macro_f1"), 4)}  # fmt: skip


@models_app.command("list")
def list_models(
    ctx: typer.Context,
    directory: str = typer.Option(None, "--dir", help="Folder holding bundles (default: inference.models_dir)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Every name `--model` accepts: bundles, cascades and the built-in lexicon, with kind, version, size, speed
    and mean accuracy."""
    from sentimon.inference import available_models

    folder = Path(directory) if directory else settings_of(ctx).inference.models_dir
    rows = [_entry(name, folder) for name in available_models(folder)]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("name", "kind", "version", "size MB", "texts/s", "mean macro-F1", "about")
    for r in rows:
        if "error" in r:
            table.add_row(r["name"], "[red]invalid[/]", "", "", "", "", r["error"])
        elif "size_mb" in r:
            table.add_row(r["name"], r["kind"], r["version"], f"{r['size_mb']:.1f}", f"{r['texts_per_s'] or 0:,.0f}",
                          f"{r['macro_f1']:.3f}", "")  # fmt: skip
        else:
            table.add_row(r["name"], r["kind"], r["version"], "-", "-", "-", r["about"])
    out.print(table)
    if len(rows) == 1:
        console.print(f"no bundles in {folder}; build them with `sentimon compress`")


@models_app.command("show")
def show_model(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A name from `sentimon models list`, or a bundle path."),
    as_json: bool = typer.Option(False, "--json", help="Print the full manifest (or cascade config) as JSON."),
) -> None:
    """Validate one model (bundle checksums included) and print its summary."""
    from sentimon.inference.bundle import read_manifest
    from sentimon.inference.cascade import CASCADE_FILE, read_cascade

    folder = settings_of(ctx).inference.models_dir
    path = _resolve(name, folder)
    if name == "vader" or (path / CASCADE_FILE).is_file():
        entry = _entry(name, folder)
        if as_json:
            config = read_cascade(path).model_dump(mode="json") if entry["kind"] == "cascade" else entry
            typer.echo(json.dumps(config, indent=2))
        else:
            out.print(f"[bold]{entry['name']}[/] {entry['version']} ({entry['kind']}): {entry['about']}")
        return
    m = read_manifest(path)
    if as_json:
        typer.echo(json.dumps(m.model_dump(mode="json"), indent=2))
        return
    out.print(f"[bold]{m.name}[/] {m.version} ({m.kind}), {(m.size_bytes or 0) / 1e6:.1f} MB, labels "
              f"{m.labels}, max_length {m.max_length}, inputs {m.inputs}")  # fmt: skip
    out.print(f"teacher: {m.teacher.get('model')} ({m.teacher.get('architecture')})")
    out.print(f"throughput: {m.throughput.get('texts_per_s')} texts/s (batch {m.throughput.get('batch_size')}, "
              f"{m.throughput.get('threads')} threads, {m.throughput.get('machine')})")  # fmt: skip
    table = Table("test split", "accuracy", "macro-F1", "binary acc")
    for split, met in m.metrics.items():
        table.add_row(split, f"{met['accuracy']:.3f}", f"{met['macro_f1']:.3f}",
                      f"{met['binary_accuracy']:.3f}" if "binary_accuracy" in met else "-")  # fmt: skip
    out.print(table)
    out.print(f"built: {m.build.get('date')} with `{m.build.get('command')}`; data: "
              + ", ".join(f"{d.name} ({d.sha256[:12]})" for d in m.data))  # fmt: skip


def register(app: typer.Typer) -> None:
    # The help names the stages from the table the runner walks, so the two cannot disagree.
    app.command("compress", help="Build the model bundles and report, stage by stage (resumable): "
                + " -> ".join(STAGE_NAMES) + ".")(compress)  # fmt: skip
    app.add_typer(models_app, name="models")
