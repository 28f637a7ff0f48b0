"""The replay batch loop on fakes: pacing by event time, one alert evaluation per batch, silence checks."""

from __future__ import annotations

from types import SimpleNamespace

from sentimon.replay.run import ModelRun, replay
from sentimon.streams.pipeline import BatchResult, RawRecord


class FakePipeline:
    store = "the store"

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def process(self, batch: list[RawRecord]) -> BatchResult:
        self.batches.append([r.offset for r in batch])
        events = [SimpleNamespace(message_id=f"m{r.offset}", ts_ms=r.timestamp_ms) for r in batch]
        return BatchResult(events, [])


class FakeAlerts:
    def __init__(self) -> None:
        self.evaluated: list[tuple[list[str], str]] = []
        self.silence_at: list[int] = []

    def on_batch(self, events, store) -> list[dict]:
        self.evaluated.append(([e.message_id for e in events], store))
        return [{"batch_of": len(events)}]

    def check_silence(self, store, now_ms: int) -> list[dict]:
        self.silence_at.append(now_ms)
        return []


def test_each_batch_is_paced_scored_and_evaluated_for_alerts() -> None:
    now = [0.0]
    records = [RawRecord(b"{}", "t", 0, i, 1_000_000 + i * 10_000) for i in range(5)]
    pipeline, alerts = FakePipeline(), FakeAlerts()
    run = ModelRun("fake", None, pipeline, alerts)
    stats = replay(records, [run], batch_size=2, speed=10.0, clock=lambda: now[0],
                   sleep=lambda s: now.__setitem__(0, now[0] + s))  # fmt: skip
    assert pipeline.batches == [[0, 1], [2, 3], [4]]
    assert [ids for ids, _ in alerts.evaluated] == [["m0", "m1"], ["m2", "m3"], ["m4"]]
    assert {store for _, store in alerts.evaluated} == {"the store"}
    assert run.notifications == [{"batch_of": 2}, {"batch_of": 2}, {"batch_of": 1}]
    assert sorted(run.events) == ["m0", "m1", "m2", "m3", "m4"]
    # 10x: the last batch starts 40 event-time seconds after the first, 4 wall seconds later.
    assert stats.wall_s == 4.0 and stats.records == 5
    assert alerts.silence_at == [1_010_000]  # then not again within 5 event-time minutes
