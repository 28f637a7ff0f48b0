"""Hostile records never stop a worker: what cannot be encoded or stored is rejected with its own reason, an
unexpected per-record failure is isolated (``processing_failed``), dead letters of huge records stay small, and
the issue's scenario (60 valid + 8 hostile records) runs on a real worker with exact counts."""

from __future__ import annotations

import base64
import hashlib
import json
import time

import pytest

from sentimon.inference import Prediction
from sentimon.streams import schema
from sentimon.streams.pipeline import DeadLetter, is_infrastructure_error
from sentimon.streams.schema import Rejection, check_tree, parse_message
from sentimon.streams.windows import APPLIED, DUPLICATE, ApplyResult
from tests.streams.conftest import hour_count, read_topic, send, wait_for
from tests.streams.test_pipeline import NOW_S, FakeScorer, MemoryStore, make, rec, value

NOW = int(NOW_S * 1000)


def parse(raw: bytes, **kw):
    return parse_message(raw, fallback_ts_ms=NOW, now_ms=NOW, **kw)


# Each case: raw bytes -> the reason it must get. Escapes are written as JSON text, as a producer sends them.
HOSTILE = [
    (b'{"id":"a","text":"ok","meta":{"x":"\\ud800"}}', schema.LONE_SURROGATE),
    (b'{"id":"\\udfff","text":"ok"}', schema.LONE_SURROGATE),
    (b'{"id":"a","text":"bad \\ud83d day"}', schema.LONE_SURROGATE),
    (b'{"id":"a","text":"ok","entities":["AAPL","\\udc80"]}', schema.LONE_SURROGATE),
    (b'{"id":"a","text":"ok","source":"\\ud800x"}', schema.LONE_SURROGATE),
    (b'{"id":"a","text":"ok","meta":{"\\ud800":1}}', schema.LONE_SURROGATE),
    (b'{"id":"a","text":"ok","label":["\\ud800"]}', schema.LONE_SURROGATE),  # an extra key, re-emitted
    (b'{"id":"a","text":"ok","meta":{"score":NaN}}', schema.NON_FINITE_NUMBER),
    (b'{"id":"a","text":"ok","meta":{"v":-Infinity}}', schema.NON_FINITE_NUMBER),
    (b'{"id":"a","text":"ok","meta":{"v":Infinity}}', schema.NON_FINITE_NUMBER),
    (b'{"id":"a","text":"ok","meta":{"v":1e400}}', schema.NON_FINITE_NUMBER),
    (b'{"id":"a","text":"ok","meta":' + b"[" * 20 + b"]" * 20 + b"}", schema.TOO_DEEP),
    (b"[" * 50_000 + b"]" * 50_000, schema.OVERSIZE),
    (b'{"a":' * 3000 + b"1" + b"}" * 3000, schema.TOO_DEEP),  # RecursionError inside json
    (b'{"id":"a","text":"ok","source":"' + b"s" * 300 + b'"}', schema.FIELD_TOO_LONG),
    (b'{"id":"a","text":"ok","lang":"' + b"l" * 100 + b'"}', schema.FIELD_TOO_LONG),
    (json.dumps({"id": "a", "text": "ok", "entities": [f"E{i}" for i in range(5000)]}).encode(),
     schema.TOO_MANY_ENTITIES),
    (b'{"id":"a","text":"ok","meta":{"big":"' + b"x" * 70_000 + b'"}}', schema.OVERSIZE),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "reason"), HOSTILE, ids=[f"{r}-{i}" for i, (_, r) in enumerate(HOSTILE)])
def test_what_cannot_be_encoded_or_stored_is_rejected_with_its_reason(raw, reason):
    result = parse(raw)
    assert isinstance(result, Rejection), result
    assert (result.reason, result.reason in schema.REASONS) == (reason, True), result.detail
    result.detail.encode("utf-8")  # the detail itself always encodes


def test_valid_unicode_and_big_finite_numbers_pass():
    raw = json.dumps({"id": "\U0001f600-1", "text": "naïve 東京 \U0001f680", "meta": {"n": 10**30, "f": 1e300}})
    msg = parse(raw.encode())
    assert not isinstance(msg, Rejection), msg
    assert msg.id == "\U0001f600-1" and msg.meta["n"] == 10**30


