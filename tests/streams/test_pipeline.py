"""The pure batch core with a fake scorer and an in-memory store: parsing, DLQ, scoring fallback, hooks,
Redis retry and metrics (fresh CollectorRegistry per test)."""

from __future__ import annotations

import base64
import json

import pytest
from prometheus_client import CollectorRegistry

from sentimon.inference import Prediction
from sentimon.streams.entities import EntityExtractor
from sentimon.streams.metrics import StreamMetrics
from sentimon.streams.pipeline import Pipeline, RawRecord
from sentimon.streams.windows import APPLIED, DUPLICATE, ApplyResult

NOW_S = 1_750_000_000.0


class FakeScorer:
    name, version = "fake", "0"

    def __init__(self, fail_on: str | None = None):
        self.fail_on = fail_on
        self.calls = 0

    def score(self, texts):
        self.calls += 1
        if self.fail_on and any(self.fail_on in t for t in texts):
            raise RuntimeError("tokenizer exploded")
        out = []
        for t in texts:
            if "good" in t:
                out.append(Prediction("positive", 0.9, {"negative": 0.0, "neutral": 0.1, "positive": 0.9}))
            elif "bad" in t:
                out.append(Prediction("negative", -0.8, {"negative": 0.85, "neutral": 0.1, "positive": 0.05}))
            else:
                out.append(Prediction("neutral", 0.0, {"negative": 0.1, "neutral": 0.8, "positive": 0.1}))
        return out


class MemoryStore:
    """Dedup-by-id stand-in for WindowStore (the real one is tested against Redis in test_windows)."""

    def __init__(self, failures: int = 0, error: Exception | None = None):
        self.seen: set[str] = set()
        self.applied: list = []
        self.failures = failures
        self.error = error or ConnectionError("redis down")

    def apply_detailed(self, events):
        if self.failures:
            self.failures -= 1
            raise self.error
        statuses = []
        for ev in events:
            if ev.message_id in self.seen:
                statuses.append(DUPLICATE)
            else:
                self.seen.add(ev.message_id)
                self.applied.append(ev)
                statuses.append(APPLIED)
        return ApplyResult(statuses)


def rec(value, offset=0, topic="raw", ts_ms=int(NOW_S * 1000) - 20) -> RawRecord:
    if isinstance(value, dict):
        value = json.dumps(value).encode()
    return RawRecord(value, topic, 0, offset, ts_ms)


def make(scorer=None, store=None, **kw) -> tuple[Pipeline, MemoryStore, StreamMetrics]:
    metrics = StreamMetrics(CollectorRegistry())
    store = store or MemoryStore()
    p = Pipeline(
        scorer or FakeScorer(),
        store,
        EntityExtractor({"AAPL": ["Apple"]}),
        metrics=metrics,
        clock=lambda: NOW_S,
        sleep=lambda s: None,
        **kw,
    )
    return p, store, metrics


def value(metrics, metric, **labels):
    return metrics.registry.get_sample_value(metric, labels) or 0.0


def test_batch_scores_extracts_applies_and_dead_letters():
    p, store, m = make()
    records = [
        rec({"id": "1", "text": "good Apple news"}, 0),
        rec({"id": "2", "text": "bad day", "entities": ["TSLA", "F"]}, 1),
        rec(b"\xff", 2),
        rec({"id": "3", "text": "meh, nothing"}, 3),
    ]
    result = p.process(records)
    assert [e.message_id for e in result.events] == ["1", "2", "3"]
    assert [e.entities for e in result.events] == [("AAPL",), ("TSLA", "F"), ()]
    assert [e.label for e in result.events] == ["positive", "negative", "neutral"]
    assert all(e.status == "applied" and e.model == "fake" for e in result.events)
    [dead] = result.dead_letters
    assert (dead.reason, dead.offset) == ("invalid_utf8", 2)
    assert base64.b64decode(dead.to_dict()["original_b64"]) == b"\xff"
    assert dead.to_dict()["source"] == {"topic": "raw", "partition": 0, "offset": 2}
    assert value(m, "sentimon_messages_total", topic="raw", outcome="applied") == 3
    assert value(m, "sentimon_messages_total", topic="raw", outcome="rejected") == 1
    assert value(m, "sentimon_dlq_messages_total", reason="invalid_utf8") == 1
    assert value(m, "sentimon_batch_size_messages_sum") == 4
    assert value(m, "sentimon_ingest_to_window_seconds_count") == 4
    assert value(m, "sentimon_ingest_to_window_seconds_sum") == pytest.approx(4 * 0.02)
    assert value(m, "sentimon_model_info", name="fake", version="0", tier="unknown") == 1
    assert result.events[0].timings["ingest_to_window_ms"] == 20
    assert result.events[0].timings["window_done_ms"] == NOW_S * 1000
    payload = result.events[0].to_dict()
    assert payload["id"] == "1" and payload["model"] == {"name": "fake", "version": "0"}
    json.dumps(payload)  # serializable


def test_redelivered_batch_is_marked_duplicate():
    p, store, m = make()
    batch = [rec({"id": str(i), "text": "good"}, i) for i in range(5)]
    p.process(batch)
    again = p.process(batch)
    assert [e.status for e in again.events] == ["duplicate"] * 5
    assert len(store.applied) == 5
    assert value(m, "sentimon_messages_total", topic="raw", outcome="duplicate") == 5


