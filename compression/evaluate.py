"""Scoring bundles' ONNX graphs with ONNX Runtime, metrics per test split, VADER baseline, throughput."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from .data import LABELS, Example
from .modeling import load_tokenizer

NEG, NEU, POS = (LABELS.index(n) for n in ("negative", "neutral", "positive"))


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class OrtScorer:
    """tokenizer.json + model.onnx -> probabilities, like the runtime does it (dynamic padding per batch)."""

    def __init__(self, onnx_path: Path, tokenizer_path: Path, max_length: int, threads: int = 2):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
        self.tok: Tokenizer = load_tokenizer(tokenizer_path, max_length)
        self.input_names = [i.name for i in self.session.get_inputs()]

    def logits(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        out = np.zeros((len(texts), 3), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            encs = self.tok.encode_batch(texts[start : start + batch_size])
            width = max(1, max(len(e.ids) for e in encs))
            ids = np.zeros((len(encs), width), dtype=np.int64)
            mask = np.zeros((len(encs), width), dtype=np.int64)
            for i, e in enumerate(encs):
                ids[i, : len(e.ids)] = e.ids
                mask[i, : len(e.ids)] = 1
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self.input_names:
                feeds["token_type_ids"] = np.zeros_like(ids)
            out[start : start + len(encs)] = self.session.run(["logits"], feeds)[0]
        return out

    def probs(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        return softmax(self.logits(texts, batch_size))


def vader_probs(texts: list[str]) -> np.ndarray:
    """VADER as a 3-way scorer with its documented thresholds: compound >= 0.05 positive, <= -0.05 negative.

    The polar side's probability grows with |compound|; in the neutral band P(pos) - P(neg) = 2 * compound,
    so the binary decision (neutral ignored) is compound >= 0 -> positive.
    """
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    out = np.zeros((len(texts), 3), dtype=np.float32)
    for i, text in enumerate(texts):
        c = analyzer.polarity_scores(text)["compound"]
        p = 0.5 + abs(c) / 2
        if c >= 0.05:
            out[i] = (0.0, 1 - p, p)
        elif c <= -0.05:
            out[i] = (p, 1 - p, 0.0)
        else:
            out[i] = (0.25 - c, 0.5, 0.25 + c)
    return out


def metrics(probs: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    """accuracy and macro-F1 over the labels present in gold; binary_accuracy on gold neg/pos rows,
    predicting by P(pos) vs P(neg) (the standard way to score a 3-way model on a binary set)."""
    from sklearn.metrics import f1_score

    pred = probs.argmax(1)
    present = sorted(set(gold.tolist()))
    out = {
        "accuracy": float((pred == gold).mean()),
        "macro_f1": float(f1_score(gold, pred, labels=present, average="macro", zero_division=0)),
        "n": float(len(gold)),
    }
    polar = (gold == NEG) | (gold == POS)
    if polar.any():
        bin_pred = np.where(probs[polar, POS] >= probs[polar, NEG], POS, NEG)
        out["binary_accuracy"] = float((bin_pred == gold[polar]).mean())
    return out


def evaluate(score: Callable[[list[str]], np.ndarray], tests: dict[str, list[Example]]) -> dict[str, dict]:
    results = {}
    for name, examples in tests.items():
        probs = score([e.text for e in examples])
        results[name] = metrics(probs, np.array([e.label for e in examples]))
    return results


def throughput(score: Callable[[list[str]], np.ndarray], texts: list[str], repeats: int = 3) -> float:
    """Texts per second end to end (tokenize + run), best of ``repeats`` after one warm-up pass."""
    score(texts[: min(64, len(texts))])
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        score(texts)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best
