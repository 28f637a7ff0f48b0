from __future__ import annotations

from pathlib import Path

import pytest

from sentimon.compression import CompressionError, load_recipe, shipped_recipes
from sentimon.compression.recipe import recipe_from_dict


def test_shipped_recipes_load():
    assert {"default", "finance", "tiny"} <= set(shipped_recipes())
    default = load_recipe()
    assert default.name == "default" and default.max_length == 64
    assert default.ship.bundles == {"pruned_int8": "models/default", "static": "models/static"}
    assert default.data.negation_contrasts > 0
    assert load_recipe("tiny").teacher.model["source"] == "scratch"
    finance = load_recipe("finance")
    assert finance.ship.bundles == {"student_int8": "models/finance"} and finance.teacher.ensemble


def test_missing_recipe_file_names_the_fix(tmp_path: Path):
    with pytest.raises(CompressionError, match="not found"):
        load_recipe(tmp_path / "nope.yaml")


def test_invalid_yaml(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(CompressionError, match="not valid YAML"):
        load_recipe(bad)


def test_unknown_keys_are_errors(tiny_raw):
    with pytest.raises(CompressionError, match="unknown key 'epoch'"):
        recipe_from_dict({**tiny_raw, "epoch": 3})
    with pytest.raises(CompressionError, match=r"unknown key\(s\) \['epoch'\] in student"):
        recipe_from_dict({**tiny_raw, "student": {**tiny_raw["student"], "epoch": 3}})


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("data", "test_fraction", 1.5, "test_fraction"),
        ("student", "temperature", 0, "temperature"),
        ("prune", "heads_fraction", 1.0, "heads_fraction"),
        ("export", "min_label_agreement", 0, "min_label_agreement"),
        ("ship", "bundles", {"teacher_fp32": "x"}, "ship.bundles"),
        ("teacher", "ensemble", [{"epochs": 1}], "teacher.ensemble entry needs either an init"),
        ("teacher", "ensemble", [{"init": {"source": "scratch"}, "model": {"source": "scratch"}}], "either an init"),
        ("teacher", "ensemble", [{"model": {"source": "scratch"}}], "needs frozen_layers >= 1"),
        ("teacher", "ensemble", [{"init": {"source": "scratch"}, "lr": 0}], "teacher.ensemble epochs and lr"),
    ],
)
def test_bad_values_fail_before_work(tiny_raw, section, key, value, message):
    raw = {**tiny_raw, section: {**tiny_raw.get(section, {}), key: value}}
    with pytest.raises(CompressionError, match=message):
        recipe_from_dict(raw)


def test_missing_required_section(tiny_raw):
    raw = dict(tiny_raw)
    del raw["teacher"]
    with pytest.raises(CompressionError, match="missing required key 'teacher'"):
        recipe_from_dict(raw)


def test_fingerprint_tracks_only_its_sections(tiny_raw):
    a = recipe_from_dict(tiny_raw)
    b = recipe_from_dict({**tiny_raw, "prune": {**tiny_raw["prune"], "ffn_fraction": 0.25}})
    assert a.fingerprint("data", "teacher") == b.fingerprint("data", "teacher")
    assert a.fingerprint("prune") != b.fingerprint("prune")
    c = recipe_from_dict({**tiny_raw, "seed": 99})
    assert a.fingerprint("data") != c.fingerprint("data")
