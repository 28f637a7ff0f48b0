"""The Faust shell's pure parts: crash-only handling of an unexpected batch failure."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client import CollectorRegistry

from sentimon.streams.app import EXIT_BATCH_FAILED, Worker
from sentimon.streams.entities import EntityExtractor
from sentimon.streams.metrics import StreamMetrics
from sentimon.streams.pipeline import Pipeline, RawRecord
from tests.streams.test_pipeline import FakeScorer, MemoryStore


class Exited(BaseException):
    pass


def worker_with(store) -> tuple[Worker, list[int]]:
    codes: list[int] = []

    def fake_exit(code: int) -> None:
        codes.append(code)
        raise Exited

    pipeline = Pipeline(FakeScorer(), store, EntityExtractor({}), sleep=lambda s: None)
    return Worker(pipeline, ThreadPoolExecutor(1), StreamMetrics(CollectorRegistry()), exit=fake_exit), codes


def test_unexpected_batch_error_exits_instead_of_acknowledging():
    worker, codes = worker_with(MemoryStore(failures=1, error=ValueError("label 'angry' is not one of ...")))
    with pytest.raises(Exited):
        worker.run_batch([RawRecord(b'{"id": "a", "text": "good"}', "raw")])
    assert codes == [EXIT_BATCH_FAILED]


def test_batch_serializes_scored_and_dead_letters():
    worker, codes = worker_with(MemoryStore())
    result, scored, dead = worker.run_batch([RawRecord(b'{"id": "a", "text": "good"}', "raw"), RawRecord(b"x", "raw")])
    assert codes == [] and len(scored) == 1 and len(dead) == 1
    assert b'"status": "applied"' in scored[0] and b'"reason": "invalid_json"' in dead[0]
