"""Scoring labelled texts and the metrics every report publishes: the one place they are computed.

    data = read_labelled("test.jsonl")            # JSONL or CSV with ``text`` and ``label``
    result = evaluate(load("default"), data)      # -> Metrics (accuracy, macro-F1, per-class F1, confusion)

Compression reports, ``sentimon bench``, replay reports and ``sentimon eval`` all go through ``metrics`` so
they publish the same numbers for the same predictions.

Uncertainty: ``intervals(gold, pred)`` gives bootstrap confidence intervals of accuracy and macro-F1 and
``paired_intervals(gold, pred_a, pred_b)`` of their difference between two models on the same texts (both resample
the texts with SciPy's ``stats.bootstrap``; seeded, so a report is reproducible).

Calibration: ``expected_calibration_error(probs, gold, bins=15)`` and ``reliability(probs, gold, bins=15)`` (the
reliability diagram's bins); ``Metrics.ece`` is the same number for the set's decision (two-way on a binary set).

The binary rule: a labelled set whose gold labels hold no neutral (e.g. review snippets: fresh / rotten) is
scored as a two-way task. Neutral is then never a prediction: a text is positive when P(positive) >=
P(negative) (equivalently ``Prediction.score >= 0``), else negative, and macro-F1 averages those two classes.
Every set also reports ``binary_accuracy``: the same decision on its gold negative/positive rows only.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from sentimon.inference.bundle import LABELS
from sentimon.inference.labels import DROP, LABEL_NAMES, lookup
from sentimon.inference.options import InferenceError
from sentimon.inference.prediction import Scorer

NEG, NEU, POS = (LABELS.index(name) for name in ("negative", "neutral", "positive"))


@dataclass(frozen=True)
class LabelledSet:
    """Texts with gold labels as ``LABELS`` indices."""

    name: str
    texts: list[str]
    labels: np.ndarray
    dropped: dict[str, int] = field(default_factory=dict)  # rows left out: "label irrelevant" -> count

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
    # Defaults: metrics stored before these existed still load.
    precision: dict[str, float] = field(default_factory=dict)  # per class scored
    recall: dict[str, float] = field(default_factory=dict)
    ece: float | None = None  # expected calibration error of the set's decision (15 bins)

    def flat(self) -> dict[str, float]:
        """The numbers a manifest, report table or benchmark JSON stores (label -> float)."""
        out = {"n": float(self.n), "accuracy": self.accuracy, "macro_f1": self.macro_f1}
        if self.binary_accuracy is not None:
            out["binary_accuracy"] = self.binary_accuracy
        out |= {f"f1_{label}": value for label, value in self.f1.items()}
        if self.ece is not None:
            out["ece"] = self.ece
        neutral_n = sum(self.confusion[NEU]) if self.confusion else 0
        if neutral_n and not self.binary:
            # The neutral-calibration check: how often plain (gold-neutral) text is called negative.
            out["neutral_n"] = float(neutral_n)
            out["neutral_as_negative"] = self.confusion[NEU][NEG] / neutral_n
        return out

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
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    probs, gold = np.asarray(probs, dtype=np.float64), np.asarray(gold, dtype=np.int64)
    if probs.shape != (len(gold), len(LABELS)):
        raise InferenceError(f"metrics need probabilities of shape [{len(gold)}, {len(LABELS)}], got {probs.shape}")
    if not len(gold):
        raise InferenceError("metrics need at least one labelled text")
    binary = is_binary(gold)
    pred = predicted_labels(probs, binary)
    classes = [NEG, POS] if binary else list(range(len(LABELS)))
    precision, recall, per_class, _ = precision_recall_fscore_support(
        gold, pred, labels=classes, average=None, zero_division=0
    )
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
        precision={LABELS[c]: float(v) for c, v in zip(classes, precision, strict=True)},
        recall={LABELS[c]: float(v) for c, v in zip(classes, recall, strict=True)},
        ece=expected_calibration_error(*decision_probs(probs, gold, binary)),
    )


# --- calibration ---------------------------------------------------------------------------------------------


def decision_probs(probs: np.ndarray, gold: np.ndarray, binary: bool) -> tuple[np.ndarray, np.ndarray]:
    """The probabilities and gold columns of the decision a set is scored on: [n, 3] and LABELS indices, or on
    a binary set P(negative), P(positive) renormalized and gold 0 / 1 (the two-way decision's confidence)."""
    probs, gold = np.asarray(probs, dtype=np.float64), np.asarray(gold, dtype=np.int64)
    if not binary:
        return probs, gold
    two = probs[:, [NEG, POS]]
    total = two.sum(axis=1, keepdims=True)
    two = np.divide(two, total, out=np.full_like(two, 0.5), where=total > 0)
    return two, (gold == POS).astype(np.int64)


@dataclass(frozen=True)
class Reliability:
    """A reliability diagram's data: equal-width confidence bins on [0, 1]; per bin the row count, the mean
    top-label confidence and the accuracy (None for an empty bin)."""

    edges: list[float]
    counts: list[int]
    confidence: list[float | None]
    accuracy: list[float | None]

    @property
    def ece(self) -> float:
        n = sum(self.counts)
        gaps = [
            c * abs(a - p)
            for c, p, a in zip(self.counts, self.confidence, self.accuracy, strict=True)
            if c and a is not None and p is not None
        ]
        return float(sum(gaps) / n) if n else 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ece": self.ece}


def reliability(probs: np.ndarray, gold: Sequence[int] | np.ndarray, bins: int = 15) -> Reliability:
    """Bin rows [n, k] by top-label confidence; ``gold`` holds column indices. Bins are (lo, hi], the first [0, hi]."""
    probs, gold = np.asarray(probs, dtype=np.float64), np.asarray(gold, dtype=np.int64)
    if probs.ndim != 2 or len(probs) != len(gold):
        raise InferenceError(f"calibration needs probabilities [{len(gold)}, k], got {probs.shape}")
    if bins < 1:
        raise InferenceError(f"calibration needs at least one bin, got {bins}")
    conf = probs.max(axis=1) if len(probs) else np.zeros(0)
    correct = probs.argmax(axis=1) == gold if len(probs) else np.zeros(0, dtype=bool)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    counts, mean_conf, acc = [], [], []
    for b in range(bins):
        members = which == b
        k = int(members.sum())
        counts.append(k)
        mean_conf.append(float(conf[members].mean()) if k else None)
        acc.append(float(correct[members].mean()) if k else None)
    return Reliability([float(e) for e in edges], counts, mean_conf, acc)


def expected_calibration_error(probs: np.ndarray, gold: Sequence[int] | np.ndarray, bins: int = 15) -> float:
    """ECE of the top-label prediction (Guo et al. 2017): sum over equal-width confidence bins of
    |accuracy - mean confidence| weighted by the bin's share of rows. ``probs`` [n, k], ``gold`` column indices."""
    return reliability(probs, gold, bins).ece


# --- uncertainty ---------------------------------------------------------------------------------------------

RESAMPLES = 1000  # bootstrap resamples of the texts
LEVEL = 0.95  # two-sided confidence level of every interval
INTERVAL_METRICS = ("accuracy", "macro_f1")


def _accuracy(gold: np.ndarray, pred: np.ndarray, axis: int = -1) -> np.ndarray:
    return (gold == pred).mean(axis=axis)


def _macro_f1(gold: np.ndarray, pred: np.ndarray, classes: Sequence[int], axis: int = -1) -> np.ndarray:
    """Macro-F1 over ``classes`` along ``axis`` (vectorized over resamples); a class absent from both gold and
    prediction in a resample scores 0, as ``precision_recall_fscore_support(zero_division=0)`` does."""
    f1s = []
    for c in classes:
        g, p = gold == c, pred == c
        tp = (g & p).sum(axis=axis)
        denom = g.sum(axis=axis) + p.sum(axis=axis)
        f1s.append(np.divide(2.0 * tp, denom, out=np.zeros(np.shape(tp)), where=denom > 0))
    return np.mean(f1s, axis=0)


def _metric(name: str, gold: np.ndarray, pred: np.ndarray, classes: Sequence[int], axis: int = -1) -> np.ndarray:
    return _accuracy(gold, pred, axis) if name == "accuracy" else _macro_f1(gold, pred, classes, axis)


def _bootstrap(
    data: tuple[np.ndarray, ...], statistic: Callable[..., np.ndarray], resamples: int, level: float, seed: int
) -> list[float]:
    from scipy import stats

    n = len(data[0])
    if n < 2 or resamples < 1:
        raise InferenceError(f"a bootstrap interval needs at least 2 texts and 1 resample (got {n} and {resamples})")
    res = stats.bootstrap(
        data, statistic, paired=True, vectorized=True, n_resamples=resamples, confidence_level=level,
        method="percentile", batch=max(1, 4_000_000 // n), rng=np.random.default_rng(seed),
    )  # fmt: skip
    low, high = res.confidence_interval
    return [float(low), float(high)]


def _classes(gold: np.ndarray) -> list[int]:
    return [NEG, POS] if is_binary(gold) else list(range(len(LABELS)))


def intervals(
    gold: Sequence[int] | np.ndarray,
    pred: Sequence[int] | np.ndarray,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Bootstrap (percentile) confidence intervals of accuracy and macro-F1: metric -> [low, high]. ``pred`` holds
    LABELS indices as ``predicted_labels`` gives them (on a binary set: negative vs positive)."""
    gold, pred = np.asarray(gold, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    classes = _classes(gold)
    return {
        name: _bootstrap((gold, pred), partial(_metric, name, classes=classes), resamples, level, seed)
        for name in INTERVAL_METRICS
    }


def paired_intervals(
    gold: Sequence[int] | np.ndarray,
    pred_a: Sequence[int] | np.ndarray,
    pred_b: Sequence[int] | np.ndarray,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Confidence intervals of model B minus model A (accuracy, macro-F1) on the same texts, each resample scoring
    both on the same rows: a difference whose interval excludes 0 is unlikely to be luck of the sample."""
    gold = np.asarray(gold, dtype=np.int64)
    a, b = np.asarray(pred_a, dtype=np.int64), np.asarray(pred_b, dtype=np.int64)
    classes = _classes(gold)

    def delta(name: str) -> Callable[..., np.ndarray]:
        def stat(g: np.ndarray, pa: np.ndarray, pb: np.ndarray, axis: int = -1) -> np.ndarray:
            return _metric(name, g, pb, classes, axis) - _metric(name, g, pa, classes, axis)

        return stat

    return {name: _bootstrap((gold, a, b), delta(name), resamples, level, seed) for name in INTERVAL_METRICS}


def evaluate(scorer: Scorer, data: LabelledSet) -> Metrics:
    """Score ``data`` with a loaded scorer (long-text windows and all, as in serving) and compute its metrics."""
    return metrics(scorer.score_probs(data.texts), data.labels)


def gold_label(raw: Any, label_map: dict[str, str] | None = None) -> str | None:
    """A gold label -> a LABELS name, DROP (not a sentiment: "irrelevant", or mapped to drop), or None if
    unknown. Tried in order: ``label_map`` (raw -> label name), the shared label names (``inference.labels``:
    negative / neg / bearish ...), then a LABELS index as int or digit string (0 = negative, 1 = neutral,
    2 = positive: the build's split files)."""
    for table in (label_map or {}, LABEL_NAMES):
        name = lookup(raw, table)
        if name is not None:
            return name if name == DROP or name in LABELS else None
    if isinstance(raw, bool):
        return None
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if isinstance(raw, int | np.integer):
        return LABELS[int(raw)] if 0 <= raw < len(LABELS) else None
    if isinstance(raw, str) and raw.strip().isdigit() and int(raw) < len(LABELS):
        return LABELS[int(raw)]
    return None


def label_index(raw: Any, label_map: dict[str, str] | None = None) -> int | None:
    """A gold label's LABELS index (as ``gold_label`` reads it); None when unknown or not a sentiment."""
    name = gold_label(raw, label_map)
    return LABELS.index(name) if name in LABELS else None


READERS = ".csv, .tsv, .jsonl (.json, .ndjson) or .parquet"


def read_rows(path: Path) -> tuple[list[dict[str, Any]], list[str] | None]:
    """A labelled file's rows as dicts, and its columns (None for JSONL, whose rows each name their own)."""
    kind = path.suffix.lower()
    if kind == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise InferenceError("reading Parquet needs pyarrow: pip install 'sentimon[eval]'") from None
        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises ArrowInvalid / OSError subclasses for a damaged file
            raise InferenceError(f"{path} is not a readable Parquet file ({str(exc).splitlines()[0]})") from None
        return table.to_pylist(), list(table.column_names)
    if kind not in (".csv", ".tsv", ".jsonl", ".json", ".ndjson"):
        raise InferenceError(f"{path}: unsupported file type {kind or '(none)'}; use {READERS}")
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            if kind in (".csv", ".tsv"):
                reader = csv.DictReader(f, delimiter="\t" if kind == ".tsv" else ",")
                return list(reader), list(reader.fieldnames or [])
            rows: list[dict[str, Any]] = []
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InferenceError(f"{path}:{n} is not valid JSON ({exc.msg})") from None
                if not isinstance(row, dict):
                    raise InferenceError(f"{path}:{n} is not a JSON object with 'text' and 'label'")
                rows.append(row)
            return rows, None
    except UnicodeDecodeError as exc:
        raise InferenceError(f"{path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except csv.Error as exc:
        raise InferenceError(f"{path} is not valid CSV ({exc})") from None


def read_labelled(
    path: str | Path,
    name: str | None = None,
    label_map: dict[str, str] | None = None,
    text_column: str = "text",
    label_column: str = "label",
) -> LabelledSet:
    """A labelled file (CSV, TSV, JSONL or Parquet) with a text and a label column. Labels as ``label_index``
    reads them; rows whose label is not a sentiment are left out and counted in ``LabelledSet.dropped``.

    ``name`` defaults to the file stem without a ``test_`` prefix (the compression build's split files).
    Every problem is one InferenceError naming the file and the fix."""
    path = Path(path)
    if not path.is_file():
        raise InferenceError(f"labelled file {path} does not exist" + (" (it is a folder)" if path.is_dir() else ""))
    rows, columns = read_rows(path)
    if columns is not None:
        missing = [c for c in (text_column, label_column) if c not in columns]
        if missing:
            raise InferenceError(
                f"{path} has no column(s) {missing} (columns: {columns}); name them with --text-column / --label-column"
            )
    texts, labels, unknown, dropped = [], [], Counter[str](), Counter[str]()
    for n, row in enumerate(rows, 1):
        text, raw = row.get(text_column), row.get(label_column)
        if not isinstance(text, str) or raw is None or raw == "":
            raise InferenceError(
                f"{path}: row {n} needs a string {text_column!r} and a {label_column!r} (it has {sorted(row)})"
            )
        label = gold_label(raw, label_map)
        if label is None:
            unknown[str(raw)] += 1
        elif label == DROP:
            dropped[f"label {raw}"] += 1
        else:
            texts.append(text)
            labels.append(LABELS.index(label))
    if unknown:
        found = ", ".join(f"{k!r} ({v} row{'s' * (v > 1)})" for k, v in unknown.most_common(8))
        accepted = sorted({*(k for k, v in LABEL_NAMES.items() if v in LABELS), *map(str, range(len(LABELS)))})
        raise InferenceError(
            f"{path}: unknown label{'s' * (len(unknown) > 1)} {found}; accepted: {', '.join(accepted)} "
            "(0 = negative, 1 = neutral, 2 = positive); map others with --label-map RAW=LABEL,..."
        )
    if not texts:
        why = f" (all {sum(dropped.values())} left out: {dict(dropped)})" if dropped else ""
        raise InferenceError(f"{path} has no labelled rows{why}; it needs {text_column!r} and {label_column!r}")
    return LabelledSet(name or path.stem.removeprefix("test_"), texts, np.array(labels, dtype=np.int64), dict(dropped))
