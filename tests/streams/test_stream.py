"""The worker end to end on real Kafka + Redis: exact window counts, dead-letter corpus, scored topic,
metrics endpoint, CLI reads, two workers splitting partitions."""

from __future__ import annotations

import base64
import collections
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.streams.conftest import hour_count, message, read_topic, send, wait_for
from tests.streams.test_schema import BAD_CORPUS

pytestmark = pytest.mark.integration


def test_exact_counts_dead_letters_scored_topic_metrics_and_cli(stream_env, store, stack_settings):
    bootstrap = stack_settings.stack.kafka_servers
    worker = stream_env.start_worker()
    n = 600
    good = [
        message(i, ["ALPHA"] if i % 3 else ["ALPHA", "BETA"], "what a great day" if i % 2 else "awful, terrible")
        for i in range(n)
    ]
    # Text-only messages: entities come from cashtags and the sample watchlist.
    extracted = [json.dumps({"id": f"x{i}", "text": "$AAPL and Tesla up"}).encode() for i in range(20)]
    corpus = _live_corpus()
    bad = [raw for raw, _ in corpus]
    send(bootstrap, stream_env.topics["social"], good[: n // 2] + bad + extracted)
    send(bootstrap, stream_env.topics["market"], good[n // 2 :] + good[:50])  # 50 re-sent duplicates
    worker.wait_ready()

    wait_for(lambda: hour_count(store, "ALPHA") >= n, 90, f"{n} ALPHA mentions")
    dlq = read_topic(bootstrap, stream_env.topics["dlq"], len(bad))
    wait_for(lambda: worker.sample("sentimon_messages_total{") >= n + 50 + len(bad) + 20, 30, "metrics")

    alpha, beta = store.stats("ALPHA", 3_600_000, _later()), store.stats("BETA", 3_600_000, _later())
    assert alpha.count == n
    assert beta.count == n // 3
    assert alpha.positive == n // 2 and alpha.negative == n // 2
    assert hour_count(store, "AAPL") == 20 and hour_count(store, "TSLA") == 20

    # Every bad record is dead-lettered once, with its reason and its original bytes (the first 64 KiB of them,
    # and the hash and length of the whole).
    letters = [json.loads(r.value) for r in dlq]
    got = sorted((d["reason"], base64.b64decode(d["original_b64"]), d["original_sha256"], d["original_bytes"])
                 for d in letters)  # fmt: skip
    want = [(reason, raw[: 64 * 1024], hashlib.sha256(raw).hexdigest(), len(raw)) for raw, reason in corpus]
    assert got == sorted(want)
    assert all(json.loads(r.value)["source"]["topic"] == stream_env.topics["social"] for r in dlq)

    scored = read_topic(bootstrap, stream_env.topics["scored"], n + 50 + 20)
    by_status = collections.Counter(json.loads(r.value)["status"] for r in scored)
    assert by_status == {"applied": n + 20, "duplicate": 50}
    one = json.loads(scored[0].value)
    assert {"id", "entities", "label", "score", "probs", "model", "timings"} <= set(one)
    assert one["model"]["name"] == "vader"

    text = worker.metrics()
    for series in (
        "sentimon_messages_total",
        "sentimon_batch_size_messages_bucket",
        "sentimon_inference_seconds_bucket",
        "sentimon_ingest_to_window_seconds_bucket",
        "sentimon_window_update_seconds_bucket",
        "sentimon_dlq_messages_total",
        "sentimon_consumer_lag_messages",
        "sentimon_model_info",
    ):
        assert series in text, series
    assert worker.sample('sentimon_messages_total{outcome="duplicate"') == 50
    market_lag = [line for line in text.splitlines() if line.startswith("sentimon_consumer_lag_messages{")
                  and f'topic="{stream_env.topics["market"]}"' in line and 'partition="' in line]  # fmt: skip
    assert market_lag, "lag per topic and partition"
    assert worker.sample("sentimon_consumer_lag_messages{") == 0  # everything consumed
    # Metrics and anything Faust opens listen on loopback only (IPv4 127.0.0.1 = 0100007F).
    listening = worker.listening_addresses()
    assert listening and all(addr.split(":")[0] == "0100007F" for addr in listening), listening
    assert worker.sample('sentimon_dlq_messages_total{reason="invalid_utf8"}') == 2

    cli = subprocess.run(
        [sys.executable, "-m", "sentimon", "windows", "ALPHA", "--window", "1h", "--json"],
        env=stream_env.env(worker.metrics_port), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    row = json.loads(cli.stdout)
    assert {k: row[k] for k in ("entity", "window", "count", "negative", "positive")} == {
        "entity": "ALPHA", "window": "1h", "count": n, "negative": n // 2, "positive": n // 2,
    }  # fmt: skip
    assert row["mean_score"] == pytest.approx(alpha.mean_score)

    # Graceful stop: SIGTERM finishes and exits cleanly, and the worker takes its ready file away.
    assert worker.terminate() == 0
    assert worker.ready() is None


def test_two_workers_split_partitions_and_counts_are_exact(stream_env, store, stack_settings):
    a, b = stream_env.start_worker(), stream_env.start_worker()
    a.wait_ready()
    b.wait_ready()
    n = 2000
    send(stack_settings.stack.kafka_servers, stream_env.topics["social"], [message(i, ["GAMMA"]) for i in range(n)],
         keys=[f"m{i}".encode() for i in range(n)])  # fmt: skip
    wait_for(lambda: hour_count(store, "GAMMA") >= n, 90, f"{n} GAMMA mentions")
    wait_for(lambda: a.sample("sentimon_messages_total{") + b.sample("sentimon_messages_total{") >= n, 30, "metrics")
    assert hour_count(store, "GAMMA") == n
    applied = 'sentimon_messages_total{outcome="applied"'
    done_a, done_b = a.sample(applied), b.sample(applied)
    assert done_a > 0 and done_b > 0, (done_a, done_b)
    assert done_a + done_b == n


def test_a_batch_longer_than_the_session_timeout_keeps_the_group(stream_env, store, stack_settings):
    # Inference runs in an executor and aiokafka heartbeats on its own, so a slow batch is not a dead member.
    stream_env.extra_env["SENTIMON_STREAM_HOOKS"] = '["tests.streams.hooks:slow_first_batch"]'
    worker = stream_env.start_worker()
    worker.wait_ready()
    n = 500
    send(stack_settings.stack.kafka_servers, stream_env.topics["social"], [message(i, ["SLOW"]) for i in range(n)])
    wait_for(lambda: hour_count(store, "SLOW") >= n, 90, f"{n} SLOW mentions")
    time.sleep(2)
    assert hour_count(store, "SLOW") == n
    assert worker.sample('sentimon_messages_total{outcome="duplicate"') == 0
    assert worker.ready()["assignments"] == 1, "the slow batch cost the group membership"
    assert worker.sample("sentimon_batch_size_messages_count") >= 2


def test_onnx_bundle_scores_in_the_worker(stream_env, store, stack_settings):
    # The ONNX scorer path (tokenizer + onnxruntime in the executor thread), with the tiny test bundle.
    bundle = Path(__file__).resolve().parents[1] / "assets" / "tiny-bundle"
    stream_env.extra_env["SENTIMON_MODEL"] = str(bundle)
    worker = stream_env.start_worker()
    n = 300
    send(stack_settings.stack.kafka_servers, stream_env.topics["social"], [message(i, ["ONNX"]) for i in range(n)])
    worker.wait_ready()
    wait_for(lambda: hour_count(store, "ONNX") >= n, 90, f"{n} ONNX mentions")
    s = store.stats("ONNX", 3_600_000, _later())
    assert s.count == n == s.negative + s.neutral + s.positive
    assert worker.sample('sentimon_model_info{name="tiny-transformer"') == 1


def test_market_records_are_scored_by_the_market_model(stream_env, store, stack_settings):
    # inference.market_model routes the market topic to its own model (here the tiny bundle; social: VADER).
    bundle = Path(__file__).resolve().parents[1] / "assets" / "tiny-bundle"
    stream_env.extra_env["SENTIMON_INFERENCE__MARKET_MODEL"] = str(bundle)
    worker = stream_env.start_worker()
    bootstrap, n = stack_settings.stack.kafka_servers, 40
    send(bootstrap, stream_env.topics["social"], [message(i, ["ROUTE"]) for i in range(n)])
    send(bootstrap, stream_env.topics["market"], [message(n + i, ["ROUTE"]) for i in range(n)])
    worker.wait_ready()
    scored = [json.loads(r.value) for r in read_topic(bootstrap, stream_env.topics["scored"], 2 * n)]
    models = collections.Counter((e["origin"]["topic"], e["model"]["name"]) for e in scored)
    assert models == {(stream_env.topics["social"], "vader"): n, (stream_env.topics["market"], "tiny-transformer"): n}
    assert hour_count(store, "ROUTE") == 2 * n


def test_a_missing_market_model_is_one_error_naming_the_setting(stream_env):
    stream_env.extra_env["SENTIMON_INFERENCE__MARKET_MODEL"] = "no-such-model"
    worker = stream_env.start_worker()
    assert worker.proc.wait(60) == 2
    log = worker.log.read_text()
    assert "inference.market_model" in log and "no-such-model" in log and "Traceback" not in log


def _live_corpus() -> list[tuple[bytes, str]]:
    """The unit tests' bad-message corpus, with its "future" timestamp moved relative to the real clock."""
    import time

    future = json.dumps({"id": "f", "text": "hello", "ts": int(time.time() * 1000) + 3_600_000}).encode()
    return [(raw, reason) for raw, reason in BAD_CORPUS if reason != "future_ts"] + [(future, "future_ts")]


def _later() -> int:
    import time

    return int(time.time() * 1000) + 120_000
