"""`sentimon score` (JSONL/text in, JSONL out) and `sentimon bench` (the benchmark scripts in sentimon.bench)."""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO, cast

import typer

from sentimon.cli.common import console, fail, settings_of

if TYPE_CHECKING:
    from sentimon.inference.jsonl import ScoreCounts


def score(
    ctx: typer.Context,
    model: str = typer.Option(None, "--model", "-m", help="Bundle name or path, 'vader' (default: inference.model)."),
    input: str = typer.Option("-", "--input", "-i", help="JSONL {id, text} or plain text lines; '-' = stdin."),
    output: str = typer.Option("-", "--output", "-o", help="JSONL predictions, one per input line; '-' = stdout."),
    fmt: str = typer.Option("auto", "--format", help="auto (from the first line), jsonl or text."),
    chunk_lines: int = typer.Option(512, "--chunk-lines", min=1, help="Lines scored per model call."),
) -> None:
    """Score texts: one output line per input line, same order; a line the worker would dead-letter (bad JSON or
    UTF-8, half an emoji, empty or over-long text) gets an error record with the worker's reason code."""
    from sentimon import inference
    from sentimon.inference.jsonl import Format, read_lines, write_scores

    if fmt not in ("auto", "jsonl", "text"):
        raise typer.BadParameter("must be auto, jsonl or text", param_hint="--format")
    settings = settings_of(ctx)
    max_bytes = settings.stream.max_message_bytes  # the worker's limit: what it would dead-letter, score refuses
    # Every check a user can fail runs before the model loads (seconds) and before --output is truncated.
    src = _stdin() if input == "-" else _open_input(Path(input))
    try:
        _check_output(output, input)
        _refuse_binary(src, input)
        scorer = inference.load(model, settings.inference)
        dst = sys.stdout if output == "-" else _open_output(Path(output))
        started = time.monotonic()
        try:
            with _progress() as progress:
                lines = read_lines(src, max_bytes)
                counts = write_scores(
                    lines, dst, scorer, cast(Format, fmt), chunk_lines, max_bytes=max_bytes, progress=progress
                )
        except BrokenPipeError:
            # `score | head`: the reader has what it wanted; not an error, and no traceback.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
        finally:
            if dst is not sys.stdout:
                dst.close()
    finally:
        if input != "-":
            src.close()
    took = time.monotonic() - started
    console.print(
        f"{scorer.name} {scorer.version}: scored {counts.scored} line(s), {counts.errors} error record(s)"
        f"{f' ({_by_reason(counts.reasons)})' if counts.reasons else ''} in {took:.2f} s",
        highlight=False,
        soft_wrap=True,
    )
    verdict = _verdict(counts)
    if verdict:
        raise fail(verdict, code=1)


# More lines than this share not UTF-8: the input is not a text file (a binary without NUL bytes in its head,
# or a legacy encoding); its error records say where, the exit code says the command did not do its job.
MAX_INVALID_UTF8_SHARE = 0.5


def _verdict(counts: ScoreCounts) -> str | None:
    """Why the run failed as a whole, or None: nothing scored, or mostly undecodable input."""
    from sentimon.inference.jsonl import INVALID_UTF8

    if counts.lines and not counts.scored:
        return (
            f"none of the {counts.lines} line(s) could be scored: {_by_reason(counts.reasons)}; "
            "each line's error record says why"
        )
    invalid = counts.reasons.get(INVALID_UTF8, 0)
    if counts.lines and invalid / counts.lines > MAX_INVALID_UTF8_SHARE:
        return (
            f"{invalid} of {counts.lines} lines are not UTF-8: is the input a text file? "
            "Convert it to UTF-8 (e.g. iconv -f latin1 -t utf-8)"
        )
    return None


def _by_reason(reasons: dict[str, int]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in reasons.items())


def _stdin() -> BinaryIO:
    stream = sys.stdin.buffer
    # peek() (the binary sniff) needs a buffered reader; a test runner's stdin may be a plain BytesIO.
    return stream if hasattr(stream, "peek") else io.BufferedReader(cast(io.RawIOBase, stream))


def _open_input(path: Path) -> BinaryIO:
    from sentimon.inference.options import InferenceError

    if path.is_dir():
        raise InferenceError(f"--input {path} is a directory; give a JSONL or text file, or '-' for stdin")
    try:
        return open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise InferenceError(f"cannot read --input {path}: {exc.strerror}") from None


def _check_output(output: str, input: str) -> None:
    from sentimon.inference.options import InferenceError

    if output == "-":
        return
    path = Path(output)
    parent = path.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise InferenceError(f"--output directory {parent} {what}; create it (mkdir -p {parent}) or pick another path")
    if path.is_dir():
        raise InferenceError(f"--output {path} is a directory; name a file in it, e.g. {path / 'scores.jsonl'}")
    if input != "-" and path.exists() and path.resolve() == Path(input).resolve():
        raise InferenceError(f"--output {path} is the --input file: writing would erase it; pick another path")


def _open_output(path: Path):
    from sentimon.inference.options import InferenceError

    try:
        return open(path, "w", encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise InferenceError(f"cannot write --output {path}: {exc.strerror}") from None


def _refuse_binary(src, input: str) -> None:
    from sentimon.inference.jsonl import BINARY_SNIFF_BYTES, looks_binary
    from sentimon.inference.options import InferenceError

    # peek() reads ahead without consuming, so scoring still starts at byte 0.
    offset = looks_binary(src.peek(BINARY_SNIFF_BYTES)[:BINARY_SNIFF_BYTES])
    if offset is not None:
        name = "stdin" if input == "-" else f"--input {input}"
        raise InferenceError(
            f"{name} looks binary (a NUL byte at offset {offset}): score reads UTF-8 JSONL or text lines "
            "(UTF-16 text: convert it with iconv -f utf-16 -t utf-8)"
        )


@contextmanager
def _progress() -> Iterator[Callable[[ScoreCounts], None] | None]:
    """A live line count on stderr while it is a terminal; nothing in pipes, files and logs."""
    if not console.is_terminal:
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=console, transient=True) as bar:
        task = bar.add_task("scoring", total=None)

        def update(counts: ScoreCounts) -> None:
            bar.update(task, description=f"scored {counts.scored} line(s), {counts.errors} error record(s)")

        yield update


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
