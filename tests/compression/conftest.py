from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

DATA = Path(__file__).parent / "data"


def fixture_sources() -> dict[str, Any]:
    """The checked-in tiny corpora as recipe data sources (3-class CSV, binary JSONL, unlabeled transfer CSV) plus the
    vendored finance tweets and plain-facts check set."""
    return {
        "sources": [
            {"kind": "file", "path": str(DATA / "tiny.csv"), "label_column": "sentiment", "group_column": "id"},
            {"kind": "file", "path": str(DATA / "tiny_binary.jsonl"), "name": "tiny_binary", "text_column": "review",
             "label_column": "verdict", "group_column": "movie",
             "label_map": {"fresh": "positive", "rotten": "negative", "plot": "drop"}},
            # the vendored finance tweets (in the repository, no download): the finance data path end to end
            {"kind": "finance_tweets", "max_train": 400},
        ],
        "transfer": [{"kind": "file", "path": str(DATA / "tiny_transfer.csv"), "text_column": "Text"}],
        "checks": [{"kind": "plain_facts"}],
        "test_fraction": 0.25,
        "dev_fraction": 0.2,
        "max_train_per_source": 300,
        "max_test_per_source": 100,
        "max_dev_per_source": 60,
        "max_transfer": 100,
    }  # fmt: skip


@pytest.fixture
def tiny_raw(tmp_path: Path) -> dict[str, Any]:
    """The shipped tiny recipe, pointed at the fixture data and at bundle folders under tmp_path."""
    raw = yaml.safe_load((Path(__file__).parents[2] / "compression" / "recipes" / "tiny.yaml").read_text())
    raw["data"] = fixture_sources()
    raw["ship"] = {"bundles": {"student_int8": str(tmp_path / "models" / "default"),
                               "static": str(tmp_path / "models" / "static")},
                   "report_dir": str(tmp_path / "models")}  # fmt: skip
    return raw
