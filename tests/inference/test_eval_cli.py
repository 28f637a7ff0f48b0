"""`sentimon eval`: a happy path on each file type, --compare and --report, and one clear error (exit 2) per
kind of bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sentimon.cli import app
from sentimon.inference.evaluation import read_labelled

from .conftest import ASSETS, TINY

SMALL = ASSETS / "labelled" / "small.jsonl"
ROWS = [json.loads(line) for line in SMALL.read_text().splitlines()]


def invoke(*args: str):
    return CliRunner().invoke(app, ["eval", *args])


def error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines and lines[0].startswith("error:"), result.output
    return " ".join(lines)  # rich may wrap the one message over several terminal lines


def test_report_with_compare_writes_json_markdown_and_a_reliability_png(tmp_path):
    result = invoke("--data", str(SMALL), "--model", str(TINY), "--compare", "vader", "--report", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "macro-F1" in result.stdout and "ECE" in result.stdout and "Δ" in result.stdout
    payload = json.loads((tmp_path / "eval.json").read_text())
    tiny, vader = payload["sets"]["small"]
    assert (tiny["model"], vader["model"].split()[0]) == ("tiny-transformer 0.1.0", "vader")
    m = tiny["metrics"]
    assert m["n"] == len(ROWS) and set(m["precision"]) == set(m["recall"]) == {"negative", "neutral", "positive"}
    assert sum(map(sum, m["confusion"])) == len(ROWS)
    assert tiny["reliability"]["ece"] == pytest.approx(m["ece"])
    assert tiny["languages"] == {"en": len(ROWS)} and tiny["unsupported"] == 0
    md = (tmp_path / "eval.md").read_text()
    assert "## small" in md and f"{m['macro_f1']:.3f}" in md and "reliability-small.png" in md
    assert (tmp_path / "reliability-small.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # 95% bootstrap intervals: per model around its number, and of the difference on the same texts.
    for name in ("accuracy", "macro_f1"):
        low, high = tiny["intervals"][name]
        assert low <= m[name] <= high
        low, high = payload["compare_intervals"]["small"][name]
        assert low <= vader["metrics"][name] - m[name] <= high
    assert f"{m['macro_f1']:.3f} [{tiny['intervals']['macro_f1'][0]:.3f}, " in result.stdout
    assert "bootstrap interval" in md


def test_two_builds_of_one_bundle_are_told_apart(tmp_path):
    rebuilt = tmp_path / "rebuilt"  # a rebuild beside the shipped bundle: same name and version
    shutil.copytree(TINY, rebuilt)
    result = invoke("--data", str(SMALL), "--model", str(TINY), "--compare", str(rebuilt), "--report", str(tmp_path))
    assert result.exit_code == 0, result.output
    payload = json.loads((tmp_path / "eval.json").read_text())
    a, b = payload["sets"]["small"]
    assert (a["model"], b["model"]) == (f"tiny-transformer 0.1.0 ({TINY})", f"tiny-transformer 0.1.0 ({rebuilt})")
    # The same weights: every resample scores them alike.
    assert payload["compare_intervals"]["small"] == {"accuracy": [0.0, 0.0], "macro_f1": [0.0, 0.0]}
    result = invoke("--data", str(SMALL), "--model", str(TINY), "--compare", str(TINY))
    assert "(--model)" in result.stdout and "(--compare)" in result.stdout


def test_csv_parquet_and_label_map_read_like_jsonl(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    ids = {"negative": "0", "positive": "1", "neutral": "2"}  # a data set's own ids, as finance tweets use
    csv = tmp_path / "ids.csv"
    csv.write_text("sentence,gold\n" + "".join(f'"{r["text"]}",{ids[r["label"]]}\n' for r in ROWS))
    parquet = tmp_path / "names.parquet"
    pq.write_table(pa.table({"text": [r["text"] for r in ROWS], "label": [r["label"] for r in ROWS]}), parquet)
    expected = read_labelled(SMALL).labels.tolist()
    mapped = read_labelled(csv, label_map={"0": "negative", "1": "positive", "2": "neutral"}, text_column="sentence",
                           label_column="gold")  # fmt: skip
    assert mapped.labels.tolist() == expected == read_labelled(parquet).labels.tolist()
    options = ["--label-map", "0=negative,1=positive,2=neutral", "--text-column", "sentence", "--label-column", "gold"]
    result = invoke("--data", str(csv), "--data", str(parquet), "-m", "vader", *options)
    # Same options for both files: the parquet lacks 'sentence', and says so before any scoring.
    assert "no column(s) ['sentence', 'gold']" in error_line(result)
    result = invoke("--data", str(csv), "-m", "vader", *options)
    assert result.exit_code == 0, result.output
    assert "ids (" in result.stdout and "36 texts" in result.stdout


def test_irrelevant_rows_are_left_out_and_counted(tmp_path):
    f = tmp_path / "mixed.jsonl"
    f.write_text('{"text": "great", "label": "bullish"}\n{"text": "meh", "label": "Irrelevant"}\n'
                 '{"text": "awful", "label": "bearish"}\n')  # fmt: skip
    data = read_labelled(f)
    assert (data.labels.tolist(), data.dropped) == ([2, 0], {"label Irrelevant": 1})
    result = invoke("--data", str(f), "-m", "vader")
    assert result.exit_code == 0, result.output
    assert "left out: label Irrelevant (1)" in result.stdout.replace("\n", " ")


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("missing.jsonl", None, "does not exist"),
        ("bad.jsonl", '{"text": "ok", "label": "positive"}\n{"text": \n', "bad.jsonl:2 is not valid JSON"),
        ("latin1.csv", b"text,label\ncaf\xe9,positive\n", "is not UTF-8"),
        ("notes.txt", "text,label\n", "unsupported file type .txt"),
        ("cols.csv", "sentence,sentiment\nhi,positive\n", "no column(s) ['text', 'label'] (columns: ['sentence', "),
        ("row.jsonl", '{"text": "a", "label": "positive"}\n{"label": "neutral"}\n', "row 2 needs a string 'text'"),
        ("labels.csv", "text,label\na,positive\nb,mixed\nc,mixed\nd,7\n",
         "unknown labels 'mixed' (2 rows), '7' (1 row); accepted: 0, 1, 2, bearish, bullish, neg, negative, neu, "),
        ("empty.jsonl", "\n\n", "has no labelled rows"),
        ("header.csv", "text,label\n", "has no labelled rows"),
        ("dropped.jsonl", '{"text": "a", "label": "irrelevant"}\n', "all 1 left out"),
        ("broken.parquet", b"PAR1 not really", "is not a readable Parquet file"),
    ],
)  # fmt: skip
def test_each_bad_input_is_one_clear_error(tmp_path, name, content, expected):
    path: Path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    assert expected in error_line(invoke("--data", str(path), "-m", "vader"))


def test_bad_options_are_clear_errors(tmp_path):
    assert "give --data FILE" in error_line(invoke())
    assert "--label-map '0' is not RAW=LABEL" in error_line(invoke("--data", str(SMALL), "--label-map", "0"))
    assert "no model named 'nope'" in error_line(invoke("--data", str(SMALL), "--model", "nope"))


def test_behaviour_runs_the_suite_and_reports_pass_rates(tmp_path):
    result = invoke("--behaviour", "--model", str(TINY), "--report", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "negation" in result.stdout and "MFT total" in result.stdout
    payload = json.loads((tmp_path / "eval.json").read_text())
    (report,) = payload["behaviour"]
    assert report["model"] == "tiny-transformer 0.1.0" and 0.0 <= report["mft_pass_rate"] <= 1.0
    assert "| negation | mft |" in (tmp_path / "behaviour.md").read_text()


def test_the_installed_command_prints_one_error_line_on_stderr(tmp_path):
    import subprocess
    import sys

    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\n")
    run = subprocess.run([sys.executable, "-c", "from sentimon.cli import main; main()", "eval", "--data", str(empty)],
                         capture_output=True, text=True, timeout=120, env={"COLUMNS": "300", "PATH": ""})  # fmt: skip
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.strip().splitlines() == [f"error: {empty} has no labelled rows; it needs 'text' and 'label'"]
