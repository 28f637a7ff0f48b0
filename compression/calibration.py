"""Temperature scaling (Guo et al., 2017) on numpy logits; ECE is ``inference.evaluation``'s (one implementation).

A classifier's argmax is unchanged by one temperature T > 0 dividing all logits, so calibrating costs no accuracy;
folding 1/T into the final linear layer (``fold_temperature``) makes the exported graph, the cached soft targets
and every bundle built from them carry the calibrated probabilities.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sentimon.inference.evaluation import expected_calibration_error as ece

from .recipe import CompressionError


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(logits: np.ndarray, gold: np.ndarray) -> float:
    p = softmax(logits)
    return float(-np.log(np.clip(p[np.arange(len(gold)), gold], 1e-12, None)).mean())


def fit_temperature(logits: np.ndarray, gold: np.ndarray) -> float:
    """The T > 0 minimising the negative log-likelihood of softmax(logits / T): golden-section search on log T
    (NLL in T is unimodal for these problems and one scalar needs no optimiser library)."""
    logits, gold = np.asarray(logits, dtype=np.float64), np.asarray(gold, dtype=np.int64)
    if len(gold) == 0:
        raise CompressionError("temperature scaling needs a non-empty dev split (set data.dev_fraction > 0)")
    lo, hi = np.log(0.05), np.log(20.0)
    ratio = (np.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(logits / np.exp(a), gold), nll(logits / np.exp(b), gold)
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(logits / np.exp(a), gold)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(logits / np.exp(b), gold)
    return float(np.exp((lo + hi) / 2))


def calibration_report(logits: np.ndarray, gold: np.ndarray) -> dict[str, Any]:
    """Fit T on (logits, gold) and measure ECE / NLL there before and after: the manifest's calibration record."""
    t = fit_temperature(logits, gold)
    if len(gold) == 0:
        raise CompressionError("calibration needs at least one labelled dev text")
    return {
        "temperature": round(t, 4),
        "dev_texts": int(len(gold)),
        "ece_before": round(ece(softmax(logits), gold), 4),
        "ece_after": round(ece(softmax(logits / t), gold), 4),
        "nll_before": round(nll(logits, gold), 4),
        "nll_after": round(nll(logits / t, gold), 4),
    }


def fold_temperature(model: Any, temperature: float) -> None:
    """Divide the model's output layer by T in place, so its logits are the calibrated ones."""
    import torch

    head = getattr(model, "classifier", None) or getattr(model, "head", None)
    head = getattr(head, "out_proj", head)  # MPNet/RoBERTa heads end in out_proj
    if not isinstance(head, torch.nn.Linear):
        raise CompressionError(f"{type(model).__name__} has no linear output layer to fold a temperature into")
    with torch.no_grad():
        head.weight.div_(temperature)
        if head.bias is not None:
            head.bias.div_(temperature)
