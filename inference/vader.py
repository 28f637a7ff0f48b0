"""VADER (lexicon + rules) behind the scoring contract: the lower anchor every benchmark shows.

Label: VADER's own thresholds on the compound score (>= 0.05 positive, <= -0.05 negative, else neutral).
Score: the compound score itself. Probabilities are built so that both hold exactly:
    P(neutral)  = u = (1 - |c|) * (1 + T) / (3 * (1 - T))          with T = 0.05, c = compound
    P(positive) = (1 - u + c) / 2,   P(negative) = (1 - u - c) / 2
so P(pos) - P(neg) = c, the three sum to 1, neutral is the argmax exactly when |c| < T (at |c| = T positive or
negative ties neutral and the label follows VADER's >=), and a maximal |c| = 1 gives a one-hot distribution.
"""

from __future__ import annotations

import threading

import numpy as np

from sentimon.inference.bundle import LABELS
from sentimon.inference.prediction import Prediction, Scorer, check_texts

THRESHOLD = 0.05  # VADER's documented neutral band


def compound_to_probs(compound: np.ndarray) -> np.ndarray:
    c = np.clip(np.asarray(compound, dtype=np.float64), -1.0, 1.0)
    neutral = (1.0 - np.abs(c)) * (1.0 + THRESHOLD) / (3.0 * (1.0 - THRESHOLD))
    by_label = {"positive": (1.0 - neutral + c) / 2.0, "negative": (1.0 - neutral - c) / 2.0, "neutral": neutral}
    return np.stack([by_label[label] for label in LABELS], axis=1).clip(0.0, 1.0)


class VaderScorer(Scorer):
    kind = "lexicon"

    def __init__(self) -> None:
        from importlib.metadata import version

        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self.name = "vader"
        self.version = version("vaderSentiment")
        self._analyzer = SentimentIntensityAnalyzer()
        # polarity_scores only reads the lexicon, but it is pure Python: a lock costs nothing and guards
        # against any state a future vaderSentiment release might keep.
        self._lock = threading.Lock()

    def compounds(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            return np.array([self._analyzer.polarity_scores(t)["compound"] for t in texts], dtype=np.float64)

    def score_probs(self, texts: list[str]) -> np.ndarray:
        return compound_to_probs(self.compounds(check_texts(texts))).reshape(len(texts), len(LABELS))

    def score(self, texts: list[str]) -> list[Prediction]:
        # Label and score straight from the compound score, so ties at |c| = T follow VADER's >=.
        compounds = self.compounds(check_texts(texts))
        probs = compound_to_probs(compounds)
        return [
            Prediction(
                label=vader_label(c), score=float(c), probs={k: float(p) for k, p in zip(LABELS, row, strict=True)}
            )
            for c, row in zip(compounds, probs, strict=True)
        ]


def vader_label(compound: float) -> str:
    return "positive" if compound >= THRESHOLD else "negative" if compound <= -THRESHOLD else "neutral"
