"""Scoring labelled texts and the metrics every report publishes: the one place they are computed.

    data = read_labelled("test.jsonl")            # JSONL or CSV with ``text`` and ``label``
    result = evaluate(load("default"), data)      # -> Metrics (accuracy, macro-F1, per-class F1, confusion)

Compression reports, ``sentimon bench``, replay reports and ``sentimon eval`` all go through ``metrics`` so
they publish the same numbers for the same predictions.

The binary rule: a labelled set whose gold labels hold no neutral (e.g. review snippets: fresh / rotten) is
scored as a two-way task. Neutral is then never a prediction: a text is positive when P(positive) >=
P(negative) (equivalently ``Prediction.score >= 0``), else negative, and macro-F1 averages those two classes.
Every set also reports ``binary_accuracy``: the same decision on its gold negative/positive rows only.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sentimon.inference.bundle import LABELS
from sentimon.inference.options import InferenceError
from sentimon.inference.prediction import Scorer

NEG, NEU, POS = (LABELS.index(name) for name in ("negative", "neutral", "positive"))


@dataclass(frozen=True)
class LabelledSet:
    """Texts with gold labels as ``LABELS`` indices."""

    name: str
    texts: list[str]
    labels: np.ndarray

    @property
    def binary(self) -> bool:
        return is_binary(self.labels)


@dataclass(frozen=True)
class Metrics:
    n: int
    binary: bool  # scored as negative vs positive (no neutral gold)
    accuracy: float
    macro_f1: float
    binary_accuracy: float | None  # gold negative/positive rows only; None when there are none
    f1: dict[str, float]  # per class scored: two on a binary set, three otherwise
    confusion: list[list[int]]  # [gold][predicted] counts in LABELS order

    def flat(self) -> dict[str, float]:
        """The numbers a manifest, report table or benchmark JSON stores (label -> float)."""
        out = {"n": float(self.n), "accuracy": self.accuracy, "macro_f1": self.macro_f1}
        if self.binary_accuracy is not None:
            out["binary_accuracy"] = self.binary_accuracy
        return out | {f"f1_{label}": value for label, value in self.f1.items()}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_binary(gold: np.ndarray) -> bool:
    gold = np.asarray(gold)
    return bool(len(gold)) and not (gold == NEU).any()


def predicted_labels(probs: np.ndarray, binary: bool) -> np.ndarray:
    """LABELS indices: the argmax, or on a binary set negative vs positive by the larger probability."""
    probs = np.asarray(probs)
    if binary:
        return np.where(probs[:, POS] >= probs[:, NEG], POS, NEG)
    return probs.argmax(axis=1)


def metrics(probs: np.ndarray, gold: Sequence[int] | np.ndarray) -> Metrics:
    """Metrics of probabilities [n, 3] in LABELS order against gold LABELS indices."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    probs, gold = np.asarray(probs, dtype=np.float64), np.asarray(gold, dtype=np.int64)
    if probs.shape != (len(gold), len(LABELS)):
        raise InferenceError(f"metrics need probabilities of shape [{len(gold)}, {len(LABELS)}], got {probs.shape}")
    if not len(gold):
        raise InferenceError("metrics need at least one labelled text")
    binary = is_binary(gold)
    pred = predicted_labels(probs, binary)
    classes = [NEG, POS] if binary else list(range(len(LABELS)))
    per_class = f1_score(gold, pred, labels=classes, average=None, zero_division=0)
    polar = (gold == NEG) | (gold == POS)
    polar_pred = predicted_labels(probs[polar], binary=True)
    return Metrics(
        n=len(gold),
        binary=binary,
        accuracy=float(accuracy_score(gold, pred)),
        macro_f1=float(np.mean(per_class)),
        binary_accuracy=float(accuracy_score(gold[polar], polar_pred)) if polar.any() else None,
        f1={LABELS[c]: float(v) for c, v in zip(classes, per_class, strict=True)},
        confusion=confusion_matrix(gold, pred, labels=list(range(len(LABELS)))).tolist(),
    )


def evaluate(scorer: Scorer, data: LabelledSet) -> Metrics:
    """Score ``data`` with a loaded scorer (long-text windows and all, as in serving) and compute its metrics."""
    return metrics(scorer.score_probs(data.texts), data.labels)


def label_index(raw: Any) -> int | None:
    """A label name (any case) or its LABELS index, as int or digit string -> the index; None if neither."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if 0 <= raw < len(LABELS) else None
    if isinstance(raw, str):
        text = raw.strip().lower()
        if text in LABELS:
            return LABELS.index(text)
        if text.isdigit() and int(text) < len(LABELS):
            return int(text)
    return None


def read_labelled(path: str | Path, name: str | None = None) -> LabelledSet:
    """A labelled file: JSONL or CSV with ``text`` and ``label`` (a LABELS name or its index) per row.

    ``name`` defaults to the file stem without a ``test_`` prefix (the compression build's split files)."""
    path = Path(path)
    if not path.is_file():
        raise InferenceError(f"labelled file {path} does not exist")
    with open(path, encoding="utf-8", newline="") as f:
        if path.suffix == ".csv":
            rows: list[Any] = list(csv.DictReader(f))
        else:
            rows = []
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError:
                        raise InferenceError(f"{path}:{n} is not valid JSON") from None
    texts, labels = [], []
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not isinstance(row.get("text"), str) or row.get("label") is None:
            raise InferenceError(f"{path}: row {n} needs a string 'text' and a 'label'")
        index = label_index(row["label"])
        if index is None:
            raise InferenceError(f"{path}: row {n}: label {row['label']!r} is not one of {list(LABELS)} or 0..2")
        texts.append(row["text"])
        labels.append(index)
    return LabelledSet(name or path.stem.removeprefix("test_"), texts, np.array(labels, dtype=np.int64))
