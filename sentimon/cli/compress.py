"""`sentimon compress [--recipe FILE] [--from STAGE]` and `sentimon models list | show NAME`."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from sentimon.cli.common import console, settings_of
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
    console.print(table)
    console.print(f"report {summary['report']}; bundles: " + ", ".join(summary["bundles"].values()))


def _bundles(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if (p / "manifest.json").is_file()) if root.is_dir() else []


def _resolve(name: str, models_dir: Path) -> Path:
    path = Path(name)
    return path if path.is_dir() else models_dir / name


@models_app.command("list")
def list_models(
    ctx: typer.Context,
    directory: str = typer.Option(None, "--dir", help="Folder holding bundles (default: inference.models_dir)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Bundles in the models folder with kind, size, speed and mean accuracy."""
    from sentimon.compression.report import mean_metric
    from sentimon.inference.bundle import BundleError, read_manifest

    folder = Path(directory) if directory else settings_of(ctx).inference.models_dir
    rows: list[dict[str, Any]] = []
    for path in _bundles(folder):
        try:
            m = read_manifest(path, verify_files=False)
        except BundleError as exc:
            rows.append({"name": path.name, "error": str(exc)})
            continue
        entry = {"metrics": m.metrics}
        rows.append({"name": m.name, "path": str(path), "kind": m.kind, "version": m.version,
                     "size_mb": round((m.size_bytes or 0) / 1e6, 2), "texts_per_s": m.throughput.get("texts_per_s"),
                     "macro_f1": round(mean_metric(entry, "macro_f1"), 4)})  # fmt: skip
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        console.print(f"no bundles in {folder}; build them with `sentimon compress`")
        return
    table = Table("name", "kind", "version", "size MB", "texts/s", "mean macro-F1")
    for r in rows:
        if "error" in r:
            table.add_row(r["name"], "[red]invalid[/]", "", "", "", r["error"])
        else:
            table.add_row(r["name"], r["kind"], r["version"], f"{r['size_mb']:.1f}", f"{r['texts_per_s'] or 0:,.0f}",
                          f"{r['macro_f1']:.3f}")  # fmt: skip
    console.print(table)


@models_app.command("show")
def show_model(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Bundle name (under inference.models_dir) or path."),
    as_json: bool = typer.Option(False, "--json", help="Print the full manifest as JSON."),
) -> None:
    """Validate one bundle (checksums included) and print its manifest summary."""
    from sentimon.inference.bundle import read_manifest

    m = read_manifest(_resolve(name, settings_of(ctx).inference.models_dir))
    if as_json:
        print(json.dumps(m.model_dump(mode="json"), indent=2))
        return
    console.print(f"[bold]{m.name}[/] {m.version} ({m.kind}), {(m.size_bytes or 0) / 1e6:.1f} MB, labels "
                  f"{m.labels}, max_length {m.max_length}, inputs {m.inputs}")  # fmt: skip
    console.print(f"teacher: {m.teacher.get('model')} ({m.teacher.get('architecture')})")
    console.print(f"throughput: {m.throughput.get('texts_per_s')} texts/s (batch {m.throughput.get('batch_size')}, "
                  f"{m.throughput.get('threads')} threads, {m.throughput.get('machine')})")  # fmt: skip
    table = Table("test split", "accuracy", "macro-F1", "binary acc")
    for split, met in m.metrics.items():
        table.add_row(split, f"{met['accuracy']:.3f}", f"{met['macro_f1']:.3f}",
                      f"{met['binary_accuracy']:.3f}" if "binary_accuracy" in met else "-")  # fmt: skip
    console.print(table)
    console.print(f"built: {m.build.get('date')} with `{m.build.get('command')}`; data: "
                  + ", ".join(f"{d.name} ({d.sha256[:12]})" for d in m.data))  # fmt: skip


def register(app: typer.Typer) -> None:
    # The help names the stages from the table the runner walks, so the two cannot disagree.
    app.command("compress", help="Build the model bundles and report, stage by stage (resumable): "
                + " -> ".join(STAGE_NAMES) + ".")(compress)  # fmt: skip
    app.add_typer(models_app, name="models")
