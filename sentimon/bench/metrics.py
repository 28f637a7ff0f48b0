"""Accuracy and macro-F1 over label indices (LABELS order); binary splits score negative vs positive only."""

from __future__ import annotations

import numpy as np

from sentimon.inference.bundle import LABELS

NEG, POS = LABELS.index("negative"), LABELS.index("positive")


def predict(probs: np.ndarray, binary: bool) -> np.ndarray:
    """Argmax label index; on a binary split (no neutral gold) the choice is between negative and positive."""
    if binary:
        return np.where(probs[:, POS] >= probs[:, NEG], POS, NEG)
    return probs.argmax(axis=1)


def accuracy_f1(probs: np.ndarray, gold: np.ndarray, binary: bool) -> dict[str, float]:
    pred = predict(np.asarray(probs), binary)
    gold = np.asarray(gold)
    classes = [NEG, POS] if binary else list(range(len(LABELS)))
    f1s = []
    for c in classes:
        tp = np.sum((pred == c) & (gold == c))
        fp = np.sum((pred == c) & (gold != c))
        fn = np.sum((pred != c) & (gold == c))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return {"accuracy": float(np.mean(pred == gold)) if len(gold) else 0.0, "macro_f1": float(np.mean(f1s))}
