"""Text as the models read it: every emoji spelled as its English name.

The bundles' WordPiece vocabulary (BERT uncased) has no emoji, so the tokenizer turned each one into [UNK]: "👍" and
"👎" read the same, and a model learnt nothing from them. Spelled out ("thumbs down"), they are words it knows.
Training (compression) and scoring (the ONNX scorer, the unknown-token drift signal) apply the same function.
"""

from __future__ import annotations

import re

import emoji


def _start_class() -> re.Pattern[str]:
    """A character class of every character an emoji can start with, as ranges (a class of ~1,400 single
    characters above U+FFFF is scanned one by one per character: 50 us per text)."""
    points = sorted({ord(k[0]) for k in emoji.EMOJI_DATA})
    ranges: list[list[int]] = []
    for cp in points:
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    return re.compile(
        "[" + "".join(re.escape(chr(a)) + ("-" + re.escape(chr(b)) if b > a else "") for a, b in ranges) + "]"
    )


# Text without such a character (most of it, accents included) skips the replace.
_EMOJI_START = _start_class()


def _name(chars: str, data: dict) -> str:
    return " " + data["en"].strip(":").replace("_", " ") + " "


def spell_emoji(text: str) -> str:
    """``text`` with each emoji replaced by its name between spaces ("great 👍" -> "great  thumbs up ")."""
    if text.isascii() or not _EMOJI_START.search(text):
        return text
    return emoji.replace_emoji(text, replace=_name)


def spell_emoji_all(texts: list[str]) -> list[str]:
    return [spell_emoji(t) for t in texts]
