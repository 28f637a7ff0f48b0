"""One labelled file through the compression report, the bench worker and a replay gives identical numbers.

All three score through ``inference.load`` and compute metrics with ``inference.evaluation``; the replay runs
the real ``replay()`` loop and stream ``Pipeline`` (an in-memory window store stands in for Redis, which
does not take part in scoring). The polar-only variant checks the binary-set rule in every path.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from sentimon.bench.worker import measure
from sentimon.compression.recipe import RECIPES_DIR, recipe_from_dict
from sentimon.compression.report import shipped_results, write_report
from sentimon.core.settings import load_settings
from sentimon.inference import load
from sentimon.inference.evaluation import Metrics
from sentimon.replay import report as replay_report
from sentimon.replay.run import ModelRun, replay
from sentimon.streams.entities import EntityExtractor
from sentimon.streams.pipeline import Pipeline, RawRecord
from tests.compression.workspaces import workspace_with_split
from tests.streams.test_pipeline import MemoryStore

ASSETS = Path(__file__).resolve().parent / "assets"
LABELLED = ASSETS / "labelled" / "small.jsonl"
TINY = ASSETS / "tiny-bundle"
MODELS = {"vader": "vader", "student_int8": str(TINY)}  # compression candidate name -> model


@pytest.fixture(params=["three_class", "polar_only"])
def labelled(request, tmp_path) -> Path:
    rows = [json.loads(line) for line in LABELLED.read_text().splitlines()]
    if request.param == "polar_only":
        rows = [r for r in rows if r["label"] != "neutral"]
    path = tmp_path / "test_small.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def via_compression_report(labelled: Path, tmp_path: Path) -> dict[str, dict[str, float]]:
    raw = yaml.safe_load((RECIPES_DIR / "tiny.yaml").read_text())
    raw["ship"] = {"bundles": {"student_int8": str(TINY)}, "report_dir": str(tmp_path / "report")}
    recipe = recipe_from_dict(raw)
    workspace_with_split(tmp_path / "cache", recipe, labelled)
    results, tput = shipped_results(recipe, tmp_path / "cache", say=lambda m: None)
    header = {"recipe": recipe.name, "date": "d", "machine": "m", "command": "pytest", **tput}
    md, _ = write_report(results, tmp_path / "report", header)
    m = results["student_int8"]["metrics"]["small"]
    assert f"{m['accuracy']:.3f} / {m['macro_f1']:.3f} / {m['binary_accuracy']:.3f}" in md.read_text()
    return {name: results[name]["metrics"]["small"] for name in MODELS}


def via_bench(labelled: Path) -> dict[str, dict[str, float]]:
    job = {"threads": 1, "timing": False, "splits": [str(labelled)]}
    return {
        name: measure({**job, "row": {"label": name, "kind": "scorer", "ref": ref, "note": ""}})["accuracy"]["small"]
        for name, ref in MODELS.items()
    }


def via_replay(labelled: Path) -> dict[str, dict[str, float]]:
    start_ms = int(time.time() * 1000) - 3_600_000
    records = [
        RawRecord(json.dumps({"id": f"m{i}", **json.loads(line)}).encode(), "raw", 0, i, start_ms + i * 1000)
        for i, line in enumerate(labelled.read_text().splitlines())
    ]
    runs = [
        ModelRun(name, load_settings(), Pipeline(load(ref), MemoryStore(), EntityExtractor({})), alerts=None)
        for name, ref in MODELS.items()
    ]
    stats = replay(records, runs, batch_size=len(records))
    report = replay_report.build(runs, stats, topic="raw")
    return {name: Metrics(**report["models"][name]["accuracy"]).flat() for name in MODELS}


def test_compression_bench_and_replay_publish_identical_numbers(labelled: Path, tmp_path: Path) -> None:
    compression = via_compression_report(labelled, tmp_path)
    bench = via_bench(labelled)
    replayed = via_replay(labelled)
    assert compression == bench == replayed
    rows = len(labelled.read_text().splitlines())
    assert all(m["n"] == rows for m in compression.values())
    polar = "neutral" not in labelled.read_text()
    assert ("f1_neutral" in compression["vader"]) != polar  # the binary rule applied, or not, in every path
