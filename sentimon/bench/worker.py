"""Measure one row in this process: ``python -m sentimon.bench.worker < job.json`` prints one JSON result line.

A row runs alone in its own process so its peak RSS is its own (an ORT row never imports torch), and threads
are pinned to the job's count. Throughput: texts/s scoring a text set in calls of each batch size, for at most
``budget_s`` per (set, batch size) and at least one call. Latency: wall time of single calls (batch 1, and the
stream's micro-batch), p50/p95/p99 over up to ``latency_calls`` calls.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from sentimon.inference import LABELS, Scorer

# Texts per transformers.pipeline call: the largest timed batch (so a timed call is one pipeline call), and a
# bound on padding memory when a whole labelled split is scored.
HF_CALL_TEXTS = 128


def hf_tokenizer(folder: Path):
    """The folder's own tokenizer; a `sentimon compress` teacher keeps its tokenizer.json one level up."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    if any((folder / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt")):
        return AutoTokenizer.from_pretrained(folder)
    specials = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]"}
    return PreTrainedTokenizerFast(
        tokenizer_file=str(folder.parent / "tokenizer.json"), model_max_length=512, **specials
    )


class HFPipelineScorer(Scorer):
    """transformers.pipeline on an HF folder behind the scoring contract: the baseline row."""

    kind = "hf-pipeline"

    def __init__(self, folder: str, threads: int) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, pipeline

        torch.set_num_threads(threads)
        model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=3)
        tok = hf_tokenizer(Path(folder))
        self.name, self.version = Path(folder).name, "transformers.pipeline fp32 (torch)"
        self._pipe = pipeline("text-classification", model=model, tokenizer=tok, top_k=None, device=-1)
        id2label = model.config.id2label
        # A build's teacher names its labels; a bare encoder's head says LABEL_i = LABELS[i].
        self._names = {str(id2label[i]): (id2label[i] if id2label[i] in LABELS else LABELS[i]) for i in range(3)}
        self._max_len = min(int(getattr(tok, "model_max_length", 512) or 512), 512)
        self.size_bytes = sum(f.stat().st_size for f in Path(folder).glob("*") if f.suffix in (".safetensors", ".bin"))

    def score_probs(self, texts: list[str]) -> np.ndarray:
        rows: list[Any] = []  # one list of {label, score} per text
        for start in range(0, len(texts), HF_CALL_TEXTS):
            chunk = texts[start : start + HF_CALL_TEXTS]
            rows += self._pipe(chunk, batch_size=len(chunk), truncation=True, max_length=self._max_len)
        by_label = [{self._names[d["label"]]: d["score"] for d in row} for row in rows]
        return np.array([[scores[label] for label in LABELS] for scores in by_label])


def bundle_size(scorer) -> int:
    parts = [scorer.fast, scorer.accurate] if getattr(scorer, "kind", "") == "cascade" else [scorer]
    total = 0
    for p in parts:
        d = getattr(p, "bundle_dir", None)
        if d is not None:
            total += sum((Path(d) / f).resolve().stat().st_size for f in ("model.onnx", "tokenizer.json"))
    return total


def best_rate(score, items: list[str], batch: int, budget_s: float, passes: int) -> float:
    """texts/s of the best of ``passes`` passes (each over the set or budget_s / passes, at least one call).

    On a shared machine other processes steal CPU at random moments; the best pass is the least disturbed."""
    rates = []
    for _ in range(passes):
        done, t0 = 0, time.perf_counter()
        while done < len(items):
            chunk = items[done : done + batch]
            score(chunk)
            done += len(chunk)
            if time.perf_counter() - t0 > budget_s / passes:
                break
        rates.append(done / (time.perf_counter() - t0))
    return max(rates)


def timings(score, texts: dict[str, list[str]], job: dict) -> dict:
    """Throughput per (text set, batch size) and latency percentiles of single calls."""
    score(texts["tweet"][:8])  # warm-up: first-call allocations are not throughput
    result: dict = {"throughput": {}, "latency_ms": {}}
    for set_name, items in texts.items():
        result["throughput"][set_name] = {}
        for bs in job["batch_sizes"]:
            result["throughput"][set_name][str(bs)] = best_rate(score, items, bs, job["budget_s"], job["passes"])
    tweets = texts["tweet"]
    for bs in (1, job["micro_batch"]):
        times, t_end = [], time.perf_counter() + job["budget_s"]
        for k in range(job["latency_calls"]):
            batch = [tweets[(k * bs + j) % len(tweets)] for j in range(bs)]
            t0 = time.perf_counter()
            score(batch)
            times.append((time.perf_counter() - t0) * 1000)
            if time.perf_counter() > t_end and len(times) >= 5:
                break
        p50, p95, p99 = np.percentile(times, [50, 95, 99])
        result["latency_ms"][str(bs)] = {"p50": p50, "p95": p95, "p99": p99, "calls": len(times)}
    return result


def measure(job: dict) -> dict:
    from sentimon.inference.evaluation import evaluate, read_labelled

    threads = job["threads"]
    load_before = os.getloadavg()[0]
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    row = job["row"]
    started = time.perf_counter()
    scorer: Scorer
    if row["kind"] == "hf":
        scorer = HFPipelineScorer(row["ref"], threads)
        size, engine = scorer.size_bytes, scorer.version
    else:
        from sentimon import inference
        from sentimon.core.settings import load_settings

        scorer = inference.load(row["ref"], load_settings().inference, threads=threads, **job.get("options", {}))
        size, engine = bundle_size(scorer), f"{scorer.name} {scorer.version} ({scorer.kind})"
    result: dict = {"row": row, "engine": engine, "load_s": time.perf_counter() - started, "size_bytes": size}
    if job.get("timing", True):
        result |= timings(scorer.score_probs, json.loads(Path(job["texts_file"]).read_text()), job)
    result["accuracy"] = {
        split.name: evaluate(scorer, split).flat() for split in map(read_labelled, job.get("splits") or [])
    }
    result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    # The 1-minute load average around the row: on a shared box it tells how much others competed for the cores.
    result["loadavg"] = [load_before, os.getloadavg()[0]]
    return result


def main() -> None:
    job = json.loads(sys.stdin.read())
    print(json.dumps(measure(job)))


if __name__ == "__main__":
    main()
