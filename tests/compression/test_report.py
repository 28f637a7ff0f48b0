"""Re-scoring shipped bundles rewrites their manifest metrics and model cards from the report's own results."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import yaml

from sentimon.compression import pipeline
from sentimon.compression.recipe import RECIPES_DIR, recipe_from_dict
from sentimon.compression.report import rewrite_shipped, shipped_results, write_report
from sentimon.inference import load
from sentimon.inference.bundle import CARD_FILE, MODEL_FILE, TOKENIZER_FILE, read_manifest, sha256_file

from .workspaces import workspace_with_split

ASSETS = Path(__file__).resolve().parents[1] / "assets"


def test_rescoring_rewrites_manifest_and_card_with_the_report_numbers(tmp_path: Path) -> None:
    bundle = tmp_path / "models" / "default"
    shutil.copytree(ASSETS / "tiny-bundle", bundle)
    untouched = {name: sha256_file(bundle / name) for name in (MODEL_FILE, TOKENIZER_FILE)}
    raw = yaml.safe_load((RECIPES_DIR / "tiny.yaml").read_text())
    raw["ship"] = {"bundles": {"student_int8": str(bundle)}, "report_dir": str(tmp_path / "models")}
    recipe = recipe_from_dict(raw)
    workspace_with_split(tmp_path / "cache", recipe, ASSETS / "labelled" / "small.jsonl")

    results, tput = shipped_results(recipe, tmp_path / "cache", say=lambda m: None)
    header = {"recipe": recipe.name, "date": "2030-01-01 00:00 UTC", "machine": "m", "command": "rescore", **tput}
    md, _ = write_report(results, tmp_path / "models", header)
    assert rewrite_shipped(recipe, results, header) == [bundle]

    manifest = read_manifest(bundle)  # validates, checksums included
    assert manifest.metrics == results["student_int8"]["metrics"]
    assert manifest.build["baseline_vader"] == results["vader"]["metrics"]
    assert manifest.build["evaluated"] == {"date": header["date"], "command": "rescore", "host": "m"}
    assert manifest.throughput["texts_per_s"] == results["student_int8"]["texts_per_s"]
    assert manifest.files == untouched
    assert json.loads((bundle / "manifest.json").read_text())["metrics"] == manifest.metrics
    m = manifest.metrics["small"]
    card = (bundle / CARD_FILE).read_text()
    assert f"| small | {m['accuracy']:.3f} | {m['macro_f1']:.3f} | {m['binary_accuracy']:.3f} |" in card
    assert f"{m['accuracy']:.3f} / {m['macro_f1']:.3f} / {m['binary_accuracy']:.3f}" in md.read_text()
    assert "Evaluated 2030-01-01 00:00 UTC with `rescore`" in card
    assert load(bundle).score_probs(["love it"]).shape == (1, 3)


def test_rescoring_reprepares_test_splits_left_by_another_data_section(tmp_path: Path, monkeypatch) -> None:
    raw = yaml.safe_load((RECIPES_DIR / "tiny.yaml").read_text())
    raw["ship"] = {"bundles": {}, "report_dir": str(tmp_path)}
    recipe = recipe_from_dict(raw)
    labelled = ASSETS / "labelled" / "small.jsonl"
    workspace_with_split(tmp_path / "cache", recipe, labelled)
    ran: list[str] = []
    real = pipeline.STAGES[0]
    monkeypatch.setattr(pipeline, "STAGES", (dataclasses.replace(real, run=lambda b: ran.append("data") or {}),
                                             *pipeline.STAGES[1:]))  # fmt: skip
    results, _ = shipped_results(recipe, tmp_path / "cache", say=lambda m: None)
    assert ran == [] and results["vader"]["metrics"]["small"]["n"] == len(labelled.read_text().splitlines())

    raw["seed"] = recipe.seed + 1  # another split of the same sources: the cached one is stale
    reseeded = recipe_from_dict(raw)
    shipped_results(reseeded, tmp_path / "cache", say=lambda m: None)
    assert ran == ["data"]
    marker = json.loads((tmp_path / "cache" / "compress" / recipe.name / "data" / "DONE.json").read_text())
    assert marker["fingerprint"] == reseeded.fingerprint("data")  # stamped: the next re-scoring reuses it
