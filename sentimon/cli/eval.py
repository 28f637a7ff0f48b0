"""`sentimon eval`: metrics of a model on labelled files (and side by side with a second model), or the
behavioural suite. Wiring only: reading, scoring and rendering live in sentimon.inference."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from sentimon.cli.common import console, fail, settings_of
from sentimon.core.errors import UserError

out = Console()  # results go to stdout; progress and errors to stderr (common.console)


def eval_command(
    ctx: typer.Context,
    data: Annotated[
        list[Path] | None,
        typer.Option("--data", "-d", help="Labelled CSV/TSV/JSONL/Parquet with text + label columns (repeatable)."),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Bundle name or path, 'vader' (default: inference.model).")
    ] = None,
    compare: Annotated[str | None, typer.Option("--compare", help="A second model, shown side by side.")] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write eval.json, eval.md and reliability PNGs to this folder.")
    ] = None,
    behaviour: Annotated[
        bool,
        typer.Option("--behaviour", help="Run the behavioural suite (CheckList-style) instead of / besides --data."),
    ] = False,
    label_map: Annotated[
        str | None,
        typer.Option("--label-map", help="Extra label names: RAW=LABEL,... e.g. 0=negative,1=positive,2=neutral."),
    ] = None,
    text_column: Annotated[str, typer.Option("--text-column", help="Column holding the text.")] = "text",
    label_column: Annotated[str, typer.Option("--label-column", help="Column holding the gold label.")] = "label",
) -> None:
    """Accuracy, macro-F1, per-class precision/recall, confusion and calibration (ECE) per labelled file."""
    try:
        _run(ctx, data or [], model, compare, report, behaviour, label_map, text_column, label_column)
    except UserError as exc:
        raise fail(str(exc)) from None


def _run(ctx, data, model, compare, report, behaviour, label_map, text_column, label_column) -> None:
    from sentimon import inference
    from sentimon.inference.eval_report import score_sets, write_report
    from sentimon.inference.evaluation import read_labelled
    from sentimon.inference.labels import parse_label_map

    if not data and not behaviour:
        raise UserError("nothing to evaluate: give --data FILE (repeatable) or --behaviour")
    try:
        mapping = parse_label_map(label_map) if label_map else None
    except ValueError as exc:
        raise UserError(f"--label-map {exc}") from None
    # Every file is read and checked before a model loads: a bad file fails in a second, not after scoring.
    sets = [read_labelled(p, label_map=mapping, text_column=text_column, label_column=label_column) for p in data]
    names = [s.name for s in sets]
    sets = [s if names.count(s.name) == 1 else _renamed(s, p) for s, p in zip(sets, data, strict=True)]
    settings = settings_of(ctx)
    asked = [model, *([compare] if compare else [])]
    scorers = [inference.load(m, settings.inference) for m in asked]
    by_set = {}
    for s, path in zip(sets, data, strict=True):
        console.print(f"scoring {s.name} ({len(s.texts)} texts) ...", highlight=False)
        by_set[s.name] = _named(score_sets(scorers, s, str(path)), asked)
        _print_set(by_set[s.name])
    extra = {}
    if behaviour:
        from sentimon.inference.behaviour import run_suite

        reports = [run_suite(scorer) for scorer in scorers]
        _print_behaviour(reports)
        extra["behaviour"] = [r.to_dict() for r in reports]
    if report is not None:
        written = write_report(by_set, report, extra)
        if behaviour:
            behaviour_md = report / "behaviour.md"
            behaviour_md.write_text("\n".join(r.to_markdown() for r in reports))
            written.append(behaviour_md)
        if by_set and not any(p.suffix == ".png" for p in written):
            console.print("reliability PNGs need matplotlib: pip install 'sentimon[eval]'", highlight=False)
        console.print(f"wrote {', '.join(str(p) for p in written)}", highlight=False)


def _named(results, asked: list[str | None]):
    """Two bundles of one name and version (a rebuild beside the shipped one) are told apart by what was asked."""
    from dataclasses import replace

    if len(results) != 2 or results[0].model != results[1].model:
        return results
    tags = [a or "inference.model" for a in asked]
    if tags[0] == tags[1]:
        tags = ["--model", "--compare"]
    return [replace(r, model=f"{r.model} ({tag})") for r, tag in zip(results, tags, strict=True)]


def _renamed(s, path: Path):
    from dataclasses import replace

    return replace(s, name=str(path))


def _print_set(results) -> None:
    from sentimon.inference.bundle import LABELS
    from sentimon.inference.eval_report import notes, summary_rows

    first = results[0]
    head = f"\n{first.data} ({first.path}): " + "; ".join(notes(first))
    out.print(head, highlight=False, markup=False, soft_wrap=True)
    table = Table()
    table.add_column("metric")
    for r in results:
        table.add_column(r.model, justify="right")
    if len(results) == 2:
        table.add_column("Δ", justify="right")
    for metric, cells in summary_rows(results):
        table.add_row(metric, *(Text(c) for c in cells))
    out.print(table)
    for r in results:
        out.print(f"confusion, {r.model}:", highlight=False, soft_wrap=True)
        confusion = Table()
        confusion.add_column("gold \\ predicted")
        for label in LABELS:
            confusion.add_column(label, justify="right")
        for label, row in zip(LABELS, r.metrics.confusion, strict=True):
            confusion.add_row(label, *map(str, row))
        out.print(confusion)


def _print_behaviour(reports) -> None:
    table = Table(title="behavioural suite (pass rate per capability)", title_justify="left")
    table.add_column("capability")
    table.add_column("type")
    table.add_column("cases", justify="right")
    for r in reports:
        table.add_column(r.model, justify="right")
    first = reports[0]
    for name, cap in first.capabilities.items():
        counted = "" if all(t.counted for t in cap.tests) else " (not counted)"
        table.add_row(
            name + counted, cap.types, str(cap.cases), *(f"{r.capabilities[name].pass_rate:.1%}" for r in reports)
        )
    table.add_row("MFT total (target >= 90%)", "mft", "", *(f"{r.mft_pass_rate or 0:.1%}" for r in reports))
    out.print(table)
    for r in reports:
        for cap in r.capabilities.values():
            for t in cap.tests:
                for f in t.failures[:2]:
                    out.print(f"  [{r.model}] {t.name}: {f['text']!r} -> {f['got']}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
