"""What every scorer returns, and the base class every scorer implements (the scoring contract)."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sentimon.inference.bundle import LABELS


@dataclass(frozen=True)
class Prediction:
    """One text's sentiment: ``label`` is the most probable class, ``score`` = P(positive) - P(negative).

    ``lang``: the language identified (ISO 639-1; None when the check is off); ``unsupported``: a language the
    model does not read, so the probabilities are the fixed low-confidence neutral (``inference.language``)."""

    label: str
    score: float
    probs: dict[str, float] = field(hash=False)
    lang: str | None = None
    unsupported: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label, "score": self.score, "probs": dict(self.probs)}
        if self.lang is not None:
            out["lang"] = self.lang
        if self.unsupported:
            out["unsupported"] = True
        return out


def predictions_from_probs(probs: np.ndarray) -> list[Prediction]:
    """Rows of probabilities in ``LABELS`` order -> Predictions (label = argmax, first label wins ties)."""
    probs = np.asarray(probs, dtype=np.float64)
    best = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=int)
    neg, pos = LABELS.index("negative"), LABELS.index("positive")
    return [
        Prediction(
            label=LABELS[int(b)],
            score=float(np.clip(row[pos] - row[neg], -1.0, 1.0)),
            probs={label: float(p) for label, p in zip(LABELS, row, strict=True)},
        )
        for row, b in zip(probs, best, strict=True)
    ]


def check_texts(texts) -> list[str]:
    """A list of strings, or InferenceError naming the offending positions (a bare str is a common slip)."""
    from sentimon.inference.options import InferenceError

    if isinstance(texts, str):
        raise InferenceError("score() takes a list of texts; wrap a single text in a list")
    texts = list(texts)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise InferenceError(f"texts must be strings; items {bad[:5]} are not")
    return texts


def margins(probs: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 probability per row: the cascade's confidence."""
    top2 = np.sort(np.asarray(probs), axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


class Scorer(abc.ABC):
    """A loaded model. ``score`` is thread-safe: one scorer can serve many threads."""

    name: str
    version: str
    kind: str  # "transformer" | "static" | "lexicon" | "cascade"

    @abc.abstractmethod
    def score_probs(self, texts: list[str]) -> np.ndarray:
        """Probabilities [len(texts), 3] in ``inference.LABELS`` order."""

    def score(self, texts: list[str]) -> list[Prediction]:
        """One Prediction per text, in the order given."""
        return predictions_from_probs(self.score_probs(check_texts(texts)))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.version} ({self.kind})>"
