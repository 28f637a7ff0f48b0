"""The shipped market-text bundle (models/finance): loads by name, scores through `sentimon score --model finance`,
and its manifest records how it was built and what it measured."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sentimon import inference
from sentimon.inference.bundle import read_manifest

FINANCE = Path(__file__).resolve().parents[2] / "models" / "finance"


def test_the_finance_bundle_records_its_build_and_its_finance_figures():
    manifest = read_manifest(FINANCE)  # checksums verified
    assert manifest.name == "finance" and manifest.kind == "transformer"
    assert manifest.build["command"].startswith("sentimon compress --recipe finance")
    assert manifest.build["recipe"]["name"] == "finance"
    assert {"finance_tweets", "plain_facts"} <= set(manifest.metrics)
    assert 0 < manifest.metrics["finance_tweets"]["macro_f1"] <= 1
    assert (FINANCE / "model.onnx").stat().st_size + (FINANCE / "tokenizer.json").stat().st_size <= 25e6


def test_score_model_finance_reads_market_text(tmp_path: Path):
    lines = ["$TSLA shares fell 12% after the earnings miss.", "Revenue grew 20% year over year, beating estimates."]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    done = subprocess.run([sys.executable, "-m", "sentimon", "score", "--model", "finance", "--input",
                           str(tmp_path / "in.txt")], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["label"] for r in out] == ["negative", "positive"]
    assert inference.load("finance").name == "finance"
