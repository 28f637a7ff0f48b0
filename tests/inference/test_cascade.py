"""Cascade routing: the fast tier scores everything; texts under the margin threshold go to the accurate model."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from sentimon import inference
from sentimon.inference import BundleError
from sentimon.inference.cascade import CascadeConfig, CascadeScorer, route, write_cascade
from sentimon.inference.prediction import Scorer, margins

from .conftest import TINY, TINY_STATIC


class Fixed(Scorer):
    """Pure fake: returns preset probabilities per text and remembers what it was asked."""

    kind = "lexicon"

    def __init__(self, name, table):
        self.name, self.version, self.table, self.seen = name, "0", table, []

    def score_probs(self, texts):
        self.seen.append(list(texts))
        return np.array([self.table[t] for t in texts], dtype=np.float64)


FAST = {"sure": [0.05, 0.05, 0.9], "unsure": [0.4, 0.35, 0.25], "edge": [0.5, 0.3, 0.2]}
SLOW = {"sure": [1.0, 0.0, 0.0], "unsure": [0.0, 0.0, 1.0], "edge": [0.0, 1.0, 0.0]}


def test_margins_and_route():
    probs = np.array(list(FAST.values()))
    assert np.allclose(margins(probs), [0.85, 0.05, 0.2])
    assert route(probs, 0.0).tolist() == []
    assert route(probs, 0.1).tolist() == [1]
    assert route(probs, 0.2).tolist() == [1]  # strictly below: a margin equal to the threshold stays
    assert route(probs, 0.5).tolist() == [1, 2]
    assert route(np.zeros((0, 3)), 0.5).tolist() == []


def test_only_unsure_texts_reach_the_accurate_model():
    fast, slow = Fixed("fast", FAST), Fixed("slow", SLOW)
    cascade = CascadeScorer(fast, slow, threshold=0.5)
    preds = cascade.score(["sure", "unsure", "edge", "sure"])
    assert slow.seen == [["unsure", "edge"]]
    assert [p.label for p in preds] == ["positive", "positive", "neutral", "positive"]
    assert preds[0].probs == pytest.approx(dict(zip(inference.LABELS, FAST["sure"], strict=True)))
    assert (cascade.scored_total, cascade.escalated_total) == (4, 2)
    cascade.score(["sure"])
    assert len(slow.seen) == 1  # nothing unsure: the accurate model is not called at all


def cascade_dir(settings, threshold):
    shutil.copytree(TINY_STATIC, settings.inference.models_dir / "static")
    shutil.copytree(TINY, settings.inference.models_dir / "default")
    config = CascadeConfig(version="test", fast="static", accurate="default", threshold=threshold)
    write_cascade(settings.inference.models_dir / "cascade", config)


def test_load_cascade_by_name(settings):
    cascade_dir(settings, 0.3)
    scorer = inference.load("cascade", settings.inference)
    assert scorer.kind == "cascade" and scorer.threshold == 0.3
    assert (scorer.fast.kind, scorer.accurate.kind) == ("static", "transformer")
    texts = ["love it", "the stock market today", "terrible flight", "great but terrible", ""]
    fast, slow = scorer.fast.score_probs(texts), scorer.accurate.score_probs(texts)
    got = scorer.score_probs(texts)
    unsure = margins(fast) < 0.3
    assert np.allclose(got[unsure], slow[unsure]) and np.allclose(got[~unsure], fast[~unsure])
    # The threshold's two ends: 0 is the fast tier alone, 1 sends everything to the student.
    assert np.allclose(inference.load("cascade", settings.inference, threshold=0.0).score_probs(texts), fast)
    assert np.allclose(inference.load("cascade", settings.inference, threshold=1.0).score_probs(texts), slow)


def test_cascade_with_a_missing_member_names_it(settings):
    cascade_dir(settings, 0.3)
    shutil.rmtree(settings.inference.models_dir / "default")
    with pytest.raises(BundleError, match="no model named 'default'"):
        inference.load("cascade", settings.inference)


def test_corrupt_cascade_file(settings):
    cascade_dir(settings, 0.3)
    (settings.inference.models_dir / "cascade" / "cascade.json").write_text('{"version": "x", "fast": "static"}')
    with pytest.raises(BundleError, match=r"cascade.json is invalid: .*accurate"):
        inference.load("cascade", settings.inference)
