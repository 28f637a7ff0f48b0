"""Candidates and shipped bundles scored by the runtime, metrics per test split, VADER baseline, throughput.

Nothing here builds an ONNX Runtime session or computes a metric itself: an exported graph is wrapped as a
bundle and loaded with ``inference.load`` (so it is scored exactly as it will be served, long-text windows
included), and the numbers come from ``inference.evaluation``, like every other report's.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from sentimon.inference import load
from sentimon.inference.bundle import MODEL_FILE, TOKENIZER_FILE, Manifest, write_manifest
from sentimon.inference.evaluation import NEG, NEU, LabelledSet, metrics
from sentimon.inference.prediction import Scorer

from .data import Example
from .workspace import Workspace

CANDIDATE_VERSION = "candidate"  # manifest version of a wrapped workspace graph (never shipped as is)


def candidate_kind(candidate: str) -> str:
    """The manifest ``kind`` of an exported candidate: ``static`` for the static tier, else ``transformer``."""
    return "static" if candidate.startswith("static") else "transformer"


def candidate_bundle(ws: Workspace, candidate: str, max_length: int) -> Path:
    """Wrap the workspace's exported graph of ``candidate`` as a bundle in ``ws.candidate_bundle(candidate)``.

    The manifest keeps its default inputs (input_ids, attention_mask): the ones ``export.export_onnx`` writes."""
    onnx_file = ws.onnx(candidate).resolve()
    bundle = ws.candidate_bundle(candidate)
    if bundle.exists():
        shutil.rmtree(bundle)  # a re-export replaced the graph: its old checksums must go too
    bundle.mkdir(parents=True)
    (bundle / MODEL_FILE).symlink_to(onnx_file)
    shutil.copy(ws.teacher_tokenizer, bundle / TOKENIZER_FILE)
    kind = candidate_kind(candidate)
    write_manifest(bundle, Manifest(name=candidate, version=CANDIDATE_VERSION, kind=kind, max_length=max_length))
    return bundle


def load_candidate(ws: Workspace, candidate: str, max_length: int, threads: int, max_batch: int) -> Scorer:
    return load(candidate_bundle(ws, candidate, max_length), threads=threads, max_batch=max_batch)


def labelled_sets(tests: dict[str, list[Example]]) -> list[LabelledSet]:
    return [
        LabelledSet(name, [e.text for e in examples], np.array([e.label for e in examples], dtype=np.int64))
        for name, examples in tests.items()
    ]


def timing_texts(sets: list[LabelledSet], n: int, seed: int) -> list[str]:
    """``n`` test texts drawn with replacement: the same mix of lengths every row is timed on."""
    pool = [text for s in sets for text in s.texts]
    rng = np.random.default_rng(seed)
    return [pool[i] for i in rng.choice(len(pool), size=n, replace=True)]


def measure(
    models: Iterable[tuple[str, Scorer, int | None]], sets: list[LabelledSet], texts: list[str]
) -> dict[str, Any]:
    """(name, scorer, size in bytes or None) -> metrics per test split, texts/s on ``texts``, size, the
    behavioural suite's minimum-functionality pass rate; plus the load average around the run. A generator of
    models keeps one loaded at a time."""
    from sentimon.inference.behaviour import run_suite

    results: dict[str, Any] = {}
    load_before = os.getloadavg()[0]
    for name, scorer, size in models:
        results[name] = {
            "metrics": {s.name: split_metrics(scorer.score_probs(s.texts), s.labels) for s in sets},
            "texts_per_s": round(throughput(scorer.score_probs, texts), 1),
            "size_bytes": size,
        }
        # After the timing: the suite is a few hundred short texts, cheap next to the test splits.
        results[name]["mft_pass_rate"] = run_suite(scorer).mft_pass_rate
    # The 1-minute load average brackets the timings: on a shared box the figures are only comparable within a run.
    return {"results": results, "load_avg": [round(load_before, 2), round(os.getloadavg()[0], 2)]}


def split_metrics(probs: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    """``inference.evaluation`` metrics plus the numbers the neutral-calibration targets read: the set's ECE and,
    on gold-neutral rows, the share predicted negative (with their count)."""
    scored = metrics(probs, gold)
    out = scored.flat()
    if scored.ece is not None:
        out["ece"] = scored.ece
    if len(np.unique(gold)) == 1:
        out["single_class"] = 1.0  # a check set (e.g. all neutral): its macro-F1 stays out of the means
    neutral = gold == NEU
    if neutral.any():
        out["neutral_n"] = float(neutral.sum())
        out["neutral_as_negative"] = float((probs[neutral].argmax(axis=1) == NEG).mean())
    return out


def throughput(score: Callable[[list[str]], np.ndarray], texts: list[str], repeats: int = 3) -> float:
    """Texts per second end to end (tokenize + run), best of ``repeats`` after one warm-up pass."""
    score(texts[: min(64, len(texts))])
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        score(texts)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best
