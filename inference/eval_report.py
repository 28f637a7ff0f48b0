"""`sentimon eval` as plain functions: score labelled sets with loaded scorers, then render the results as JSON,
Markdown and reliability-diagram PNGs. The numbers come from ``inference.evaluation.metrics`` (the one metrics
path); scoring is ``Scorer.score``, the call the worker makes, language check included.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from sentimon.inference.bundle import LABELS
from sentimon.inference.evaluation import (
    LEVEL,
    RESAMPLES,
    LabelledSet,
    Metrics,
    Reliability,
    decision_probs,
    intervals,
    metrics,
    paired_intervals,
    predicted_labels,
    reliability,
)
from sentimon.inference.prediction import Scorer

BINS = 15  # reliability-diagram bins (Guo et al. 2017 use 15)


@dataclass(frozen=True)
class SetResult:
    """One labelled set scored by one model."""

    data: str  # the set's name
    path: str
    model: str  # "name version"
    metrics: Metrics
    reliability: Reliability
    dropped: dict[str, int] = field(default_factory=dict)  # rows left out of the set (labels that are no sentiment)
    languages: dict[str, int] = field(default_factory=dict)  # identified language -> texts (language check on)
    unsupported: int = 0  # texts in a language the model does not read (scored low-confidence neutral)
    intervals: dict[str, list[float]] = field(default_factory=dict)  # metric -> bootstrap [low, high]
    # The second of two models on a set: metric -> paired bootstrap [low, high] of its difference from the first.
    vs_first: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "data": self.data, "path": self.path, "model": self.model, "metrics": self.metrics.as_dict(),
            "intervals": self.intervals, "reliability": self.reliability.as_dict(), "dropped": self.dropped,
            "languages": self.languages, "unsupported": self.unsupported,
        }  # fmt: skip


def model_label(scorer: Scorer) -> str:
    return f"{scorer.name} {scorer.version}".strip()


def _score(scorer: Scorer, data: LabelledSet, path: str, bins: int) -> tuple[SetResult, np.ndarray]:
    preds = scorer.score(data.texts)
    probs = np.array([[p.probs[label] for label in LABELS] for p in preds], dtype=np.float64)
    m = metrics(probs, data.labels)
    predicted = predicted_labels(probs, m.binary)
    langs = Counter(p.lang for p in preds if p.lang is not None)
    result = SetResult(
        data=data.name,
        path=path,
        model=model_label(scorer),
        metrics=m,
        reliability=reliability(*decision_probs(probs, data.labels, m.binary), bins=bins),
        dropped=dict(data.dropped),
        languages=dict(langs.most_common()),
        unsupported=sum(p.unsupported for p in preds),
        intervals=intervals(data.labels, predicted) if len(data.labels) > 1 else {},
    )
    return result, predicted


def score_sets(scorers: list[Scorer], data: LabelledSet, path: str = "", bins: int = BINS) -> list[SetResult]:
    """Score ``data`` with each scorer as the worker would: metrics, reliability diagram and bootstrap intervals;
    with two scorers the second result also carries the paired intervals of its difference from the first."""
    scored = [_score(scorer, data, path, bins) for scorer in scorers]
    results = [result for result, _ in scored]
    if len(scored) == 2 and len(data.labels) > 1:
        (_, first), (second, predicted) = scored
        results[1] = replace(second, vs_first=paired_intervals(data.labels, first, predicted))
    return results


# --- Markdown ------------------------------------------------------------------------------------------------


def _f(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _ci(interval: list[float] | None, sign: str = "") -> str:
    return "" if not interval else f" [{interval[0]:{sign}.3f}, {interval[1]:{sign}.3f}]"


def summary_rows(results: list[SetResult]) -> list[tuple[str, list[str]]]:
    """(metric, one cell per model) rows for one data set; the last cell a delta when two models are compared.
    Accuracy and macro-F1 carry their bootstrap interval (the delta's: paired, on the same texts)."""
    delta_ci = results[-1].vs_first if len(results) == 2 else {}
    with_ci = {"accuracy": "accuracy", "macro-F1": "macro_f1"}
    rows: list[tuple[str, list[float | None]]] = [
        ("accuracy", [r.metrics.accuracy for r in results]),
        ("macro-F1", [r.metrics.macro_f1 for r in results]),
        ("binary accuracy", [r.metrics.binary_accuracy for r in results]),
        ("ECE", [r.reliability.ece for r in results]),
    ]
    for label in results[0].metrics.f1:
        rows += [
            (f"{label} precision", [r.metrics.precision.get(label) for r in results]),
            (f"{label} recall", [r.metrics.recall.get(label) for r in results]),
            (f"{label} F1", [r.metrics.f1.get(label) for r in results]),
        ]
    out = []
    for name, values in rows:
        key = with_ci.get(name)
        cells = [_f(v) + (_ci(r.intervals.get(key)) if key else "") for v, r in zip(values, results, strict=True)]
        if len(values) == 2:
            a, b = values
            delta = "–" if a is None or b is None else f"{b - a:+.3f}" + (_ci(delta_ci.get(key), "+") if key else "")
            cells.append(delta)
        out.append((name, cells))
    return out


def confusion_lines(result: SetResult) -> list[str]:
    head = "| gold \\ predicted | " + " | ".join(LABELS) + " |"
    lines = [head, "|---" * (len(LABELS) + 1) + "|"]
    lines += [
        f"| {gold} | " + " | ".join(map(str, row)) + " |"
        for gold, row in zip(LABELS, result.metrics.confusion, strict=True)
    ]
    return lines


def notes(result: SetResult) -> list[str]:
    out = [
        f"{result.metrics.n} texts"
        + (", scored negative vs positive (no neutral gold)" if result.metrics.binary else "")
    ]
    if result.intervals:
        out.append(f"[low, high] = {LEVEL:.0%} bootstrap interval over {RESAMPLES:,} resamples of the texts")
    if result.dropped:
        out.append(f"left out: {', '.join(f'{k} ({v})' for k, v in result.dropped.items())}")
    if result.unsupported:
        out.append(f"{result.unsupported} text(s) in a language the model does not read, scored neutral")
    return out


def to_markdown(by_set: dict[str, list[SetResult]], images: dict[tuple[str, str], str] | None = None) -> str:
    """The report: per data set a metric table (models side by side), confusion matrices and diagrams."""
    images = images or {}
    lines = ["# sentimon eval", ""]
    for name, results in by_set.items():
        models = [r.model for r in results]
        lines += [f"## {name}", "", f"`{results[0].path}`: " + "; ".join(notes(results[0])) + ".", ""]
        head = ["metric", *models, *(["Δ"] if len(results) == 2 else [])]
        lines += ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
        lines += [f"| {metric} | " + " | ".join(cells) + " |" for metric, cells in summary_rows(results)]
        for r in results:
            lines += ["", f"Confusion matrix, {r.model}:", "", *confusion_lines(r)]
            if (name, r.model) in images:
                lines += ["", f"![reliability diagram, {r.model}]({images[(name, r.model)]})"]
        lines.append("")
    return "\n".join(lines)


# --- files ---------------------------------------------------------------------------------------------------


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def plot_reliability(results: list[SetResult], path: Path) -> Path:
    """One reliability diagram (accuracy vs confidence per bin, the diagonal = perfect calibration) per model."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    for r in results:
        rel = r.reliability
        points = [(c, a) for c, a in zip(rel.confidence, rel.accuracy, strict=True) if c is not None and a is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", label=f"{r.model} (ECE {rel.ece:.3f})")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy", title=results[0].data)
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(by_set: dict[str, list[SetResult]], out_dir: Path, extra: dict[str, Any] | None = None) -> list[Path]:
    """eval.json, eval.md and one reliability PNG per data set (when matplotlib is installed) under ``out_dir``.
    ``extra`` (e.g. a behaviour report's dict) is stored in eval.json beside the results."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written, images = [], {}
    try:
        import matplotlib  # noqa: F401

        for name, results in by_set.items():
            png = plot_reliability(results, out_dir / f"reliability-{slug(name)}.png")
            written.append(png)
            images.update({(name, r.model): png.name for r in results})
    except ImportError:
        pass  # the caller says that the PNGs need the [eval] extra
    payload: dict[str, Any] = {
        "sets": {name: [r.to_dict() for r in results] for name, results in by_set.items()},
        **(extra or {}),
    }
    deltas = {name: results[-1].vs_first for name, results in by_set.items() if results[-1].vs_first}
    if deltas:  # second model minus first, paired bootstrap on the same texts
        payload["compare_intervals"] = deltas
    (out_dir / "eval.json").write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    (out_dir / "eval.md").write_text(to_markdown(by_set, images))
    return [out_dir / "eval.json", out_dir / "eval.md", *written]
