"""A build workspace whose data stage holds one labelled file as its only test split (no source download)."""

from __future__ import annotations

import json
from pathlib import Path

from sentimon.compression.data import Example, PreparedData
from sentimon.compression.pipeline import STAGE_NAMES, STAGES, fingerprint_sections
from sentimon.compression.recipe import Recipe
from sentimon.compression.workspace import Workspace
from sentimon.inference.evaluation import read_labelled


def workspace_with_split(cache_dir: Path, recipe: Recipe, labelled: Path, split: str = "small") -> Workspace:
    """``Workspace.default(cache_dir, recipe.name)`` with ``labelled`` as its data stage's one test split, stamped
    with the recipe's data fingerprint as a build would stamp it (so re-scoring reuses it)."""
    ws = Workspace.default(cache_dir, recipe.name)
    ws.stage_dir("data").mkdir(parents=True)
    data = read_labelled(labelled)
    pairs = enumerate(zip(data.texts, data.labels, strict=True))
    examples = [Example(text, int(label), f"g{i}") for i, (text, label) in pairs]
    ws.save_data(PreparedData([], [], {split: examples}, {"tests": {split: {}}}))
    stage = STAGES[STAGE_NAMES.index("data")]
    ws.marker("data").write_text(json.dumps({"fingerprint": recipe.fingerprint(*fingerprint_sections(stage))}))
    return ws
