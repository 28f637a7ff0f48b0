"""`sentimon score` (JSONL/text in, JSONL out) and `sentimon bench` (the benchmark scripts in bench/)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import typer

from sentimon.cli.common import console, settings_of


def score(
    ctx: typer.Context,
    model: str = typer.Option(None, "--model", "-m", help="Bundle name or path, 'vader' (default: settings.model)."),
    input: str = typer.Option("-", "--input", "-i", help="JSONL {id, text} or plain text lines; '-' = stdin."),
    output: str = typer.Option("-", "--output", "-o", help="JSONL predictions, one per input line; '-' = stdout."),
    fmt: str = typer.Option("auto", "--format", help="auto (from the first line), jsonl or text."),
    chunk_lines: int = typer.Option(512, "--chunk-lines", min=1, help="Lines scored per model call."),
) -> None:
    """Score texts: one output line per input line, same order; bad lines get an error record."""
    import inference
    from inference.jsonl import score_lines

    if fmt not in ("auto", "jsonl", "text"):
        raise typer.BadParameter("must be auto, jsonl or text", param_hint="--format")
    settings = settings_of(ctx)
    scorer = inference.load(model or settings.model, settings)
    src = sys.stdin.buffer if input == "-" else _open_input(Path(input))
    dst = sys.stdout if output == "-" else open(output, "w", encoding="utf-8")  # noqa: SIM115
    started, scored, errors = time.monotonic(), 0, 0
    try:
        for record in score_lines(src, scorer, fmt, chunk_lines):  # type: ignore[arg-type]
            errors += "error" in record
            scored += "error" not in record
            dst.write(json.dumps(record, ensure_ascii=False) + "\n")
        dst.flush()
    finally:
        if src is not sys.stdin.buffer:
            src.close()
        if dst is not sys.stdout:
            dst.close()
    took = time.monotonic() - started
    console.print(
        f"{scorer.name} {scorer.version}: scored {scored} line(s), {errors} error record(s) in {took:.2f} s",
        highlight=False,
    )


def _open_input(path: Path):
    from inference.options import InferenceError

    try:
        return open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise InferenceError(f"cannot read --input {path}: {exc.strerror}") from None


def register(app: typer.Typer) -> None:
    app.command()(score)
