"""inference.evaluation calibration: ECE and the reliability diagram's bins, by hand counts; the shared label
names and precision/recall in Metrics."""

from __future__ import annotations

import numpy as np
import pytest

from sentimon.inference.evaluation import (
    decision_probs,
    expected_calibration_error,
    gold_label,
    label_index,
    metrics,
    reliability,
)
from sentimon.inference.labels import DEFAULT_LABEL_MAP, DROP, parse_label_map


def test_ece_by_hand():
    # Two rows at confidence 0.9 (one right), two at 0.6 (both right); 10 bins.
    probs = np.array([[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.2, 0.6, 0.2], [0.2, 0.2, 0.6]])
    gold = [0, 1, 1, 2]
    rel = reliability(probs, gold, bins=10)
    assert rel.counts == [0, 0, 0, 0, 0, 2, 0, 0, 2, 0]  # 0.6 in (0.5, 0.6], 0.9 in (0.8, 0.9]
    assert rel.confidence[5] == pytest.approx(0.6) and rel.accuracy[5] == 1.0 and rel.accuracy[8] == 0.5
    assert rel.accuracy[0] is None
    # |1.0 - 0.6| * 2/4 + |0.5 - 0.9| * 2/4
    assert expected_calibration_error(probs, gold, bins=10) == pytest.approx(0.4)
    assert rel.as_dict()["ece"] == pytest.approx(0.4)


def test_a_perfectly_calibrated_set_has_zero_ece_and_one_hot_right_answers_too():
    assert expected_calibration_error(np.eye(3), [0, 1, 2]) == 0.0
    probs = np.array([[0.75, 0.25]] * 4)
    assert expected_calibration_error(probs, [0, 0, 0, 1]) == pytest.approx(0.0)
    assert expected_calibration_error(probs, [1, 1, 1, 1]) == pytest.approx(0.75)


def test_metrics_carry_ece_precision_and_recall_and_binary_sets_use_the_two_way_decision():
    probs = np.array([[0.6, 0.3, 0.1], [0.1, 0.3, 0.6], [0.2, 0.6, 0.2]])
    m = metrics(probs, [0, 2, 1])
    assert m.precision == m.recall == {"negative": 1.0, "neutral": 1.0, "positive": 1.0}
    assert m.ece == pytest.approx(expected_calibration_error(probs, [0, 2, 1]))
    b = metrics(probs, [0, 2, 2])
    two, gold = decision_probs(probs, np.array([0, 2, 2]), binary=True)
    assert np.allclose(two[0], [6 / 7, 1 / 7]) and gold.tolist() == [0, 1, 1] and np.allclose(two[2], [0.5, 0.5])
    assert b.binary and b.ece == pytest.approx(expected_calibration_error(two, gold))
    assert set(b.precision) == {"negative", "positive"}


def test_label_names_shared_with_the_build_and_the_index_rule():
    assert DEFAULT_LABEL_MAP["bearish"] == "negative" and DEFAULT_LABEL_MAP["irrelevant"] == DROP
    assert [label_index(x) for x in ("Positive", "neg", "bullish", 0, "2", 1.0, True, 3, "-1", None)] == [
        2, 0, 2, 0, 2, 1, None, None, None, None]  # fmt: skip
    assert gold_label("irrelevant") == DROP and label_index("irrelevant") is None
    mapping = parse_label_map("0=negative, 1=positive,2=Neutral,3=drop")
    assert [gold_label(x, mapping) for x in ("0", 1, "2", "3")] == ["negative", "positive", "neutral", DROP]
    for bad in ("0", "0=happy", "=negative", " , "):
        with pytest.raises(ValueError):
            parse_label_map(bad)
