"""`sentimon score` (JSONL/text in, JSONL out) and `sentimon bench` (the benchmark scripts in sentimon.bench)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, cast

import typer

from sentimon.cli.common import console, settings_of


def score(
    ctx: typer.Context,
    model: str = typer.Option(None, "--model", "-m", help="Bundle name or path, 'vader' (default: inference.model)."),
    input: str = typer.Option("-", "--input", "-i", help="JSONL {id, text} or plain text lines; '-' = stdin."),
    output: str = typer.Option("-", "--output", "-o", help="JSONL predictions, one per input line; '-' = stdout."),
    fmt: str = typer.Option("auto", "--format", help="auto (from the first line), jsonl or text."),
    chunk_lines: int = typer.Option(512, "--chunk-lines", min=1, help="Lines scored per model call."),
) -> None:
    """Score texts: one output line per input line, same order; bad lines get an error record."""
    from sentimon import inference
    from sentimon.inference.jsonl import Format, write_scores

    if fmt not in ("auto", "jsonl", "text"):
        raise typer.BadParameter("must be auto, jsonl or text", param_hint="--format")
    settings = settings_of(ctx)
    scorer = inference.load(model, settings.inference)
    src = sys.stdin.buffer if input == "-" else _open_input(Path(input))
    dst = sys.stdout if output == "-" else open(output, "w", encoding="utf-8")  # noqa: SIM115
    started = time.monotonic()
    try:
        counts = write_scores(src, dst, scorer, cast(Format, fmt), chunk_lines)
    finally:
        if src is not sys.stdin.buffer:
            src.close()
        if dst is not sys.stdout:
            dst.close()
    took = time.monotonic() - started
    console.print(
        f"{scorer.name} {scorer.version}: scored {counts.scored} line(s), {counts.errors} error record(s) "
        f"in {took:.2f} s",
        highlight=False,
    )


def _open_input(path: Path):
    from sentimon.inference.options import InferenceError

    try:
        return open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise InferenceError(f"cannot read --input {path}: {exc.strerror}") from None


def bench(
    ctx: typer.Context,
    quick: Annotated[bool, typer.Option("--quick", help="Small sets, short budgets, no accuracy (smoke run).")] = False,
    accuracy_only: Annotated[
        bool, typer.Option("--accuracy-only", help="Score the labelled splits only (no timing).")
    ] = False,
    labelled: Annotated[
        list[Path] | None, typer.Option("--labelled", help="Labelled JSONL/CSV (default: the build's test splits).")
    ] = None,
    bundle: Annotated[list[str] | None, typer.Option("--bundle", help="Extra row LABEL=PATH (repeatable).")] = None,
    teacher: Annotated[Path | None, typer.Option("--teacher", help="HF folder for the baseline pipeline.")] = None,
    only: Annotated[list[str] | None, typer.Option("--only", help="Only rows whose label contains this.")] = None,
    threads: Annotated[int, typer.Option("--threads", min=1, help="Threads per row.")] = 2,
    write: Annotated[Path | None, typer.Option("--write", help="Update this BENCHMARKS.md's section.")] = None,
    cascade: Annotated[bool, typer.Option("--cascade", help="Measure the cascade threshold curve instead.")] = False,
    save_cascade: Annotated[
        bool, typer.Option("--save-cascade", help="With --cascade: store the chosen threshold for load('cascade').")
    ] = False,
    tune: Annotated[bool, typer.Option("--tune", help="Search batch/threads/bucket settings for --model.")] = False,
    model: Annotated[str, typer.Option("--model", "-m", help="With --tune: the model to tune.")] = "default",
    config_out: Annotated[
        Path, typer.Option("--config-out", help="With --tune: TOML settings file the best values go to.")
    ] = Path("sentimon.toml"),
) -> None:
    """Benchmark the models side by side (sentimon.bench.run); --cascade: threshold curve; --tune: runtime settings."""
    if tune:
        from sentimon.bench.tune import main as tune_main

        argv = ["--model", model, "--config", str(config_out), "--write", *(["--quick"] if quick else [])]
        tune_main(argv + (["--benchmarks", str(write)] if write else []))
        return
    common = [a for p in labelled or [] for a in ("--labelled", str(p))] + ["--threads", str(threads)]
    if cascade:
        from sentimon.bench.cascade import main as cascade_main

        common += ["--write"] if save_cascade else []
        extra = ["--benchmarks", str(write)] if write else []
        cascade_main([*common, *extra])
        return
    from sentimon.bench.run import main as run_main

    argv = [*common, *(["--quick"] if quick else []), *(["--write", str(write)] if write else [])]
    argv += ["--accuracy-only"] if accuracy_only else []
    argv += [a for b in bundle or [] for a in ("--bundle", b)] + [a for o in only or [] for a in ("--only", o)]
    argv += ["--teacher", str(teacher)] if teacher else []
    run_main(argv)


def register(app: typer.Typer) -> None:
    app.command()(score)
    app.command()(bench)
