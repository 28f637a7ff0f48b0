"""`compress`: data -> teacher -> students -> pruning -> export -> quantize -> evaluate -> bundles + report.

Each stage writes into its own folder under the work directory and a DONE.json holding the fingerprint of
the recipe sections it depends on; a rerun skips stages whose fingerprint still matches (resumable builds).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .data import Example, read_jsonl
from .recipe import CompressionError, Recipe

Say = Callable[[str], None]

# Which recipe sections each stage depends on (its own and everything upstream).
STAGES: dict[str, tuple[str, ...]] = {
    "data": ("data",),
    "teacher": ("data", "teacher"),
    "student": ("data", "teacher", "student"),
    "static": ("data", "teacher", "static"),
    "prune": ("data", "teacher", "student", "prune"),
    "export": ("data", "teacher", "student", "static", "prune", "export"),
    "evaluate": ("data", "teacher", "student", "static", "prune", "export"),
}


class Workspace:
    def __init__(self, root: Path, recipe: Recipe):
        self.root = root
        self.recipe = recipe
        root.mkdir(parents=True, exist_ok=True)

    def dir(self, stage: str) -> Path:
        path = self.root / stage
        path.mkdir(parents=True, exist_ok=True)
        return path

    def done(self, stage: str) -> dict[str, Any] | None:
        marker = self.root / stage / "DONE.json"
        if not marker.is_file():
            return None
        info = json.loads(marker.read_text())
        return info if info.get("fingerprint") == self.recipe.fingerprint(*STAGES[stage]) else None

    def finish(self, stage: str, info: dict[str, Any]) -> dict[str, Any]:
        info = {**info, "fingerprint": self.recipe.fingerprint(*STAGES[stage])}
        (self.dir(stage) / "DONE.json").write_text(json.dumps(info, indent=2, default=str))
        return info

    def invalidate(self, stage: str) -> None:
        marker = self.root / stage / "DONE.json"
        if marker.exists():
            marker.unlink()


def _labels(examples: list[Example]) -> np.ndarray:
    return np.array([-1 if e.label is None else e.label for e in examples], dtype=np.int64)


def run(
    recipe: Recipe,
    cache_dir: Path,
    work_dir: Path,
    say: Say = print,
    restart_from: str | None = None,
    command: str = "",
) -> dict[str, Any]:
    """Run (or resume) the whole build; returns a summary with the report and bundle paths."""
    import torch

    torch.set_num_threads(recipe.torch_threads)
    ws = Workspace(work_dir, recipe)
    if restart_from is not None:
        if restart_from not in STAGES:
            raise CompressionError(f"unknown stage {restart_from!r}; stages: {', '.join(STAGES)}")
        for stage in list(STAGES)[list(STAGES).index(restart_from) :]:
            ws.invalidate(stage)
    timings: dict[str, float] = {}

    def stage(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        previous = ws.done(name)
        if previous is not None:
            say(f"[{name}] up to date, reusing {ws.root / name}")
            timings[name] = previous.get("seconds", 0.0)
            return previous
        say(f"[{name}] running")
        started = time.monotonic()
        info = fn()
        info["seconds"] = round(time.monotonic() - started, 1)
        timings[name] = info["seconds"]
        say(f"[{name}] done in {info['seconds']:.0f} s")
        return ws.finish(name, info)

    from . import stages as st

    data = stage("data", lambda: st.data_stage(recipe, cache_dir, ws.dir("data")))
    teacher = stage("teacher", lambda: st.teacher_stage(recipe, cache_dir, ws))
    student = stage("student", lambda: st.student_stage(recipe, cache_dir, ws))
    static = stage("static", lambda: st.static_stage(recipe, ws)) if recipe.static.enabled else None
    pruned = stage("prune", lambda: st.prune_stage(recipe, ws)) if recipe.prune.enabled else None
    exported = stage("export", lambda: st.export_stage(recipe, ws))
    results = stage("evaluate", lambda: st.evaluate_stage(recipe, ws))
    context = {"data": data, "teacher": teacher, "student": student, "static": static, "prune": pruned,
               "export": exported, "timings": timings, "command": command}  # fmt: skip
    from .shipping import ship

    return ship(recipe, ws, results, context, say)


def prepared(ws: Workspace) -> tuple[list[Example], list[Example], dict[str, list[Example]], dict[str, Any]]:
    d = ws.root / "data"
    summary = json.loads((d / "data.json").read_text())
    tests = {name: read_jsonl(d / info["file"]) for name, info in summary["tests"].items()}
    return read_jsonl(d / "train.jsonl"), read_jsonl(d / "transfer.jsonl"), tests, summary
