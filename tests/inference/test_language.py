"""inference.language: the identification rule, and the gate every loaded scorer gets (worker, score, eval)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sentimon import inference
from sentimon.core.settings import InferenceSettings
from sentimon.inference.jsonl import score_lines
from sentimon.inference.language import UNSUPPORTED_PROBS, LanguageGate, LanguageIdentifier, clean

from .conftest import ASSETS, TINY

ENGLISH = [
    "$TSLA up 5% premarket",
    "$AAPL $MSFT gap up",
    "NVDA beats, raises guidance",
    "Stock closed unchanged.",
    "lol ok",
    "😡😡😡",
    "Jan. WTI oil up $1.25, or 2.1%, to $60.43/bbl",
    "Your first trade for Tuesday, Nov. 19",
    "@jim check https://t.co/abc #stocks",
]
OTHER = {
    "Das ist wirklich schrecklich…": "de",
    "C'est vraiment horrible, je déteste ce produit.": "fr",
    "Questo è davvero fantastico!": "it",
    "Это ужасно": "ru",  # few letters, but Cyrillic: the script alone rules English out
    "これは本当にひどい": "ja",
}


@pytest.fixture(scope="module")
def ident() -> LanguageIdentifier:
    return LanguageIdentifier(["en"], min_confidence=0.9, min_letters=12)


def test_short_finance_text_and_symbols_stay_english(ident):
    for text in ENGLISH:
        guess = ident.identify(text)
        assert (guess.lang, guess.supported) == ("en", True), text
    assert clean("$TSLA @bob #up https://x.co/1 www.y.com go").split() == ["go"]


def test_other_languages_are_named(ident):
    for text, lang in OTHER.items():
        guess = ident.identify(text)
        assert (guess.lang, guess.supported) == (lang, False), text


def test_the_english_test_assets_are_never_called_another_language(ident):
    texts = [json.loads(line)["text"] for line in (ASSETS / "labelled" / "small.jsonl").read_text().splitlines()]
    assert [t for t in texts if not ident.identify(t).supported] == []


def test_settings_choose_languages_and_thresholds():
    assert LanguageIdentifier(["en", "de"]).identify("Das ist wirklich schrecklich…").supported
    # Below the confidence needed, an unsure guess falls back to the first supported language.
    assert LanguageIdentifier(["en"], min_confidence=1.0).identify("Esto es terrible, no me gusta nada.").lang == "en"
    with pytest.raises(inference.InferenceError, match=r"unknown code\(s\) \['xx'\]"):
        LanguageIdentifier(["en", "xx"])
    with pytest.raises(inference.InferenceError, match=r"invalid scoring options: unsupported_language"):
        inference.load(TINY, unsupported_language="drop")


def test_load_gates_every_scorer_and_unsupported_text_never_reaches_the_model():
    texts = ["I love this phone", "Das ist wirklich schrecklich…", "terrible flight, I hate it"]
    gated = inference.load(TINY, InferenceSettings(threads=1))
    plain = inference.load(TINY, InferenceSettings(threads=1), languages=[])
    assert isinstance(gated, LanguageGate) and not isinstance(plain, LanguageGate)
    assert (gated.name, gated.kind, gated.manifest.name) == (plain.name, plain.kind, plain.manifest.name)
    preds = gated.score(texts)
    assert [(p.lang, p.unsupported) for p in preds] == [("en", False), ("de", True), ("en", False)]
    assert preds[1].label == "neutral" and preds[1].score == 0.0
    assert preds[1].probs == dict(zip(inference.LABELS, UNSUPPORTED_PROBS.tolist(), strict=True))
    assert preds[1].to_dict()["lang"] == "de" and preds[1].to_dict()["unsupported"] is True
    assert "unsupported" not in preds[0].to_dict() and "lang" not in plain.score(texts)[0].to_dict()
    want = plain.score_probs(texts)
    got = gated.score_probs(texts)
    assert np.allclose(got[[0, 2]], want[[0, 2]]) and np.allclose(got[1], UNSUPPORTED_PROBS)
    assert np.allclose([list(p.probs.values()) for p in preds], got)  # score() and score_probs() agree


def test_vader_keeps_its_own_labels_behind_the_gate():
    vader = inference.load("vader")
    text = "Great results, but the outlook is terrible."
    assert vader.score([text])[0].score == vader.compounds([text])[0]  # reads through to the VADER scorer


def test_score_output_records_the_language():
    out = list(score_lines([b"I love it\n", "Das ist wirklich schrecklich…\n".encode()], inference.load("vader")))
    assert [(r["lang"], r.get("unsupported", False), r["label"]) for r in out] == [
        ("en", False, "positive"), ("de", True, "neutral")]  # fmt: skip