def test_depth_limit_is_a_setting_and_the_detail_names_the_path():
    nested = {"id": "a", "text": "ok", "meta": {"a": {"b": {"c": 1}}}}
    assert not isinstance(parse(json.dumps(nested).encode(), max_depth=4), Rejection)
    result = parse(json.dumps(nested).encode(), max_depth=3)
    assert result.reason == schema.TOO_DEEP and "meta.a.b" in result.detail
    assert check_tree({"k": ["\ud800"]}) == Rejection(schema.LONE_SURROGATE, "k[0] holds a lone surrogate (not UTF-8)")


def test_dead_letter_of_a_huge_record_is_truncated_with_its_hash_and_length():
    raw = b"\xfe" * 1_000_000
    dead = DeadLetter("oversize", "too big \ud800", raw, "raw", 0, 7, None)
    payload = dead.encode(max_original_bytes=1000)
    assert len(payload) < 2000
    body = json.loads(payload)
    assert base64.b64decode(body["original_b64"]) == raw[:1000]
    assert (body["original_bytes"], body["original_truncated"]) == (1_000_000, True)
    assert body["original_sha256"] == hashlib.sha256(raw).hexdigest()
    assert body["detail"] == "too big \\ud800"  # escaped, so the dead letter is valid UTF-8
    small = json.loads(DeadLetter("x", "", b"abc", "raw", 0, 0, None).encode())
    assert (base64.b64decode(small["original_b64"]), small["original_truncated"]) == (b"abc", False)


class NaNScorer(FakeScorer):
    def score(self, texts):
        out = super().score(texts)
        return [
            Prediction("positive", float("nan"), p.probs) if "nan" in t else
            Prediction("positive", 0.5, {**p.probs, "positive": float("inf")}) if "inf" in t else p
            for t, p in zip(texts, out, strict=True)
        ]  # fmt: skip


def test_non_finite_model_output_is_dead_lettered_not_stored():
    p, store, m = make(scorer=NaNScorer())
    result = p.process(
        [rec({"id": "a", "text": "good"}), rec({"id": "b", "text": "nan"}, 1), rec({"id": "c", "text": "inf"}, 2)]
    )
    assert [e.message_id for e in store.applied] == ["a"]
    assert [(d.reason, d.offset) for d in result.dead_letters] == [("non_finite_score", 1), ("non_finite_score", 2)]
    assert value(m, "sentimon_dlq_messages_total", reason="non_finite_score") == 2


class PoisonStore(MemoryStore):
    """Fails (as an unexpected bug would) on any batch holding the id "poison", after applying what came before
    it -- as a Lua script that errors midway leaves its earlier writes."""

    def apply_detailed(self, events):
        statuses = []
        for ev in events:
            if ev.message_id == "poison":
                raise KeyError("unexpected: poison")
            statuses.append(DUPLICATE if ev.message_id in self.seen else APPLIED)
            if ev.message_id not in self.seen:
                self.seen.add(ev.message_id)
                self.applied.append(ev)
        return ApplyResult(statuses)


def test_unexpected_batch_failure_is_retried_record_by_record():
    hooked = []
    p, store, m = make(store=PoisonStore(), hooks=[lambda events, store: hooked.append([e.message_id for e in events])])
    batch = [rec({"id": i, "text": "good"}, n) for n, i in enumerate(["a", "b", "poison", "c"])]
    result = p.process(batch)
    # Each valid record counted once (a and b were applied by the failed attempt: duplicates now), only the poison
    # dead-lettered, with the exception named.
    assert [e.message_id for e in store.applied] == ["a", "b", "c"]
    assert [(e.message_id, e.status) for e in result.events] == [
        ("a", "duplicate"),
        ("b", "duplicate"),
        ("c", "applied"),
    ]
    [dead] = result.dead_letters
    assert (dead.reason, dead.offset, dead.detail) == ("processing_failed", 2, "KeyError: 'unexpected: poison'")
    assert json.loads(result.dead[0])["reason"] == "processing_failed"
    assert [json.loads(s)["id"] for s in result.scored] == ["a", "b", "c"]
    assert hooked == [["a"], ["b"], ["c"]]
    assert value(m, "sentimon_dlq_messages_total", reason="processing_failed") == 1


