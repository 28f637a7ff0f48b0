"""The ONNX scorer on the tiny bundles: contract, order, long texts, thread safety."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from sentimon import inference
from sentimon.core.settings import load_settings
from sentimon.inference import Prediction

from .conftest import TINY

WORDS = "the stock market today phone airline love great hate terrible flight news we really very".split()


def random_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(0, 60))) for _ in range(n)]


@pytest.mark.parametrize("fixture", ["tiny", "tiny_static"])
def test_contract(request, fixture):
    scorer = request.getfixturevalue(fixture)
    preds = scorer.score(["I love this, great phone!", "terrible flight, I hate it", "the stock market today", ""])
    assert all(isinstance(p, Prediction) for p in preds)
    assert [p.label for p in preds] == ["positive", "negative", "neutral", "neutral"]
    for p in preds:
        assert list(p.probs) == ["negative", "neutral", "positive"]
        assert abs(sum(p.probs.values()) - 1) < 1e-6 and -1 <= p.score <= 1
        assert p.score == pytest.approx(p.probs["positive"] - p.probs["negative"])
    assert scorer.score([]) == []


def test_order_is_preserved_across_batches(tiny):
    texts = random_texts(200)
    one_by_one = np.array([tiny.score_probs([t])[0] for t in texts])
    batched = tiny.score_probs(texts)  # sorted and bucketed internally, several ORT calls
    assert np.allclose(batched, one_by_one, atol=1e-5)


def test_batch_settings_do_not_change_results():
    texts = random_texts(64, seed=1)
    settings = load_settings(inference_threads=1)
    a = inference.load(TINY, settings.inference, max_batch=1, pad_multiple=1).score_probs(texts)
    b = inference.load(TINY, settings.inference, max_batch=64, max_batch_tokens=256, pad_multiple=16).score_probs(texts)
    assert np.allclose(a, b, atol=1e-5)


def test_long_text_is_the_mean_of_its_windows(tiny):
    # max_length 32 = [CLS] + 30 words + [SEP]; 80 words make several overlapping windows.
    text = " ".join(["love"] * 40 + ["hate"] * 40)
    ids, _, owners = tiny.windows([text])
    assert len(ids) > 2 and set(owners) == {0} and all(len(w) <= tiny.max_length for w in ids)
    windows_text = [tiny._tokenizer.decode(w) for w in ids]
    expected = np.mean([tiny.score_probs([w])[0] for w in windows_text], axis=0)
    assert np.allclose(tiny.score_probs([text])[0], expected, atol=1e-5)
    # Nothing is lost to truncation: the last window still sees the end of the text.
    assert "hate" in windows_text[-1] and "love" in windows_text[0]


def test_windows_overlap_by_the_stride():
    settings = load_settings(inference_threads=1)
    scorer = inference.load(TINY, settings.inference, window_stride=10)
    ids, _, _ = scorer.windows([" ".join(f"w{i}" for i in range(60)).replace("w", "love ")])
    first, second = ids[0][1:-1], ids[1][1:-1]  # strip [CLS] / [SEP]
    assert first[-10:] == second[:10]


def test_long_and_short_texts_mixed_keep_order(tiny):
    long_text = " ".join(["terrible"] * 100)
    texts = ["love it", long_text, "great", long_text + " the end", "the news"]
    probs = tiny.score_probs(texts)
    for i, t in enumerate(texts):
        assert np.allclose(probs[i], tiny.score_probs([t])[0], atol=1e-5)


def test_non_string_is_a_clear_error(tiny):
    with pytest.raises(inference.InferenceError, match="must be strings"):
        tiny.score(["fine", None])


def test_concurrent_calls_give_identical_results(tiny):
    batches = [random_texts(40, seed=s) for s in range(8)]
    expected = [tiny.score(b) for b in batches]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(3):
            got = list(pool.map(tiny.score, batches))
            assert got == expected


def test_spin_wait_off_reaches_the_ort_session_and_keeps_results():
    spinning = inference.load(TINY, threads=2)
    quiet = inference.load(TINY, threads=2, spin_wait=False)
    entry = "session.intra_op.allow_spinning"
    assert quiet._session.get_session_options().get_session_config_entry(entry) == "0"
    with pytest.raises(RuntimeError, match="does not have configuration"):  # ORT's default: spinning
        spinning._session.get_session_options().get_session_config_entry(entry)
    texts = ["good", "bad day", "the meeting is at noon"]
    assert np.allclose(quiet.score_probs(texts), spinning.score_probs(texts), atol=1e-6)
