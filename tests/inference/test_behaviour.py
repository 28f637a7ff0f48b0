"""inference.behaviour: the suite file, case building and grading (with scorers whose answers are known), and
a real run of the shipped suite with the tiny bundle."""

from __future__ import annotations

import numpy as np
import pytest

from sentimon import inference
from sentimon.core.settings import InferenceSettings
from sentimon.inference.behaviour import SUITE_FILE, Suite, build_cases, load_suite, run_suite
from sentimon.inference.options import InferenceError
from sentimon.inference.prediction import Scorer

from .conftest import TINY


class KeywordScorer(Scorer):
    """Positive when a text holds 'good', negative for 'bad', else neutral; 'but' lowers the score by `drop`."""

    name, version, kind = "keywords", "0", "lexicon"

    def __init__(self, drop: float = 0.5) -> None:
        self.drop = drop

    def score_probs(self, texts):
        rows = []
        for t in texts:
            s = (0.8 if "good" in t else -0.8 if "bad" in t else 0.0) - (self.drop if " but" in t.lower() else 0.0)
            s = float(np.clip(s, -0.9, 0.9))
            neu = 1 - abs(s) - 0.05
            rows.append([(1 - neu - s) / 2, neu, (1 - neu + s) / 2])
        return np.array(rows)


def suite(tests: list[dict]) -> Suite:
    return Suite.model_validate({"version": "t", "fillers": {"x": ["a", "b"], "who": ["Ann", "Bob", "Cy"]},
                                 "tests": tests})  # fmt: skip


def test_the_shipped_suite_loads_and_has_a_few_hundred_cases_of_every_kind():
    s = load_suite()
    counts = {t.name: len(build_cases(t, s)) for t in s.tests}
    assert 300 <= sum(counts.values()) <= 1000 and all(counts.values())
    assert {t.type for t in s.tests} == {"mft", "inv", "dir"}
    caps = {t.capability for t in s.tests}
    assert {"negation", "neutral_facts", "emoji", "finance_verbs", "invariance", "direction", "sarcasm"} <= caps
    assert all(not t.counted for t in s.tests if t.capability == "sarcasm")
    # Seeded: the same cases every time.
    assert [c.texts for t in s.tests for c in build_cases(t, s)] == [
        c.texts for t in s.tests for c in build_cases(t, load_suite())
    ]


def test_mft_expectations_label_and_not_label():
    mft = {"type": "mft"}
    s = suite([
        {**mft, "name": "pos", "capability": "c1", "expect": "positive", "templates": ["good {x}", "bad {x}"]},
        {**mft, "name": "notneg", "capability": "c2", "expect": "not_negative", "cases": ["good", "meh", "bad"]},
        {**mft, "name": "sarc", "capability": "s", "expect": "negative", "cases": ["good"], "counted": False},
    ])  # fmt: skip
    report = run_suite(KeywordScorer(), s)
    assert report.pass_rates == {"c1": 0.5, "c2": pytest.approx(2 / 3), "s": 0.0}
    assert report.capabilities["c1"].cases == 4 and report.capabilities["c1"].passed == 2
    assert report.mft_pass_rate == pytest.approx((2 + 2) / (4 + 3))  # the uncounted test stays out
    fails = report.capabilities["c2"].tests[0].failures
    assert fails == [{"text": "bad", "got": "negative -0.80"}]


def test_invariance_groups_vary_only_the_swapped_filler():
    s = suite([{"name": "inv", "capability": "inv", "type": "inv", "swap": "who",
                "templates": ["{who} is good {x}", "{who} says {x}", "{who} is bad, or good"]}])  # fmt: skip
    (test,) = s.tests
    cases = build_cases(test, s)
    assert len(cases) == 2 + 2 + 1 and cases[0].texts == ("Ann is good a", "Bob is good a", "Cy is good a")

    class NameSensitive(KeywordScorer):
        def score_probs(self, texts):
            return super().score_probs([t + (" good" if t.startswith("Cy says") else "") for t in texts])

    assert run_suite(KeywordScorer(), s).pass_rates == {"inv": 1.0}
    report = run_suite(NameSensitive(), s)
    assert report.pass_rates == {"inv": 3 / 5}
    assert report.capabilities["inv"].tests[0].failures[0] == {"text": "Ann says a",
                                                               "got": "neutral / neutral / positive"}  # fmt: skip


def test_direction_pairs_pass_unless_the_score_rises_beyond_the_tolerance():
    s = suite([{"name": "d", "capability": "dir", "type": "dir", "templates": ["good {x}"], "cases": ["bad"],
                "suffixes": [" but", " and"], "tolerance": 0.05}])  # fmt: skip
    assert len(build_cases(s.tests[0], s)) == 3 * 2
    # " but" lowers the score, " and" leaves it: every pair passes.
    assert run_suite(KeywordScorer(), s).pass_rates == {"dir": 1.0}
    # A scorer whose "but" raises the score fails the three " but" pairs (the clipped "bad" rises too).
    assert run_suite(KeywordScorer(drop=-0.5), s).pass_rates == {"dir": 0.5}


def test_bad_suites_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="an mft test needs expect"):
        suite([{"name": "m", "capability": "c", "type": "mft", "cases": ["x"]}])
    with pytest.raises(ValueError, match="expect must be one of"):
        suite([{"name": "m", "capability": "c", "type": "mft", "expect": "happy", "cases": ["x"]}])
    bad = tmp_path / "suite.yaml"
    bad.write_text('version: "1"\nfillers: {}\ntests:\n  - {name: t, capability: c, type: mft, expect: neutral, '
                   'templates: ["{nope} x"]}\n')  # fmt: skip
    with pytest.raises(InferenceError, match=r"unknown filler\(s\) \['nope'\]"):
        load_suite(bad)
    with pytest.raises(InferenceError, match="behaviour suite .*suite.yaml does not exist"):
        load_suite(tmp_path / "missing" / "suite.yaml")
    bad.write_text("version: '1'\ntests: [\n")
    with pytest.raises(InferenceError, match=r"suite.yaml:3:1: behaviour suite is not valid YAML"):
        load_suite(bad)


def test_the_shipped_suite_runs_on_the_tiny_bundle():
    report = run_suite(inference.load(TINY, InferenceSettings(threads=1)))
    d = report.to_dict()
    assert d["model"] == "tiny-transformer 0.1.0" and d["suite_version"] == load_suite().version
    assert 0.0 <= d["mft_pass_rate"] <= 1.0
    assert set(d["capabilities"]) == {t.capability for t in load_suite().tests}
    for cap in d["capabilities"].values():
        assert cap["cases"] == sum(t["cases"] for t in cap["tests"])
        assert all(len(t["failures"]) == min(5, t["cases"] - t["passed"]) for t in cap["tests"])
    # Non-English text never reaches the model: the language check scores it neutral.
    assert d["capabilities"]["unsupported_language"]["pass_rate"] == 1.0
    md = report.to_markdown()
    assert "| negation | mft |" in md and "(not counted)" in md and str(SUITE_FILE.name) not in md
