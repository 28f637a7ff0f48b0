"""Emoji are spelled as words before tokenizing, in scoring and training alike (inference.text)."""

from __future__ import annotations

from pathlib import Path

from sentimon import inference
from sentimon.compression.modeling import encode, load_tokenizer
from sentimon.inference.text import spell_emoji

TINY = Path(__file__).resolve().parents[1] / "assets" / "tiny-bundle"


def test_emoji_become_their_names_and_other_text_is_untouched():
    assert spell_emoji("my phone today 👎👎") == "my phone today  thumbs down  thumbs down "
    assert spell_emoji("I ❤️ it") == "I  red heart  it"
    assert spell_emoji("👍🏽") == " thumbs up medium skin tone "
    for text in ("plain text", "Das ist schön, 20% für €5", "user_name #1 pick 2024", ""):
        assert spell_emoji(text) == text


def test_the_scorer_and_the_trainer_tokenize_the_spelled_text():
    up, down = "today 👍", "today 👎"
    scorer = inference.load(TINY, languages=[])
    (up_ids, down_ids), _, _ = scorer.windows([up, down])
    assert up_ids != down_ids  # before: both emoji were [UNK]
    assert scorer.windows([up])[0] == scorer.windows([spell_emoji(up)])[0]
    tok = load_tokenizer(TINY / "tokenizer.json", 32)
    ids, _ = encode(tok, [down])
    assert ids[0].tolist() == scorer.windows([down])[0][0]