def test_scorer_failure_isolates_the_bad_text():
    scorer = FakeScorer(fail_on="poison")
    p, store, m = make(scorer=scorer)
    result = p.process([rec({"id": "a", "text": "good"}), rec({"id": "b", "text": "poison pill"}, 1)])
    assert [e.message_id for e in result.events] == ["a"]
    assert [(d.reason, d.offset) for d in result.dead_letters] == [("scoring_failed", 1)]
    assert value(m, "sentimon_scorer_errors_total") == 1


def test_redis_outage_is_retried_until_it_answers():
    import redis

    store = MemoryStore(failures=3, error=redis.ConnectionError("Connection refused"))
    p, _, m = make(store=store)
    result = p.process([rec({"id": "a", "text": "good"})])
    assert [e.status for e in result.events] == ["applied"]
    assert value(m, "sentimon_redis_errors_total") == 3


def test_infrastructure_error_propagates():
    p, _, _ = make(store=MemoryStore(failures=1, error=MemoryError()))
    with pytest.raises(MemoryError):
        p.process([rec({"id": "a", "text": "good"})])


def test_hooks_get_events_and_store_and_a_failing_hook_is_contained():
    seen = []

    def good_hook(events, store):
        seen.append(([e.message_id for e in events], [e.status for e in events], store))

    def broken_hook(events, store):
        raise RuntimeError("alerts down")

    p, store, m = make(hooks=[broken_hook, good_hook])
    p.process([rec({"id": "a", "text": "good"}), rec(b"[]", 1)])
    p.process([rec({"id": "a", "text": "good"})])
    assert seen == [(["a"], ["applied"], store), (["a"], ["duplicate"], store)]
    assert value(m, "sentimon_hook_errors_total", hook="broken_hook") == 2


def test_all_bad_batch_never_calls_scorer_or_store():
    scorer = FakeScorer()
    p, store, _ = make(scorer=scorer, store=MemoryStore(failures=99))
    result = p.process([rec(b"nope"), rec(b"{}", 1)])
    assert [d.reason for d in result.dead_letters] == ["invalid_json", "missing_text"]
    assert scorer.calls == 0 and result.events == []


@pytest.mark.integration
def test_real_store_and_vader_late_events_are_counted_not_applied(stack_settings, unique):
    import redis

    from sentimon.inference import load
    from sentimon.streams.windows import WindowStore

    client = redis.Redis.from_url(stack_settings.stack.redis)
    store = WindowStore(client, prefix=unique, bucket_ms=60_000, allowed_lateness_ms=600_000)
    p, _, m = make(scorer=load("vader"), store=store)
    now_ms = int(NOW_S * 1000)
    p.process([rec({"id": "new", "ts": now_ms - 1000, "text": "I love it", "entities": ["E"]})])
    result = p.process(
        [
            rec({"id": "ok", "ts": now_ms - 300_000, "text": "I hate it", "entities": ["E"]}, 1),
            rec({"id": "old", "ts": now_ms - 3_600_000, "text": "meh", "entities": ["E"]}, 2),
        ]
    )
    assert [e.status for e in result.events] == ["applied", "late"]
    s = store.stats("E", 7_200_000, now_ms)
    assert (s.count, s.positive, s.negative) == (2, 1, 1)
    assert value(m, "sentimon_messages_total", topic="raw", outcome="late") == 1
    client.close()


class NamedScorer(FakeScorer):
    def __init__(self, name: str, fail_on: str | None = None):
        super().__init__(fail_on)
        self.name = name


def test_a_topic_with_its_own_model_is_scored_by_it_and_each_event_names_its_model():
    social, market = NamedScorer("social-model"), NamedScorer("finance", fail_on="explode")
    p, store, _ = make(social, topic_scorers={"raw.market": market})
    records = [
        rec({"id": "1", "text": "good Apple news"}, 0, topic="raw.social"),
        rec({"id": "2", "text": "bad quarter for Apple"}, 1, topic="raw.market"),
        rec({"id": "3", "text": "meh"}, 2, topic="raw.social"),
        rec({"id": "4", "text": "this will explode"}, 3, topic="raw.market"),
        rec({"id": "5", "text": "good guidance"}, 4, topic="raw.market"),
    ]
    result = p.process(records)
    # Order is kept across the two models; the failing market text is isolated by its own model's fallback.
    assert [(e.message_id, e.model, e.topic) for e in result.events] == [
        ("1", "social-model", "raw.social"), ("2", "finance", "raw.market"), ("3", "social-model", "raw.social"),
        ("5", "finance", "raw.market"),
    ]  # fmt: skip
    assert [e.label for e in result.events] == ["positive", "negative", "neutral", "positive"]
    assert social.calls == 1  # one call for the social records of the batch
    [dead] = result.dead_letters
    assert (dead.reason, dead.offset) == ("scoring_failed", 3)
    assert [e.message_id for e in store.applied] == ["1", "2", "3", "5"]
    # Both models are listed; a rollout swapping the main model keeps the market model's series.
    m = p.metrics
    assert value(m, "sentimon_model_info", name="finance", version="0", tier="unknown") == 1
    m.set_model("social-model-v2", "1")
    assert value(m, "sentimon_model_info", name="finance", version="0", tier="unknown") == 1
    assert value(m, "sentimon_model_info", name="social-model", version="0", tier="unknown") == 0
