"""Pipeline.warm_up: the scorer sees every batch size and text length once before the first record."""

from __future__ import annotations

from sentimon.streams.entities import EntityExtractor
from sentimon.streams.pipeline import Pipeline


class Recorder:
    name, version = "rec", "1"

    def __init__(self, fail: bool = False):
        self.calls: list[list[str]] = []
        self.fail = fail

    def score(self, texts: list[str]) -> list:
        self.calls.append(texts)
        if self.fail:
            raise RuntimeError("cold")
        return []


def test_warm_up_scores_each_size_once_and_only_once():
    scorer = Recorder()
    pipeline = Pipeline(scorer, store=None, extractor=EntityExtractor())  # type: ignore[arg-type]
    assert pipeline.warm_up((1, 8, 64)) > 0
    assert [len(c) for c in scorer.calls] == [1, 8, 64]
    words = sorted({len(t.split()) for c in scorer.calls for t in c})
    assert words[0] <= 5 and words[-1] > 64  # short tweets to texts beyond a 64-token window
    assert pipeline.warm_up() == 0.0 and len(scorer.calls) == 3


def test_a_failing_warm_up_does_not_stop_the_worker():
    scorer = Recorder(fail=True)
    pipeline = Pipeline(scorer, store=None, extractor=EntityExtractor())  # type: ignore[arg-type]
    pipeline.warm_up()
    assert len(scorer.calls) == 1 and pipeline.warm_up() == 0.0
