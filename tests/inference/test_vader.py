import math

import numpy as np
import pytest

from sentimon import inference
from sentimon.inference.vader import THRESHOLD, compound_to_probs, vader_label


@pytest.fixture(scope="module")
def vader():
    return inference.load("vader")


def test_contract(vader):
    texts = ["I love this phone, it is great!", "This is the worst airline ever.", "The meeting is at noon.", ""]
    preds = vader.score(texts)
    assert [p.label for p in preds] == ["positive", "negative", "neutral", "neutral"]
    for p in preds:
        assert set(p.probs) == {"negative", "neutral", "positive"}
        assert math.isclose(sum(p.probs.values()), 1.0, abs_tol=1e-9)
        assert -1.0 <= p.score <= 1.0
        assert math.isclose(p.score, p.probs["positive"] - p.probs["negative"], abs_tol=1e-9)
        assert p.label == max(p.probs, key=p.probs.get)
    assert (vader.name, vader.kind) == ("vader", "lexicon") and vader.version


def test_score_is_compound(vader):
    text = "Great results, but the outlook is terrible."
    assert vader.score([text])[0].score == vader.compounds([text])[0]


def test_probs_agree_with_thresholds_everywhere():
    c = np.linspace(-1, 1, 4001)
    probs = compound_to_probs(c)
    assert np.allclose(probs.sum(axis=1), 1.0) and (probs >= 0).all()
    assert np.allclose(probs[:, 2] - probs[:, 0], c)
    interior = np.abs(np.abs(c) - THRESHOLD) > 1e-9  # at exactly |c| = T the label ties with neutral
    argmax = np.array(["negative", "neutral", "positive"])[probs.argmax(axis=1)]
    labels = np.array([vader_label(x) for x in c])
    assert (argmax[interior] == labels[interior]).all()
    assert vader_label(THRESHOLD) == "positive" and vader_label(-THRESHOLD) == "negative"
    assert vader_label(0.049) == "neutral"


def test_bad_input_is_a_clear_error(vader):
    with pytest.raises(inference.InferenceError, match="list of texts"):
        vader.score("one text")
    with pytest.raises(inference.InferenceError, match=r"items \[1\] are not"):
        vader.score(["fine", None])
