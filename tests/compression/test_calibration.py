"""Temperature scaling and ECE on synthetic logits whose true temperature is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sentimon.compression import CompressionError
from sentimon.compression.calibration import (
    calibration_report,
    fit_temperature,
    fold_temperature,
    softmax,
)
from sentimon.compression.modeling import StaticClassifier


def _sampled(true_logits: np.ndarray, seed: int = 0) -> np.ndarray:
    """Gold labels drawn from softmax(true_logits): those probabilities are calibrated by construction."""
    rng = np.random.default_rng(seed)
    p = softmax(true_logits)
    return np.array([rng.choice(3, p=row) for row in p])


def test_fit_temperature_recovers_the_overconfidence_factor():
    rng = np.random.default_rng(1)
    true_logits = rng.normal(0, 1.5, size=(4000, 3))
    gold = _sampled(true_logits)
    overconfident = true_logits * 2.5  # a model 2.5x too sure of itself
    t = fit_temperature(overconfident, gold)
    assert 2.1 < t < 2.9
    report = calibration_report(overconfident, gold)
    assert report["ece_after"] < report["ece_before"] / 2 and report["nll_after"] < report["nll_before"]
    assert report["dev_texts"] == 4000


def test_temperature_needs_a_dev_split():
    with pytest.raises(CompressionError, match="dev_fraction"):
        fit_temperature(np.zeros((0, 3)), np.zeros(0, dtype=int))


def test_folding_divides_the_logits_and_keeps_the_argmax():
    torch.manual_seed(0)
    model = StaticClassifier(torch.randn(50, 8))
    ids = torch.randint(0, 50, (6, 5))
    mask = torch.ones_like(ids)
    before = model(ids, mask)
    fold_temperature(model, 2.0)
    after = model(ids, mask)
    assert torch.allclose(after, before / 2.0, atol=1e-6)
    assert torch.equal(after.argmax(-1), before.argmax(-1))
    with pytest.raises(CompressionError, match="no linear output layer"):
        fold_temperature(torch.nn.Sequential(), 2.0)
