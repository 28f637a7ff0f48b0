"""`sentimon compress [--recipe FILE] [--from STAGE]` (the bundles it builds: `sentimon models`)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer
from rich.table import Table

from sentimon.cli.common import console, out, settings_of
from sentimon.compression.pipeline import STAGE_NAMES


def compress(
    ctx: typer.Context,
    recipe: str = typer.Option(
        None, "--recipe", help="Recipe YAML file or a shipped recipe name (default, finance, tiny)."
    ),
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


def register(app: typer.Typer) -> None:
    # The help names the stages from the table the runner walks, so the two cannot disagree.
    app.command("compress", help="Build the model bundles and report, stage by stage (resumable): "
                + " -> ".join(STAGE_NAMES) + ".")(compress)  # fmt: skip
