"""The `sentimon score` stream contract as a pure function: input lines in, one output record per line out.

Input: JSONL objects ``{"id": ..., "text": "..."}`` or plain text lines (id = 1-based line number). The format is
taken from the first non-blank line unless given. Output per line, same order: ``{"id", "label", "score",
"probs": {"negative", "neutral", "positive"}, "lang"}`` (``lang`` while the language check is on, plus
``"unsupported": true`` for a language the model does not read: ``inference.language``), or
``{"id", "line", "error", "reason"}`` for a line that cannot be scored: ``error`` says why in words, ``reason`` is
the code the worker dead-letters the same input with (a blank line or text, invalid JSON or UTF-8, a lone
surrogate, a line over the worker's size limit, ...). Lines are processed in chunks and read at most ``max_bytes``
at a time, so neither a large input nor one huge line ever sits in memory whole.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import IO, Any, Literal

from sentimon.core import strictjson
from sentimon.core.reasons import (
    EMPTY_TEXT,
    INVALID_JSON,
    INVALID_UTF8,
    LONE_SURROGATE,
    MISSING_TEXT,
    NON_FINITE_NUMBER,
    NON_FINITE_SCORE,
    NOT_OBJECT,
    OVERSIZE,
    SCORING_FAILED,
    TOO_DEEP,
    WRONG_TYPE,
)
from sentimon.inference.prediction import Prediction, Scorer

Format = Literal["auto", "jsonl", "text"]
PROB_DIGITS = 6  # output precision: far below any model's calibration error, keeps lines short
BINARY_SNIFF_BYTES = 8192  # how much of the input `looks_binary` reads: the heuristic git and grep use

# fmt: skip


@dataclass(frozen=True)
class Oversize:
    """A line longer than the limit, read past without keeping it: its size and first bytes (for format
    detection)."""

    n_bytes: int
    head: bytes


@dataclass(frozen=True)
class _Parsed:
    id: Any
    text: str | None = None
    reason: str | None = None
    error: str | None = None


def _encodes(obj: Any) -> bool:
    # JSON allows lone surrogates ("\ud83d", half an emoji); UTF-8 and the tokenizers do not. Dumping the whole
    # object checks every string and key in C, and the output line is dumped from it anyway.
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _parse(raw: bytes | Oversize, line_no: int, fmt: str, max_bytes: int | None) -> _Parsed:
    if isinstance(raw, bytes):
        raw = raw.rstrip(b"\r\n")
        if max_bytes is not None and len(raw) > max_bytes:
            raw = Oversize(len(raw), raw[:BINARY_SNIFF_BYTES])
    if isinstance(raw, Oversize):
        # Rejected before decoding or tokenizing: a 5 MB line would take the model a minute and gigabytes.
        error = f"line has {raw.n_bytes} bytes > limit {max_bytes} (setting stream.max_message_bytes)"
        return _Parsed(line_no if fmt == "text" else None, reason=OVERSIZE, error=error)
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _Parsed(
            line_no, reason=INVALID_UTF8, error=f"line is not valid UTF-8 ({exc.reason} at byte {exc.start})"
        )
    if fmt == "text":
        if not line.strip():
            return _Parsed(line_no, reason=EMPTY_TEXT, error="blank line: no text to score")
        return _Parsed(line_no, line)
    if not line.strip():
        return _Parsed(None, reason=EMPTY_TEXT, error="empty line (expected a JSON object with a 'text' field)")
    try:
        record = strictjson.loads(line)
    except strictjson.NonFiniteNumber as exc:
        return _Parsed(None, reason=NON_FINITE_NUMBER, error=str(exc))
    except RecursionError:
        return _Parsed(None, reason=TOO_DEEP, error="invalid JSON: nested too deep to parse")
    except json.JSONDecodeError as exc:
        return _Parsed(None, reason=INVALID_JSON, error=f"invalid JSON: {exc.msg} at column {exc.colno}")
    if not isinstance(record, dict):
        return _Parsed(None, reason=NOT_OBJECT, error=f"expected a JSON object, got {type(record).__name__}")
    rid = record.get("id", line_no)
    if "\\u" in line and not _encodes(record):  # only a \u escape can smuggle a surrogate into decoded UTF-8
        return _Parsed(rid, reason=LONE_SURROGATE, error="a string holds a lone surrogate (half an emoji): not UTF-8")
    if "text" not in record:
        return _Parsed(rid, reason=MISSING_TEXT, error="missing 'text' field")
    text = record["text"]
    if not isinstance(text, str):
        return _Parsed(rid, reason=WRONG_TYPE, error=f"'text' must be a string, got {type(text).__name__}")
    if not text.strip():
        return _Parsed(rid, reason=EMPTY_TEXT, error="'text' is empty or whitespace")
    return _Parsed(rid, text)


def detect_format(first_line: bytes) -> Literal["jsonl", "text"]:
    return "jsonl" if first_line.lstrip().startswith(b"{") else "text"


def looks_binary(head: bytes) -> int | None:
    """The offset of the first NUL byte in ``head`` (text never holds one; images, executables and UTF-16 do),
    or None."""
    offset = head.find(b"\0")
    return None if offset < 0 else offset


def read_lines(stream: IO[bytes], max_bytes: int) -> Iterator[bytes | Oversize]:
    """The lines of a binary stream; a line longer than ``max_bytes`` (without its line break) comes as
    ``Oversize``, read past in ``max_bytes`` pieces so memory stays bounded however long it is."""
    while True:
        line = stream.readline(max_bytes + 2)  # + "\r\n": a line of exactly max_bytes is still whole
        if not line:
            return
        if line.endswith(b"\n") or len(line) < max_bytes + 2:
            yield line
            continue
        n_bytes, head = len(line), line[:BINARY_SNIFF_BYTES]
        while line and not line.endswith(b"\n"):
            line = stream.readline(max_bytes + 2)
            n_bytes += len(line)
        yield Oversize(n_bytes - (len(line) - len(line.rstrip(b"\r\n"))), head)


def _record(rid: Any, pred: Prediction) -> dict[str, Any]:
    out = {
        "id": rid,
        "label": pred.label,
        "score": round(pred.score, PROB_DIGITS),
        "probs": {k: round(v, PROB_DIGITS) for k, v in pred.probs.items()},
    }
    if pred.lang is not None:  # the language check is on (inference.languages)
        out["lang"] = pred.lang
    if pred.unsupported:
        out["unsupported"] = True
    return out


def _predict(scorer: Scorer, texts: list[str]) -> list[Prediction | Exception]:
    # One text the model chokes on costs that line, never the file: retry the chunk one text at a time.
    try:
        return list(scorer.score(texts))
    except Exception:  # noqa: BLE001 - any failure inside a model is isolated to the text that caused it
        out: list[Prediction | Exception] = []
        for text in texts:
            try:
                out.extend(scorer.score([text]))
            except Exception as exc:  # noqa: BLE001
                out.append(exc)
        return out


def _output(rid: Any, line_no: int, pred: Prediction | Exception) -> dict[str, Any]:
    if isinstance(pred, Exception):
        return _error(rid, line_no, SCORING_FAILED, f"{type(pred).__name__}: {pred}"[:300])
    if not (math.isfinite(pred.score) and all(math.isfinite(p) for p in pred.probs.values())):
        return _error(rid, line_no, NON_FINITE_SCORE, f"the model gave score {pred.score}, probs {pred.probs}")
    return _record(rid, pred)


def _error(rid: Any, line_no: int, reason: str, error: str) -> dict[str, Any]:
    return {"id": rid, "line": line_no, "error": error, "reason": reason}


def score_lines(
    lines: Iterable[bytes | Oversize],
    scorer: Scorer,
    fmt: Format = "auto",
    chunk_lines: int = 512,
    max_bytes: int | None = None,
) -> Iterator[dict]:
    """Yield one output record per input line, in order, scoring ``chunk_lines`` lines per model call; lines over
    ``max_bytes`` (the worker's ``stream.max_message_bytes``) get an ``oversize`` error record."""
    it = iter(lines)
    line_no = 0
    pending: list[bytes | Oversize] = []
    if fmt == "auto":
        # Look ahead to the first non-blank line; the lines read meanwhile are scored like any others.
        for raw in it:
            pending.append(raw)
            head = raw.head if isinstance(raw, Oversize) else raw
            if head.strip():
                fmt = detect_format(head)
                break
        else:
            fmt = "text"
    chunk = pending + list(islice(it, max(chunk_lines - len(pending), 0)))
    while chunk:
        parsed = []
        for raw in chunk:
            line_no += 1
            parsed.append((line_no, _parse(raw, line_no, fmt, max_bytes)))
        texts = [p.text for _, p in parsed if p.text is not None]
        preds = iter(_predict(scorer, texts) if texts else ())
        for n, p in parsed:
            if p.reason is not None:
                yield _error(p.id, n, p.reason, p.error or p.reason)
            else:
                yield _output(p.id, n, next(preds))
        chunk = list(islice(it, chunk_lines))


@dataclass(frozen=True)
class ScoreCounts:
    scored: int  # lines with a prediction
    errors: int  # lines with an error record
    reasons: dict[str, int] = field(default_factory=dict)  # error records per reason code

    @property
    def lines(self) -> int:
        return self.scored + self.errors


def _dumps(record: dict[str, Any]) -> str:
    line = json.dumps(record, ensure_ascii=False)
    if record.get("reason") == LONE_SURROGATE:
        # The id may hold the surrogate itself: \u escapes keep the line valid UTF-8 and the id as it was.
        line = json.dumps(record)
    return line


def write_scores(
    lines: Iterable[bytes | Oversize],
    out: IO[str],
    scorer: Scorer,
    fmt: Format = "auto",
    chunk_lines: int = 512,
    max_bytes: int | None = None,
    progress: Callable[[ScoreCounts], None] | None = None,
) -> ScoreCounts:
    """``score_lines`` written to ``out`` as JSONL (flushed), with the counts a summary line reports;
    ``progress`` is called with the counts so far after each chunk."""
    scored = errors = 0
    reasons: Counter[str] = Counter()
    for record in score_lines(lines, scorer, fmt, chunk_lines, max_bytes):
        if "error" in record:
            errors += 1
            reasons[record["reason"]] += 1
        else:
            scored += 1
        out.write(_dumps(record) + "\n")
        if progress is not None and (scored + errors) % chunk_lines == 0:
            progress(ScoreCounts(scored, errors, dict(reasons)))
    out.flush()
    return ScoreCounts(scored, errors, dict(sorted(reasons.items())))
