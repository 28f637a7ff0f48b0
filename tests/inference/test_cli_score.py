"""`sentimon score`: JSONL contract, bad lines as error records, plain text, streaming in chunks."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from sentimon.cli import app
from sentimon.inference.jsonl import score_lines
from sentimon.inference.prediction import Scorer

from .conftest import TINY

MAIN = [sys.executable, "-c", "from sentimon.cli import main; main()"]

GOOD = {"id", "label", "score", "probs", "lang"}


def run(args: list[str], stdin: bytes, tmp_path=None):
    result = CliRunner().invoke(app, ["score", *args], input=stdin)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_jsonl_contract_with_bad_lines():
    lines = [
        '{"id": "a", "text": "I love this phone"}',
        "not json at all",
        '{"id": 7}',
        '{"id": 8, "text": 5}',
        "",
        "[1, 2]",
        '{"text": "terrible flight, I hate it"}',
        '{"id": "z", "text": ""}',
    ]
    stdin = ("\n".join(lines) + "\n").encode() + b'{"id": "bin", "text": "\xff\xfe"}\n'
    out = run(["--model", str(TINY)], stdin)
    assert len(out) == len(lines) + 1
    assert set(out[0]) == GOOD and out[0]["id"] == "a" and out[0]["label"] == "positive"
    assert set(out[0]["probs"]) == {"negative", "neutral", "positive"}
    assert out[1] == {"id": None, "line": 2, "error": out[1]["error"], "reason": "invalid_json"}
    assert "invalid JSON" in out[1]["error"]
    assert out[2] == {"id": 7, "line": 3, "error": "missing 'text' field", "reason": "missing_text"}
    assert out[3]["line"] == 4 and "must be a string" in out[3]["error"] and out[3]["reason"] == "wrong_type"
    assert out[4]["line"] == 5 and "empty line" in out[4]["error"] and out[4]["reason"] == "empty_text"
    assert out[5]["line"] == 6 and "JSON object" in out[5]["error"] and out[5]["reason"] == "not_object"
    assert out[6]["id"] == 7 and out[6]["label"] == "negative"  # no id: the line number
    # Empty text: the worker dead-letters it, so score does not make up a sentiment for it.
    assert out[7] == {"id": "z", "line": 8, "error": "'text' is empty or whitespace", "reason": "empty_text"}
    assert out[8]["line"] == 9 and "UTF-8" in out[8]["error"] and out[8]["reason"] == "invalid_utf8"


def test_plain_text_lines_get_line_numbers():
    out = run(["-m", "vader"], b"I love it\n\nterrible, awful day\n")
    assert [r["id"] for r in out] == [1, 2, 3]
    assert [r.get("label") for r in out] == ["positive", None, "negative"]
    assert out[1] == {"id": 2, "line": 2, "error": "blank line: no text to score", "reason": "empty_text"}


def test_files_in_and_out(tmp_path):
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(["great", "hate it"] * 300)))
    result = CliRunner().invoke(app, ["score", "-m", str(TINY), "-i", str(src), "-o", str(dst), "--chunk-lines", "7"])
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in dst.read_text().splitlines()]
    assert [r["id"] for r in out] == list(range(600))
    assert {r["label"] for r in out[::2]} == {"positive"} and {r["label"] for r in out[1::2]} == {"negative"}


def test_missing_input_and_model_are_one_line_errors(tmp_path):
    # Through the real entry point: a UserError becomes one "error:" line and exit code 2, no traceback.
    (tmp_path / "in.txt").write_text("fine\n")
    proc = subprocess.run(
        [*MAIN, "score", "-m", str(tmp_path / "nope"), "-i", str(tmp_path / "in.txt")], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "error:" in proc.stderr and str(tmp_path / "nope") in proc.stderr
    # The input is checked before the model loads: a missing file is named even with a bad model.
    proc = subprocess.run(
        [*MAIN, "score", "-m", str(tmp_path / "nope"), "-i", str(tmp_path / "x")], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr == f"error: cannot read --input {tmp_path / 'x'}: No such file or directory\n"


class CountingScorer(Scorer):
    """Pure fake for the stream logic: records each call's size."""

    name, version, kind = "count", "0", "lexicon"

    def __init__(self):
        self.calls = []

    def score_probs(self, texts):
        self.calls.append(len(texts))
        return np.tile([0.2, 0.3, 0.5], (len(texts), 1))


def test_stream_is_processed_in_chunks_without_reading_ahead():
    consumed = []

    def lines():
        for i in range(10_000):
            consumed.append(i)
            yield f'{{"id": {i}, "text": "t"}}\n'.encode()

    scorer = CountingScorer()
    out = score_lines(lines(), scorer, chunk_lines=100)
    first = next(out)
    assert first["id"] == 0 and len(consumed) <= 101  # only the first chunk was read
    rest = list(out)
    assert len(rest) == 9_999 and scorer.calls == [100] * 100


@pytest.mark.parametrize("first", [b"\n", b"   \n"])
def test_auto_format_skips_leading_blank_lines(first):
    out = list(score_lines([first, b'{"id": 1, "text": "x"}\n'], CountingScorer(), chunk_lines=1))
    assert out[0]["line"] == 1 and "empty line" in out[0]["error"] and out[1]["id"] == 1


def test_bench_passes_accuracy_only_through(monkeypatch):
    import sentimon.bench.run

    seen: list[list[str]] = []
    monkeypatch.setattr(sentimon.bench.run, "main", lambda argv: seen.append(argv))
    result = CliRunner().invoke(app, ["bench", "--accuracy-only", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert seen == [["--threads", "1", "--accuracy-only"]]


def test_write_scores_writes_one_line_per_input_and_counts() -> None:
    import io

    from sentimon import inference
    from sentimon.inference.jsonl import write_scores

    out = io.StringIO()
    counts = write_scores([b'{"id": "a", "text": "great"}\n', b"{oops\n"], out, inference.load("vader"))
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert (counts.scored, counts.errors) == (1, 1)
    assert rows[0]["id"] == "a" and "label" in rows[0] and rows[1]["line"] == 2 and "error" in rows[1]
