"""The `sentimon score` stream contract as a pure function: input lines in, one output record per line out.

Input: JSONL objects ``{"id": ..., "text": "..."}`` or plain text lines (id = 1-based line number). The format is
taken from the first non-blank line unless given. Output per line, same order: ``{"id", "label", "score",
"probs": {"negative", "neutral", "positive"}, "lang"}`` (``lang`` while the language check is on, plus
``"unsupported": true`` for a language the model does not read: ``inference.language``), or
``{"id", "line", "error"}`` for a line that cannot be scored (invalid JSON or UTF-8, not an object, missing or
non-string text, a blank JSONL line). Lines are processed in chunks so a large input never sits in memory whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import IO, Any, Literal

from sentimon.inference.prediction import Scorer

Format = Literal["auto", "jsonl", "text"]
PROB_DIGITS = 6  # output precision: far below any model's calibration error, keeps lines short


def _parse(raw: bytes, line_no: int, fmt: str) -> tuple[Any, str | None, str | None]:
    """-> (id, text, error): exactly one of text / error is set."""
    try:
        line = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        return line_no, None, f"line is not valid UTF-8 ({exc.reason} at byte {exc.start})"
    if fmt == "text":
        return line_no, line, None
    if not line.strip():
        return None, None, "empty line (expected a JSON object with a 'text' field)"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, None, f"invalid JSON: {exc.msg} at column {exc.colno}"
    if not isinstance(record, dict):
        return None, None, f"expected a JSON object, got {type(record).__name__}"
    rid = record.get("id", line_no)
    text = record.get("text")
    if "text" not in record:
        return rid, None, "missing 'text' field"
    if not isinstance(text, str):
        return rid, None, f"'text' must be a string, got {type(text).__name__}"
    return rid, text, None


def detect_format(first_line: bytes) -> Literal["jsonl", "text"]:
    return "jsonl" if first_line.lstrip().startswith(b"{") else "text"


def _record(rid: Any, pred) -> dict[str, Any]:
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


def score_lines(lines: Iterable[bytes], scorer: Scorer, fmt: Format = "auto", chunk_lines: int = 512) -> Iterator[dict]:
    """Yield one output record per input line, in order, scoring ``chunk_lines`` lines per model call."""
    it = iter(lines)
    line_no = 0
    pending: list[bytes] = []
    if fmt == "auto":
        # Look ahead to the first non-blank line; the lines read meanwhile are scored like any others.
        for raw in it:
            pending.append(raw)
            if raw.strip():
                fmt = detect_format(raw)
                break
        else:
            fmt = "text"
    chunk = pending + list(islice(it, max(chunk_lines - len(pending), 0)))
    while chunk:
        parsed = []
        for raw in chunk:
            line_no += 1
            parsed.append((line_no, *_parse(raw, line_no, fmt)))
        texts = [text for _, _, text, err in parsed if text is not None and err is None]
        preds = iter(scorer.score(texts)) if texts else iter(())
        for n, rid, _text, err in parsed:
            yield {"id": rid, "line": n, "error": err} if err is not None else _record(rid, next(preds))
        chunk = list(islice(it, chunk_lines))


@dataclass(frozen=True)
class ScoreCounts:
    scored: int  # lines with a prediction
    errors: int  # lines with an error record


def write_scores(
    lines: Iterable[bytes], out: IO[str], scorer: Scorer, fmt: Format = "auto", chunk_lines: int = 512
) -> ScoreCounts:
    """``score_lines`` written to ``out`` as JSONL (flushed), with the counts a summary line reports."""
    scored = errors = 0
    for record in score_lines(lines, scorer, fmt, chunk_lines):
        errors += "error" in record
        scored += "error" not in record
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    out.flush()
    return ScoreCounts(scored, errors)
