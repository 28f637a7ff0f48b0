"""`sentimon score` on hostile input, through the real command (`python -m sentimon score`): half emojis,
undecodable bytes, huge lines, empty text, binary files, all-bad files, bad paths; progress only on a terminal."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from sentimon.core.parts import StreamSettings
from sentimon.inference.jsonl import Oversize, read_lines, score_lines
from sentimon.inference.prediction import Scorer
from sentimon.streams import schema

from .conftest import TINY

LIMIT = StreamSettings().max_message_bytes  # the worker's default limit, read where the worker reads it
# A real PNG's first bytes: signature, then the IHDR chunk's length (NUL bytes) and name.
PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00\x1f\xf3\xffa"


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("SENTIMON_")}
    out.update(extra)
    return out


def score(*args: str, stdin: bytes | None = None, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sentimon", "score", *args],
        input=stdin,
        capture_output=True,
        env=env(**extra),
        timeout=120,
    )


def records(proc: subprocess.CompletedProcess) -> list[dict]:
    # Strict UTF-8: an output line with a raw lone surrogate would fail here.
    return [json.loads(line) for line in proc.stdout.decode("utf-8").splitlines()]


def stderr_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return proc.stderr.decode().splitlines()


def test_half_an_emoji_costs_one_line_not_the_file():
    lines = [
        '{"id": "a", "text": "I love this phone"}',
        '{"id": "cut", "text": "great news \\ud83d"}',  # a producer cut the emoji in half
        '{"id": "\\ud83d", "text": "fine"}',  # the id holds it
        '{"id": "k", "text": "ok", "meta": {"\\udca9": 1}}',  # a key holds it
        '{"id": "z", "text": "terrible flight, I hate it"}',
    ]
    proc = score("-m", str(TINY), stdin="\n".join(lines).encode() + b"\n")
    assert proc.returncode == 0, proc.stderr
    out = records(proc)
    assert [r.get("label") for r in out] == ["positive", None, None, None, "negative"]
    assert out[1] == {"id": "cut", "line": 2, "error": out[1]["error"], "reason": "lone_surrogate"}
    assert "lone surrogate" in out[1]["error"]
    assert out[2]["id"] == "\ud83d" and out[2]["reason"] == "lone_surrogate"  # the id comes back as it was
    assert out[3]["id"] == "k" and out[3]["reason"] == "lone_surrogate"
    assert "Traceback" not in proc.stderr.decode()
    assert ": scored 2 line(s), 3 error record(s) (lone_surrogate 3) in " in stderr_lines(proc)[-1]


def test_plain_text_with_undecodable_bytes_costs_only_those_lines():
    # \xed\xa0\xbd is a surrogate encoded as if it were a character (CESU-8): not UTF-8 either.
    stdin = b"I love it\n\xff\xfe broken\nhalf \xed\xa0\xbd emoji\nterrible, awful day\nfine\n"
    proc = score("-m", "vader", "--format", "text", stdin=stdin)
    assert proc.returncode == 0, proc.stderr
    out = records(proc)
    assert [r["id"] for r in out] == [1, 2, 3, 4, 5]
    assert [r.get("reason") for r in out] == [None, "invalid_utf8", "invalid_utf8", None, None]
    assert out[1]["line"] == 2 and "not valid UTF-8" in out[1]["error"]
    assert "(invalid_utf8 2)" in stderr_lines(proc)[-1]


def test_lines_over_the_workers_limit_are_refused_before_scoring():
    big = json.dumps({"id": "big", "text": "great " * (LIMIT // 6 + 1)})
    assert len(big) > LIMIT
    proc = score("-m", "vader", stdin=f'{big}\n{{"id": "ok", "text": "fine day"}}\n'.encode())
    assert proc.returncode == 0, proc.stderr
    out = records(proc)
    assert out[0] == {
        "id": None,
        "line": 1,
        "error": f"line has {len(big)} bytes > limit {LIMIT} (setting stream.max_message_bytes)",
        "reason": "oversize",
    }
    assert out[1]["id"] == "ok" and "label" in out[1]
    assert "(oversize 1)" in stderr_lines(proc)[-1]


def test_the_limit_is_the_workers_setting():
    # 100 bytes exactly passes, 101 does not: the same comparison the worker makes on a record.
    text_100 = json.dumps({"id": "a", "text": "x" * 77})
    text_101 = json.dumps({"id": "b", "text": "x" * 78})
    assert (len(text_100), len(text_101)) == (100, 101)
    worker = [schema.parse_message(t.encode(), fallback_ts_ms=0, now_ms=0, max_bytes=100) for t in (text_100, text_101)]
    assert isinstance(worker[0], schema.Message)
    assert isinstance(worker[1], schema.Rejection) and worker[1].reason == schema.OVERSIZE
    proc = score("-m", "vader", stdin=f"{text_100}\r\n{text_101}\n".encode(), SENTIMON_STREAM__MAX_MESSAGE_BYTES="100")
    out = records(proc)
    assert "label" in out[0] and out[1]["reason"] == "oversize" and "limit 100" in out[1]["error"]
    huge_text = b"word " * 200 + b"\n"  # plain text: the line is the text
    proc = score("-m", "vader", stdin=huge_text + b"short\n", SENTIMON_STREAM__MAX_MESSAGE_BYTES="100")
    out = records(proc)
    assert out[0] == {"id": 1, "line": 1, "error": out[0]["error"], "reason": "oversize"} and "label" in out[1]


class CountingScorer(Scorer):
    """Pure fake for the stream logic: records the texts each call gets; raises or returns NaN on cue."""

    name, version, kind = "count", "0", "lexicon"

    def __init__(self):
        self.texts: list[str] = []

    def score_probs(self, texts):
        self.texts.extend(texts)
        if any("boom" in t for t in texts):
            raise RuntimeError("the model choked")
        return np.array([[np.nan, 0.5, 0.5] if "nan" in t else [0.2, 0.3, 0.5] for t in texts])


def test_an_oversize_line_never_reaches_the_model_nor_memory_whole():
    class Recording(io.BytesIO):
        longest = 0

        def readline(self, size=-1):
            line = super().readline(size)
            Recording.longest = max(Recording.longest, len(line))
            return line

    five_mb = b'{"id": "x", "text": "' + b"a" * 5_000_000 + b'"}'
    stream = Recording(five_mb + b"\n" + b'{"id": "y", "text": "ok"}\n')
    lines = list(read_lines(stream, max_bytes=1000))
    assert isinstance(lines[0], Oversize) and lines[0].n_bytes == len(five_mb) and five_mb.startswith(lines[0].head)
    assert lines[1] == b'{"id": "y", "text": "ok"}\n'
    assert Recording.longest <= 1002  # read in pieces of the limit (+ a line break), never the 5 MB at once
    scorer = CountingScorer()
    out = list(score_lines(lines, scorer, max_bytes=1000))
    assert out[0]["reason"] == "oversize" and out[1]["id"] == "y" and scorer.texts == ["ok"]


def test_a_line_of_exactly_the_limit_is_whole():
    for ending in (b"\n", b"\r\n"):
        lines = list(read_lines(io.BytesIO(b"a" * 10 + ending + b"b\n"), max_bytes=10))
        assert lines == [b"a" * 10 + ending, b"b\n"]
    assert list(read_lines(io.BytesIO(b"b\n" + b"a" * 10), max_bytes=10)) == [b"b\n", b"a" * 10]  # no final break
    assert list(read_lines(io.BytesIO(b"a" * 13 + b"\nb"), max_bytes=10)) == [Oversize(13, b"a" * 12), b"b"]
    out = list(score_lines(read_lines(io.BytesIO(b"a" * 11 + b"\n" + b"a" * 10), 10), CountingScorer(), max_bytes=10))
    assert [r.get("reason") for r in out] == ["oversize", None] and "11 bytes > limit 10" in out[0]["error"]


def test_one_failing_text_costs_its_line_not_the_chunk():
    scorer = CountingScorer()
    lines = [b"good one\n", b"boom\n", b"nan please\n", b"good two\n"]
    out = list(score_lines(lines, scorer, fmt="text"))
    assert [r.get("reason") for r in out] == [None, "scoring_failed", "non_finite_score", None]
    assert "the model choked" in out[1]["error"]
    assert out[3]["label"] == "positive"


def test_json_nan_is_not_passed_through():
    proc = score("-m", "vader", stdin=b'{"id": NaN, "text": "fine"}\n{"id": 1e999, "text": "ok"}\n{"text": "good"}\n')
    out = records(proc)
    assert [r.get("reason") for r in out] == ["non_finite_number", "non_finite_number", None]


@pytest.mark.parametrize(
    ("stdin", "fmt"),
    [
        (b'{"id": "e", "text": ""}\n', "auto"),
        (b'{"id": "e", "text": " \\t\\n "}\n', "auto"),
        (b"\n", "jsonl"),
        (b"   \n", "text"),
    ],
)
def test_empty_text_is_an_error_record_as_in_the_worker(stdin, fmt):
    proc = score("-m", "vader", "--format", fmt, stdin=b'{"id": "g", "text": "good"}\n' + stdin)
    out = records(proc)
    assert out[1]["reason"] == "empty_text" and "label" not in out[1]
    assert proc.returncode == 0 and "(empty_text 1)" in stderr_lines(proc)[-1]


def test_a_binary_file_is_refused_with_one_line(tmp_path):
    png = tmp_path / "logo.png"
    png.write_bytes(PNG_HEAD + bytes(range(256)) * 40)
    for proc in (score("-m", "vader", "-i", str(png)), score("-m", "vader", stdin=Path("/bin/ls").read_bytes())):
        assert proc.returncode == 2 and proc.stdout == b""
        [line] = stderr_lines(proc)
        assert line.startswith("error: ") and "looks binary (a NUL byte at offset" in line
    assert str(png) in stderr_lines(score("-m", "vader", "-i", str(png)))[0]


def test_mostly_undecodable_input_exits_non_zero():
    # No NUL bytes (so not caught up front), but most lines are not UTF-8: a legacy encoding or binary junk.
    stdin = "café\n".encode("latin-1") * 3 + b"fine\n"
    proc = score("-m", "vader", "--format", "text", stdin=stdin)
    assert proc.returncode == 1
    assert len(records(proc)) == 4  # every line still has its record
    assert stderr_lines(proc)[-1] == (
        "error: 3 of 4 lines are not UTF-8: is the input a text file? "
        "Convert it to UTF-8 (e.g. iconv -f latin1 -t utf-8)"
    )


def test_a_file_where_every_line_is_bad_exits_non_zero_with_counts():
    stdin = b'{"id": 1, "text": ""}\n{oops\n{"id": 2}\n{"id": 3, "text": "\\udc00"}\n{"id": 4}\n'
    proc = score("-m", "vader", stdin=stdin)
    assert proc.returncode == 1 and len(records(proc)) == 5
    summary, verdict = stderr_lines(proc)[-2:]
    assert "scored 0 line(s), 5 error record(s)" in summary
    assert verdict == (
        "error: none of the 5 line(s) could be scored: empty_text 1, invalid_json 1, lone_surrogate 1, missing_text 2; "
        "each line's error record says why"
    )


def test_some_bad_lines_exit_zero_with_counts_per_reason():
    proc = score("-m", "vader", stdin=b'{"id": 1, "text": "good"}\n{oops\n{"id": 2, "text": "bad"}\n{"id": 3}\n')
    assert proc.returncode == 0
    [summary] = stderr_lines(proc)  # not a TTY: the summary is all stderr gets, no progress
    assert summary.startswith("vader ") and "scored 2 line(s), 2 error record(s) (invalid_json 1, missing_text 1)" in (
        summary
    )


def test_empty_input_is_not_an_error():
    proc = score("-m", "vader", stdin=b"")
    assert proc.returncode == 0 and proc.stdout == b"" and "scored 0 line(s)" in proc.stderr.decode()


def test_output_paths_are_checked_before_the_model_loads(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("fine\n")
    nope = str(tmp_path / "no-such-model")  # would fail to load: the path errors must come first
    missing = tmp_path / "missing-dir"
    cases = {
        str(missing / "x.jsonl"): f"error: --output directory {missing} does not exist; create it "
        f"(mkdir -p {missing}) or pick another path",
        str(src / "x.jsonl"): f"error: --output directory {src} is not a directory; create it (mkdir -p {src}) or "
        "pick another path",
        str(tmp_path): f"error: --output {tmp_path} is a directory; name a file in it, "
        f"e.g. {tmp_path / 'scores.jsonl'}",
        str(src): f"error: --output {src} is the --input file: writing would erase it; pick another path",
    }
    for output, message in cases.items():
        proc = score("-m", nope, "-i", str(src), "-o", output)
        assert (proc.returncode, stderr_lines(proc)) == (2, [message])
    assert not missing.exists() and src.read_text() == "fine\n"
    proc = score("-m", "vader", "-i", str(tmp_path / "nothing.jsonl"), "-o", str(missing / "x.jsonl"))
    assert stderr_lines(proc) == [f"error: cannot read --input {tmp_path / 'nothing.jsonl'}: No such file or directory"]
    proc = score("-m", "vader", "-i", str(tmp_path))
    assert stderr_lines(proc) == [
        f"error: --input {tmp_path} is a directory; give a JSONL or text file, or '-' for stdin"
    ]


def test_a_closed_pipe_ends_quietly():
    reader = subprocess.Popen(["head", "-n", "1"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert reader.stdin is not None
    proc = subprocess.run(
        [sys.executable, "-m", "sentimon", "score", "-m", "vader", "--chunk-lines", "64"],
        input=b"good\n" * 200_000,
        stdout=reader.stdin,
        stderr=subprocess.PIPE,
        env=env(),
        timeout=120,
    )
    reader.stdin.close()
    reader.wait()
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr.decode()


def test_progress_only_on_a_terminal(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("good day\n" * 3000)
    main_fd, term_fd = pty.openpty()
    seen = bytearray()

    def drain() -> None:  # read while it runs: a full terminal buffer would block the command
        while True:
            try:
                chunk = os.read(main_fd, 65536)
            except OSError:  # the terminal closed: everything was read
                return
            if not chunk:
                return
            seen.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sentimon", "score", "-m", "vader", "-i", str(src), "--chunk-lines", "100"],
        stdout=subprocess.PIPE,
        stderr=term_fd,
        env=env(TERM="xterm", COLUMNS="120"),
    )
    os.close(term_fd)
    stdout, _ = proc.communicate(timeout=120)
    reader.join(timeout=10)
    os.close(main_fd)
    assert proc.returncode == 0 and len(stdout.splitlines()) == 3000
    assert b"scored 3000 line(s), 0 error record(s)" in seen
    # Progress draws "scored N line(s)" while running; the summary alone says "vader ...: scored 3000".
    assert seen.count(b"scored ") > 1, seen[-500:]
