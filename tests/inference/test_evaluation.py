"""inference.evaluation: the metrics every report publishes, the binary-set rule, labelled-file reading."""

from __future__ import annotations

import numpy as np
import pytest

from sentimon.inference import InferenceError, LabelledSet, evaluate, load, metrics, read_labelled
from sentimon.inference.evaluation import _macro_f1, intervals, paired_intervals

from .conftest import TINY

PROBS = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.1, 0.8, 0.1]])


def test_three_class_metrics_match_hand_counts():
    m = metrics(PROBS, [0, 1, 2, 2])
    assert (m.n, m.binary, m.accuracy) == (4, False, 0.75)
    assert m.f1 == pytest.approx({"negative": 1.0, "neutral": 2 / 3, "positive": 2 / 3})
    assert m.macro_f1 == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert m.confusion == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    assert m.binary_accuracy == 1.0  # gold rows 0, 2, 3; row 3 decides positive on the 0.1 tie (>=)


def test_a_set_without_neutral_gold_is_scored_negative_vs_positive():
    m = metrics(PROBS, [0, 2, 2, 2])
    # Neutral is never predicted: row 1 and 3 tie P(pos) = P(neg) and go positive.
    assert (m.binary, m.accuracy, m.binary_accuracy, m.macro_f1) == (True, 1.0, 1.0, 1.0)
    assert set(m.f1) == {"negative", "positive"} and m.confusion[1] == [0, 0, 0]
    assert m.flat() == {"n": 4.0, "accuracy": 1.0, "macro_f1": 1.0, "binary_accuracy": 1.0, "f1_negative": 1.0,
                        "f1_positive": 1.0, "ece": m.ece}  # fmt: skip
    three = metrics(PROBS, [0, 1, 2, 2]).flat()  # gold neutral rows: how many are called negative
    assert (three["neutral_n"], three["neutral_as_negative"]) == (1.0, 0.0)
    assert metrics(PROBS[[0]], [1]).flat()["neutral_as_negative"] == 1.0


def test_bad_inputs_say_what_is_wrong():
    with pytest.raises(InferenceError, match=r"shape \[2, 3\]"):
        metrics(PROBS, [0, 1])
    with pytest.raises(InferenceError, match="at least one"):
        metrics(np.zeros((0, 3)), [])


def test_read_labelled_accepts_names_and_indices_and_names_errors(tmp_path):
    f = tmp_path / "test_x.jsonl"
    f.write_text('{"text": "a", "label": "Positive"}\n{"text": "b", "label": 0}\n\n{"text": "c", "label": "2"}\n')
    data = read_labelled(f)
    assert (data.name, data.labels.tolist(), data.binary) == ("x", [2, 0, 2], True)
    csv = tmp_path / "mine.csv"
    csv.write_text("text,label\nfine,neutral\nbad,negative\n")
    assert read_labelled(csv).labels.tolist() == [1, 0] and not read_labelled(csv).binary
    f.write_text('{"text": "a", "label": "mixed"}\n')
    with pytest.raises(InferenceError, match="label 'mixed'"):
        read_labelled(f)
    f.write_text('{"label": 1}\n')
    with pytest.raises(InferenceError, match="row 1 needs a string 'text'"):
        read_labelled(f)
    with pytest.raises(InferenceError, match="does not exist"):
        read_labelled(tmp_path / "missing.jsonl")


def test_evaluate_scores_through_the_scorer_windows_included():
    scorer = load(TINY)
    data = LabelledSet("s", ["good", "bad " * 100], np.array([2, 0]))  # the second text spans several windows
    assert evaluate(scorer, data) == metrics(scorer.score_probs(data.texts), data.labels)


def _noisy(n: int, accuracy: float, seed: int, gold: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 3, n) if gold is None else gold
    return gold, np.where(rng.random(len(gold)) < accuracy, gold, rng.integers(0, 3, len(gold)))


@pytest.mark.parametrize("binary", [False, True])
def test_bootstrap_intervals_hold_the_point_estimate_and_narrow_with_more_texts(binary):
    gold, pred = _noisy(400, 0.75, seed=1)
    if binary:  # the binary rule: two classes, macro-F1 over negative and positive
        gold, pred = np.where(gold == 1, 2, gold), np.where(pred == 1, 0, pred)
    m = metrics(np.eye(3)[pred], gold)
    got = intervals(gold, pred)
    assert got == intervals(gold, pred)  # seeded: a report is reproducible
    for name, point in (("accuracy", m.accuracy), ("macro_f1", m.macro_f1)):
        low, high = got[name]
        assert low < point < high and high - low < 0.2
        low4, high4 = intervals(np.tile(gold, 4), np.tile(pred, 4))[name]  # four times the texts: half as wide
        assert (high4 - low4) < 0.7 * (high - low)
    # The vectorized macro-F1 the bootstrap resamples is the metrics path's number on the whole set.
    assert _macro_f1(gold, pred, [0, 2] if binary else [0, 1, 2]) == pytest.approx(m.macro_f1)


def test_paired_intervals_tell_a_real_difference_from_luck():
    gold, a = _noisy(600, 0.7, seed=2)
    assert paired_intervals(gold, a, a) == {"accuracy": [0.0, 0.0], "macro_f1": [0.0, 0.0]}
    better = np.where(np.random.default_rng(3).random(len(gold)) < 0.2, gold, a)  # fixes ~20% of a's rows
    low, high = paired_intervals(gold, a, better)["macro_f1"]
    assert 0 < low < high
    assert paired_intervals(gold, better, a)["accuracy"][1] < 0  # the same difference the other way round
    _, luck = _noisy(600, 0.7, seed=4, gold=gold)  # another model as good as a: the interval spans 0
    low, high = paired_intervals(gold, a, luck)["macro_f1"]
    assert low < 0 < high


def test_a_bootstrap_needs_two_texts():
    with pytest.raises(InferenceError, match="at least 2 texts"):
        intervals([1], [1])
