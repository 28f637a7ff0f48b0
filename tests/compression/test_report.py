"""Re-scoring shipped bundles rewrites their manifest metrics and model cards from the report's own results."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import yaml

from sentimon.compression import pipeline
from sentimon.compression.recipe import RECIPES_DIR, recipe_from_dict
from sentimon.compression.report import (
    mean_metric,
    rewrite_shipped,
    shipped_results,
    targets,
    with_build_teacher,
    write_report,
)
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


def _entry(finance_f1: float, finance_neg: float, facts_neg: float) -> dict:
    return {
        "texts_per_s": 100.0,
        "size_bytes": 1,
        "metrics": {
            "finance_tweets": {"accuracy": 0.9, "macro_f1": finance_f1, "ece": 0.05, "neutral_n": 600.0,
                               "neutral_as_negative": finance_neg},
            "plain_facts": {"accuracy": 0.5, "macro_f1": 0.2, "ece": 0.3, "neutral_n": 40.0,
                            "neutral_as_negative": facts_neg, "single_class": 1.0},
        },
    }  # fmt: skip


def test_finance_and_neutral_targets_read_the_shipped_candidate() -> None:
    results = {"vader": _entry(0.45, 0.2, 0.3), "pruned_int8": _entry(0.81, 0.05, 0.25),
               "student_int8": _entry(0.79, 0.5, 0.5)}  # fmt: skip
    checked = {what: (met, detail) for what, met, detail in targets(results, "pruned_int8")}
    finance = next(v for k, v in checked.items() if "finance tweets" in k and "pruned_int8" in k)
    assert finance == (True, "0.810")
    neutral = next(v for k, v in checked.items() if "neutral texts negative" in k)
    # pooled over 600 neutral finance tweets and 40 plain facts: (30 + 10) / 640
    assert neutral == (True, f"{40 / 640:.1%} of 640")
    assert not next(met for what, met, _ in targets(results, "student_int8") if "finance tweets" in what)
    # an all-neutral check split stays out of the macro-F1 means
    assert mean_metric(results["pruned_int8"], "macro_f1") == 0.81


def test_report_has_the_neutral_and_calibration_table(tmp_path: Path) -> None:
    results = {"vader": _entry(0.45, 0.2, 0.3), "student_int8": _entry(0.81, 0.05, 0.0)}
    fit = {"temperature": 1.7, "dev_texts": 9, "ece_before": 0.1, "ece_after": 0.02, "nll_before": 0.9,
           "nll_after": 0.8}  # fmt: skip
    header = {"recipe": "r", "date": "d", "machine": "m", "command": "c", "batch": 1, "threads": 1, "texts": 1,
              "calibration": {"teacher": fit, "student": None}, "note": "One bundle on the union."}  # fmt: skip
    md, _ = write_report(results, tmp_path, header)
    text = md.read_text()
    assert "One bundle on the union." in text and "## Neutral text and calibration" in text
    assert "- teacher: T = 1.700 on 9 dev texts, ECE 0.1000 -> 0.0200" in text and "- student:" not in text
    assert f"| student int8 | {30 / 640:.3f} (n=640) | 0.050 / 0.050 | 0.000 / 0.300 |" in text


def test_a_reevaluation_repeats_the_build_teacher_row_from_the_manifest(tmp_path: Path) -> None:
    bundle = tmp_path / "default"
    shutil.copytree(ASSETS / "tiny-bundle", bundle)
    assert with_build_teacher({"vader": {}}, bundle) == {"vader": {}}  # no teacher figures: no row
    raw = json.loads((bundle / "manifest.json").read_text())
    raw["teacher"] = {"model": "t", "metrics": {"small": {"accuracy": 0.5, "macro_f1": 0.4}}, "texts_per_s": 98.0}
    (bundle / "manifest.json").write_text(json.dumps(raw))
    got = with_build_teacher({"vader": {}}, bundle)["teacher_build"]
    assert got == {"metrics": {"small": {"accuracy": 0.5, "macro_f1": 0.4}}, "texts_per_s": 98.0, "size_bytes": None}