def test_infrastructure_errors_are_not_data():
    import redis

    assert is_infrastructure_error(redis.ConnectionError("down"))
    assert is_infrastructure_error(redis.ResponseError("OOM command not allowed"))
    assert is_infrastructure_error(MemoryError())
    assert not is_infrastructure_error(redis.ResponseError("ERR value is not a valid float"))
    assert not is_infrastructure_error(UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"))
    assert not is_infrastructure_error(RecursionError())


def test_extracted_entities_are_capped_at_max_entities():
    p, store, _ = make(max_entities=3)
    text = " ".join(f"${chr(65 + i)}X" for i in range(10))
    [event] = p.process([rec({"id": "a", "text": text})]).events
    assert event.entities == ("AX", "BX", "CX")


class LangScorer(FakeScorer):
    def score(self, texts):
        neutral = {"negative": 0.3, "neutral": 0.4, "positive": 0.3}
        positive = {"negative": 0.0, "neutral": 0.1, "positive": 0.9}
        return [
            Prediction("neutral", 0.0, neutral, lang="de", unsupported=True)
            if "Tag" in t
            else Prediction("positive", 0.9, positive, lang="en")
            for t in texts
        ]


@pytest.mark.parametrize("dead_letter", [True, False])
def test_unsupported_language_is_dead_lettered_when_configured(dead_letter):
    p, store, _ = make(scorer=LangScorer(), dead_letter_unsupported=dead_letter)
    result = p.process([rec({"id": "a", "text": "good"}), rec({"id": "b", "text": "ein schlechter Tag"}, 1)])
    assert json.loads(result.scored[0])["lang"] == "en"
    if dead_letter:
        assert [(d.reason, d.offset) for d in result.dead_letters] == [("unsupported_language", 1)]
        assert [e.message_id for e in store.applied] == ["a"]
    else:
        assert result.dead_letters == [] and [e.lang for e in result.events] == ["en", "de"]


# -- against the real services


@pytest.mark.integration
def test_nan_score_never_reaches_redis(stack_settings, unique):
    import redis

    from sentimon.streams.windows import WindowStore

    client = redis.Redis.from_url(stack_settings.stack.redis)
    store = WindowStore(client, prefix=unique, bucket_ms=60_000)
    p, _, _ = make(scorer=NaNScorer(), store=store)
    records = [rec({"id": f"i{i}", "text": "nan" if i == 3 else "good", "entities": ["NAN"], "ts": NOW - 1000}, i)
               for i in range(6)]  # fmt: skip
    result = p.process(records)
    assert [d.reason for d in result.dead_letters] == ["non_finite_score"]
    stats = store.stats("NAN", 3_600_000, NOW + 1000)
    assert (stats.count, stats.positive) == (5, 5)
    client.close()


@pytest.mark.integration
def test_raw_topics_get_max_message_bytes_from_settings(stack_settings, unique):
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType

    from sentimon.infra import ensure_topics, pipeline_topics

    names = {f"topic_{k}": f"{unique}.{k}" for k in ("social", "market", "scored", "dlq", "alerts")}
    bootstrap = stack_settings.stack.kafka_servers
    resources = [ConfigResource(ConfigResourceType.TOPIC, names[f"topic_{k}"]) for k in ("social", "market", "dlq")]

    def modified() -> dict:  # the configs that differ from the broker's defaults, per topic
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            return admin.describe_configs(resources)["topic"]
        finally:
            admin.close()

    def max_bytes() -> list:
        found = modified()
        return [found.get(r.name, {}).get("max.message.bytes", {}).get("value") for r in resources]

    settings = stack_settings.replace(**names)
    ensure_topics(settings, pipeline_topics(settings))  # created with the default
    wait_for(lambda: max_bytes() == [str(1024 * 1024)] * 2 + [None], 20, "the new topics' configs")
    settings = settings.replace(topic_raw_max_message_bytes=2_000_000)
    ensure_topics(settings, pipeline_topics(settings))
    # Existing topics are altered; the dead-letter topic keeps the broker's default (its records stay small).
    wait_for(lambda: max_bytes() == ["2000000", "2000000", None], 20, "the altered max.message.bytes")


ISSUE_HOSTILE = [
    b'{"id":"h1","text":"ok","meta":{"x":"\\ud800"}}',
    b'{"id":"\\ud800","text":"ok"}',
    b'{"id":"h3","text":"ok","entities":["\\udfff"]}',
    b'{"id":"h4","text":"lone \\ud800 in the text","source":"vader"}',
    b'{"id":"h5","text":"ok","meta":{"score":NaN}}',
    b'{"id":"h6","text":"ok","meta":{"v":Infinity}}',
    b'{"id":"h7","text":"' + b"x" * 900_000 + b'"}',  # its base64 dead letter used to exceed the broker's limit
    b'{"a":' * 5000 + b"1" + b"}" * 5000,
]
ISSUE_REASONS = ["lone_surrogate"] * 4 + ["non_finite_number"] * 2 + ["oversize", "too_deep"]


@pytest.mark.integration
def test_issue_scenario_60_valid_and_8_hostile(stream_env, store, stack_settings):
    bootstrap = stack_settings.stack.kafka_servers
    worker = stream_env.start_worker()
    worker.wait_ready()
    now = int(time.time() * 1000)
    valid = [
        json.dumps({"id": f"v{i}", "ts": now, "text": "fine day", "entities": ["ISSUE"]}).encode() for i in range(60)
    ]
    values = valid[:]
    for k, bad in enumerate(ISSUE_HOSTILE):
        values.insert(7 * k + 3, bad)
    send(bootstrap, stream_env.topics["social"], values)

    wait_for(lambda: hour_count(store, "ISSUE") >= 60, 60, "60 valid messages counted")
    dlq = read_topic(bootstrap, stream_env.topics["dlq"], 8)
    scored = read_topic(bootstrap, stream_env.topics["scored"], 60)
    assert worker.proc.poll() is None
    assert hour_count(store, "ISSUE") == 60
    assert {json.loads(r.value)["id"] for r in scored} == {f"v{i}" for i in range(60)}
    by_hash = {json.loads(r.value)["original_sha256"]: json.loads(r.value) for r in dlq}
    assert len(by_hash) == 8
    for bad, reason in zip(ISSUE_HOSTILE, ISSUE_REASONS, strict=True):
        dead = by_hash[hashlib.sha256(bad).hexdigest()]
        assert (dead["reason"], dead["original_bytes"]) == (reason, len(bad))
    assert max(len(r.value) for r in dlq) < 100_000  # the 900 KB record's dead letter is truncated


@pytest.mark.integration
def test_records_redis_refuses_are_dead_lettered_and_the_worker_goes_on(stream_env, store, stack_settings):
    import redis

    # A dedup-set key of the wrong type (left by another tool) makes Redis refuse the update of every event of
    # that minute, at its first write: before, the batch failed, the worker exited 70 unacknowledged and
    # crash-looped on it. Now the batch is re-run record by record and only those records are dead-lettered.
    bootstrap = stack_settings.stack.kafka_servers
    bucket_ms = stack_settings.windows.bucket_ms
    ts_ok = int(time.time() * 1000) - 5_000
    ts_bad = ts_ok - bucket_ms
    client = redis.Redis.from_url(stack_settings.stack.redis)
    client.set(f"{stream_env.name}:seen:{ts_bad - ts_bad % bucket_ms}", "not a set")
    worker = stream_env.start_worker()
    worker.wait_ready()
    values = [
        json.dumps({"id": f"p{i}", "ts": ts_bad if i % 10 == 5 else ts_ok, "text": "fine", "entities": ["OK"]}).encode()
        for i in range(60)
    ]
    refused = [v for i, v in enumerate(values) if i % 10 == 5]
    send(bootstrap, stream_env.topics["social"], values)

    wait_for(lambda: hour_count(store, "OK") >= 54, 60, "the 54 other messages counted")
    dlq = [json.loads(r.value) for r in read_topic(bootstrap, stream_env.topics["dlq"], len(refused))]
    time.sleep(1)
    assert worker.proc.poll() is None
    assert hour_count(store, "OK") == 54
    assert sorted(base64.b64decode(d["original_b64"]) for d in dlq) == sorted(refused)
    assert {d["reason"] for d in dlq} == {"processing_failed"}
    assert all("WRONGTYPE" in d["detail"] for d in dlq), dlq[0]["detail"]
    client.close()
