"""The whole chain on the tiny recipe + fixture data: bundles the runtime accepts, report, resumable stages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sentimon.compression import STAGES, CompressionError, run
from sentimon.compression.pipeline import STAGE_NAMES
from sentimon.compression.recipe import recipe_from_dict
from sentimon.compression.workspace import Workspace
from sentimon.inference import load
from sentimon.inference.bundle import MODEL_FILE, BundleError, read_manifest

pytestmark = pytest.mark.slow
SPLITS = {"tiny", "tiny_binary", "finance_tweets", "plain_facts"}  # fixture sources, finance tweets, the check set


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    import yaml

    from .conftest import fixture_sources

    tmp = tmp_path_factory.mktemp("tiny")
    raw = yaml.safe_load((Path(__file__).parents[2] / "compression" / "recipes" / "tiny.yaml").read_text())
    raw["data"] = {**fixture_sources(), "negation_contrasts": raw["data"]["negation_contrasts"]}
    raw["ship"] = {"bundles": {"student_int8": str(tmp / "models" / "default"),
                               "static": str(tmp / "models" / "static")},
                   "report_dir": str(tmp / "models")}  # fmt: skip
    recipe = recipe_from_dict(raw)
    said: list[str] = []
    summary = run(recipe, tmp / "cache", tmp / "work", say=said.append, command="pytest tiny")
    return {"tmp": tmp, "recipe": recipe, "summary": summary, "said": said, "raw": raw}


def test_every_stage_ran_and_every_candidate_was_measured(built):
    assert [m for m in built["said"] if m.endswith("running")] == [f"[{s}] running" for s in STAGE_NAMES]
    results = built["summary"]["results"]
    assert set(results) == {"vader", "teacher_fp32", "student_fp32", "student_int8", "pruned_fp32", "pruned_int8",
                            "lowrank_fp32", "lowrank_int8", "static"}  # fmt: skip
    for entry in results.values():
        assert entry["texts_per_s"] > 0 and set(entry["metrics"]) == SPLITS
        assert "binary_accuracy" in entry["metrics"]["tiny_binary"]
        finance = entry["metrics"]["finance_tweets"]
        assert 0 <= finance["neutral_as_negative"] <= 1 and finance["neutral_n"] > 0 and 0 <= finance["ece"] <= 1
        assert entry["metrics"]["plain_facts"]["single_class"] == 1.0
        assert 0 <= entry["mft_pass_rate"] <= 1


def test_teacher_and_students_are_temperature_scaled_on_the_dev_split(built):
    ws = Workspace(built["tmp"] / "work")
    infos = {s: json.loads(ws.marker(s).read_text()) for s in ("teacher", "student", "prune")}
    fits = [infos["teacher"]["calibration"], infos["student"]["calibration"], infos["prune"]["calibration"],
            infos["prune"]["lowrank"]["calibration"]]  # fmt: skip
    dev = sum(len(v) for v in ws.load_data().dev.values())
    for fit in fits:
        assert fit["temperature"] > 0 and fit["dev_texts"] == dev > 0
        assert fit["nll_after"] <= fit["nll_before"] + 1e-6  # T minimises the dev NLL; T = 1 is a candidate
    manifest = read_manifest(built["tmp"] / "models" / "default")
    assert manifest.build["calibration"]["teacher"] == infos["teacher"]["calibration"]
    md = (built["tmp"] / "models" / "REPORT.md").read_text()
    assert "## Neutral text and calibration" in md and "- teacher: T = " in md
    assert "macro-F1 >= 0.80 on held-out finance tweets" in md and "neutral texts negative" in md


def test_the_teacher_ensemble_averages_calibrated_members_into_the_soft_targets(built):
    ws = Workspace(built["tmp"] / "work")
    info = json.loads(ws.marker("teacher").read_text())["ensemble"]
    # tiny.yaml: a copy of the teacher's first layer, and an encoder of its own with its lower layer frozen
    copied, own = info["members"]
    assert copied["architecture"].endswith("1L/32") and "frozen_layers" not in copied
    assert own["architecture"].endswith("2L/32") and own["frozen_layers"] == 1
    assert ws.member_tokenizer(2).is_file() and not ws.member_tokenizer(1).exists()
    for member in (copied, own):
        assert member["calibration"]["temperature"] > 0
    for split in SPLITS:
        for figures in (info["test"][split], info["teacher_test"][split], copied["test"][split], own["test"][split]):
            assert 0 <= figures["accuracy"] <= 1 and 0 <= figures["macro_f1"] <= 1
    md = (built["tmp"] / "models" / "REPORT.md").read_text()
    section = md.split("## Teacher ensemble (the students' soft targets)")[1].split("\n## ")[0]
    assert "| member 2: bert 2L/32 (scratch, lower 1 layer frozen) |" in section
    assert section.count("\n| ") == 5  # header, teacher, two members, the ensemble
    # Soft targets are mean log-probabilities: each row's exp sums to at most 1 (a geometric mean).
    targets = np.load(ws.teacher_logits)
    assert targets.shape == (len(ws.load_data().distill), 3) and (np.exp(targets).sum(1) <= 1 + 1e-5).all()


def test_negation_contrasts_reach_the_teacher_and_the_students(built):
    ws = Workspace(built["tmp"] / "work")
    synthetic = [e for e in ws.load_data().train if e.group.startswith("synthetic:negation:")]
    assert len(synthetic) == built["raw"]["data"]["negation_contrasts"] > 0
    teacher = json.loads(ws.marker("teacher").read_text())
    assert teacher["trained_on"] >= len(synthetic)


def test_report_and_manifest_carry_the_behaviour_suite(built):
    md = (built["tmp"] / "models" / "REPORT.md").read_text()
    assert "## Behaviour" in md and "minimum-functionality pass rate" in md
    evaluated = read_manifest(built["tmp"] / "models" / "default").build["evaluated"]
    assert 0 <= evaluated["behaviour"]["mft_pass_rate"] <= 1 and evaluated["behaviour"]["pass_rates"]
    assert "behaviour" not in read_manifest(built["tmp"] / "models" / "static").build["evaluated"]


def test_every_declared_artifact_was_written(built):
    ws = Workspace(built["tmp"] / "work")
    for stage in STAGES:
        for accessor in stage.writes:
            value = getattr(ws, accessor)
            found = [value] if isinstance(value, Path) else list(value("*").parent.glob(value("*").name))
            assert found and all(p.exists() for p in found), (stage.name, accessor)
    assert ws.onnx("student_int8").is_file() and ws.test_file("tiny_binary").is_file()


def test_bundles_are_valid_and_score_in_the_runtime(built):
    for name, kind in (("default", "transformer"), ("static", "static")):
        path = built["tmp"] / "models" / name
        manifest = read_manifest(path)
        assert manifest.kind == kind and manifest.name == name and manifest.max_length == 32
        assert manifest.inputs == ["input_ids", "attention_mask"] and manifest.labels == [
            "negative",
            "neutral",
            "positive",
        ]
        assert set(manifest.metrics) == SPLITS and manifest.throughput["texts_per_s"] > 0
        assert manifest.build["command"] == "pytest tiny" and manifest.build["recipe"]["name"] == "tiny"
        assert {d.name for d in manifest.data} >= {str(Path(__file__).parent / "data" / "tiny.csv"),
                                                   "finance_tweets:sent_train.csv"}  # fmt: skip
        assert all(len(d.sha256) == 64 for d in manifest.data)
        card = (path / "README.md").read_text()
        assert card.startswith(f"# sentimon model `{name}`") and "synthetic negation contrasts" in card
        probs = load(path).score_probs(["good", "bad " * 100])
        assert probs.shape == (2, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_bundle_loads_in_the_runtime(built):
    from sentimon import inference

    scorer = inference.load(built["tmp"] / "models" / "default")
    preds = scorer.score(["what a great day", "this is awful"])
    assert [p.label in ("negative", "neutral", "positive") for p in preds] == [True, True]
    assert all(-1 <= p.score <= 1 for p in preds)


def test_report_compares_all_candidates(built):
    md = (built["tmp"] / "models" / "REPORT.md").read_text()
    for row in ("VADER (lexicon)", "teacher fp32", "student fp32", "student int8", "pruned int8", "static (fast tier)"):
        assert f"| {row} |" in md
    assert "## Targets" in md and "## INT8 parity" in md and "| MFT pass |" in md
    assert "shipped student_int8 passes >= 90% of the behavioural minimum-functionality tests" in md
    assert (built["tmp"] / "models" / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerun_resumes_and_from_reruns(built):
    said: list[str] = []
    run(built["recipe"], built["tmp"] / "cache", built["tmp"] / "work", say=said.append, command="again")
    assert [m for m in said if m.endswith("running")] == ["[ship] running"]
    said.clear()
    run(built["recipe"], built["tmp"] / "cache", built["tmp"] / "work", say=said.append, restart_from="export")
    assert [m for m in said if m.endswith("running")] == ["[export] running", "[evaluate] running", "[ship] running"]
    with pytest.raises(CompressionError, match="unknown stage"):
        run(built["recipe"], built["tmp"] / "cache", built["tmp"] / "work", say=said.append, restart_from="fit")


def test_changed_section_reruns_only_downstream(built):
    raw = {**built["raw"], "static": {**built["raw"]["static"], "dim": 8}}
    said: list[str] = []
    run(recipe_from_dict(raw), built["tmp"] / "cache", built["tmp"] / "work", say=said.append)
    assert [m for m in said if m.endswith("running")] == [
        "[static] running", "[export] running", "[evaluate] running", "[ship] running"
    ]  # fmt: skip


def test_parity_failure_stops_the_build_before_shipping(built, tmp_path):
    raw = {**built["raw"], "export": {**built["raw"]["export"], "max_prob_diff": 1e-9}}
    raw["ship"] = {"bundles": {"student_int8": str(tmp_path / "never")}}
    with pytest.raises(CompressionError, match="parity check failed for student_int8"):
        run(recipe_from_dict(raw), built["tmp"] / "cache", built["tmp"] / "work", say=lambda m: None)
    assert not (tmp_path / "never").exists()


def test_oversized_bundle_is_refused(built, tmp_path):
    raw = {**built["raw"], "export": {**built["raw"]["export"], "max_bundle_mb": 0.001}}
    raw["ship"] = {"bundles": {"student_int8": str(tmp_path / "big")}}
    with pytest.raises(CompressionError, match="max_bundle_mb"):
        run(recipe_from_dict(raw), built["tmp"] / "cache", built["tmp"] / "work", say=lambda m: None)
    assert not (tmp_path / "big").exists()


def test_cli_models_list_and_show(built):
    from sentimon.cli import app

    models = built["tmp"] / "models"
    runner = CliRunner()
    out = runner.invoke(app, ["models", "list", "--dir", str(models), "--json"])
    assert out.exit_code == 0, out.output
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert rows["default"]["kind"] == "transformer" and rows["static"]["kind"] == "static"
    out = runner.invoke(app, ["models", "show", str(models / "default"), "--json"])
    assert out.exit_code == 0 and json.loads(out.stdout)["name"] == "default"
    out = runner.invoke(app, ["models", "show", str(models / "static")])
    assert out.exit_code == 0 and "tiny_binary" in out.output


def test_cli_show_reports_a_corrupt_bundle(built, tmp_path):
    import shutil

    from sentimon.cli import app

    broken = tmp_path / "broken"
    shutil.copytree(built["tmp"] / "models" / "default", broken)
    (broken / MODEL_FILE).write_bytes(b"not onnx")
    with pytest.raises(BundleError, match="does not match the sha256"):
        read_manifest(broken)
    out = CliRunner().invoke(app, ["models", "show", str(broken)])
    assert out.exit_code != 0 and isinstance(out.exception, BundleError)
    listed = CliRunner().invoke(app, ["models", "list", "--dir", str(tmp_path), "--json"])
    # the listing also names the built-in models (vader): find the broken bundle by its path
    assert listed.exit_code == 0
    entries = [e for e in json.loads(listed.stdout) if e["path"] == str(broken)]
    assert len(entries) == 1
