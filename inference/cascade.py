"""Confidence cascade: the static tier scores everything; texts it is unsure of go to the transformer student.

Confidence is the margin between the fast model's top two probabilities. A text with margin < threshold is
re-scored by the accurate model and takes its prediction. The cascade's description is a directory holding
``cascade.json`` (fast and accurate model names or paths, the threshold, and the measured curve it was
picked from), written by ``sentimon/bench/cascade.py --write``; ``inference.load("cascade")`` finds it under models_dir.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sentimon.inference.bundle import read_json_model
from sentimon.inference.prediction import Scorer, margins

CASCADE_FILE = "cascade.json"


class CascadeConfig(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = "cascade"
    version: str
    fast: str  # model name (under models_dir) or a path relative to the cascade dir
    accurate: str
    threshold: float = Field(ge=0.0, le=1.0)
    chosen_by: dict[str, Any] = Field(default_factory=dict)  # rule, command, date, machine, the curve


def read_cascade(cascade_dir: Path) -> CascadeConfig:
    path = Path(cascade_dir) / CASCADE_FILE
    return read_json_model(path, CascadeConfig, "write it with `python -m sentimon.bench.cascade --write`")


def write_cascade(cascade_dir: Path, config: CascadeConfig) -> Path:
    cascade_dir.mkdir(parents=True, exist_ok=True)
    path = cascade_dir / CASCADE_FILE
    path.write_text(json.dumps(config.model_dump(mode="json"), indent=2) + "\n")
    return path


def route(fast_probs: np.ndarray, threshold: float) -> np.ndarray:
    """Indices of the rows the accurate model must score (fast margin below the threshold)."""
    return np.flatnonzero(margins(fast_probs) < threshold) if len(fast_probs) else np.zeros(0, dtype=np.int64)


class CascadeScorer(Scorer):
    kind = "cascade"

    def __init__(
        self, fast: Scorer, accurate: Scorer, threshold: float, name: str = "cascade", version: str = ""
    ) -> None:
        self.fast, self.accurate, self.threshold = fast, accurate, float(threshold)
        self.name = name
        self.version = version or f"{fast.name}@{fast.version}+{accurate.name}@{accurate.version}"
        self._lock = threading.Lock()
        self.scored_total = 0  # texts seen, and how many went to the accurate model (for metrics)
        self.escalated_total = 0

    def score_probs(self, texts: list[str]) -> np.ndarray:
        probs = self.fast.score_probs(texts)
        hard = route(probs, self.threshold)
        if len(hard):
            probs = probs.copy()
            probs[hard] = self.accurate.score_probs([texts[i] for i in hard])
        with self._lock:
            self.scored_total += len(texts)
            self.escalated_total += len(hard)
        return probs
