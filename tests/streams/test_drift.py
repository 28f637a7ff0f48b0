"""The drift monitor on the real stack: a reference set from a replay (`sentimon drift reference --from-replay`),
then a real worker: a planted label-mix shift on the market topic raises the drift signal (metric, Redis status,
`sentimon drift status`), the steady social topic raises none; a replay of the shifted topic reports the drift at
the same window as the live worker. Prints the detection delay."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sentimon.core.host import free_port
from tests.streams.conftest import wait_for

pytestmark = pytest.mark.integration

TINY = str(Path(__file__).resolve().parents[1] / "assets" / "tiny-bundle")
MODEL = "tiny-transformer"
WINDOW = 200
REFERENCE_EVENTS = 6 * WINDOW  # per topic
STEADY_LIVE = 3 * WINDOW + 50  # market events before the shift, after the reference traffic (mid-window)
SHIFTED_LIVE = 5 * WINDOW
SOCIAL_LIVE = 5 * WINDOW
# The tiny bundle reads love -> positive, hate -> negative, anything else neutral (tests/assets/tiny-bundle).
TEMPLATES = {"positive": "I love this {}", "neutral": "the {} opened flat", "negative": "I hate the {}"}
STEADY = {"negative": 0.3, "neutral": 0.4, "positive": 0.3}
SHIFTED = {"negative": 0.7, "neutral": 0.2, "positive": 0.1}  # a negative wave: JS distance ~0.3
WORDS = ["bank", "fund", "airline", "phone", "shares", "quarter", "outlook", "guidance"]


def messages(rng: random.Random, n: int, mix: dict[str, float], prefix: str) -> list[bytes]:
    now = int(time.time() * 1000)
    out = []
    for i in range(n):
        label = rng.choices(list(mix), list(mix.values()))[0]
        text = TEMPLATES[label].format(" ".join(rng.choices(WORDS, k=rng.randint(1, 5))))
        out.append(json.dumps({"id": f"{prefix}-{i}", "ts": now, "source": "test", "text": text,
                               "entities": ["ACME"]}).encode())  # fmt: skip
    return out


def produce(settings, topic: str, values: list[bytes]) -> None:
    """All on partition 0: the worker and the replay then see one order, so their windows are the same."""
    from sentimon.infra import kafka_clients

    producer = kafka_clients.producer(settings, acks="all", linger_ms=5)
    try:
        for value in values:
            producer.send(topic, value=value, partition=0)
        producer.flush()
    finally:
        producer.close()


def replay_topic(settings, topic: str, namespace: str, report: Path) -> dict:
    from sentimon.replay.job import ReplayRequest, TopicReplay

    request = ReplayRequest(topic=topic, models=[TINY], namespace=namespace, report_path=report)
    return TopicReplay(settings, request).run().report


def test_a_planted_label_mix_shift_raises_drift_and_a_steady_topic_does_not(stream_env, tmp_path: Path) -> None:
    env = stream_env
    social, market = env.topics["social"], env.topics["market"]
    reference_path = tmp_path / "drift-reference.json"
    settings = env.settings.replace(
        topics={k: v for k, v in env.topics.items()},
        windows={"prefix": f"{env.name}:replay-prod"},
        alerts={"prefix": f"{env.name}:replay-prod:al"},
        drift={"reference": reference_path, "window_events": WINDOW},
    )
    rng = random.Random(7)

    # 1. A quiet period on both topics, replayed through the model; the reference is set from that replay.
    produce(settings, social, messages(rng, REFERENCE_EVENTS, STEADY, "s-ref"))
    produce(settings, market, messages(rng, REFERENCE_EVENTS, STEADY, "m-ref"))
    namespace = f"{env.name}-ref"
    for topic in (social, market):
        first = replay_topic(settings, topic, namespace, tmp_path / f"ref-{topic}.json")
        assert first["models"][MODEL]["drift"] is None  # no reference yet
    cli_env = {**env.env(free_port()), "SENTIMON_DRIFT__REFERENCE": str(reference_path),
               "SENTIMON_DRIFT__WINDOW_EVENTS": str(WINDOW), "SENTIMON_MODEL": TINY}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "sentimon", "drift", "reference", "--from-replay", namespace,
                           "--model", TINY], env=cli_env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    written = json.loads(done.stdout)
    pairs = {(r["model"], r["topic"]): r for r in written["references"]}
    assert set(pairs) == {(MODEL, social), (MODEL, market)} and written["window_events"] == WINDOW
    assert pairs[(MODEL, market)]["windows"] == 6 and pairs[(MODEL, market)]["unk_rate"] is not None
    assert json.loads(reference_path.read_text()) == written

    # 2. A real worker (drift hook on by default) reads both topics from the start: the quiet period, more steady
    # traffic, and on the market topic a planted shift to mostly negative posts.
    env.extra_env.update({"SENTIMON_MODEL": TINY, "SENTIMON_DRIFT__REFERENCE": str(reference_path)})
    worker = env.start_worker()
    worker.wait_ready(90)
    produce(settings, social, messages(rng, SOCIAL_LIVE, STEADY, "s-live"))
    produce(settings, market, messages(rng, STEADY_LIVE, STEADY, "m-live") +
            messages(rng, SHIFTED_LIVE, SHIFTED, "m-shift"))  # fmt: skip
    market_windows = (REFERENCE_EVENTS + STEADY_LIVE + SHIFTED_LIVE) // WINDOW
    social_windows = (REFERENCE_EVENTS + SOCIAL_LIVE) // WINDOW

    def windows(topic: str) -> float:
        return worker.sample(f'sentimon_drift_windows_total{{model="{MODEL}",topic="{topic}"}}')

    wait_for(lambda: windows(market) >= market_windows and windows(social) >= social_windows, 120,
             "the worker to close every drift window")  # fmt: skip

    def detected(topic: str, signal: str) -> float:
        # The exposition lists label names in sorted order.
        return worker.sample(f'sentimon_drift_detected{{model="{MODEL}",signal="{signal}",topic="{topic}"}}')

    drift_lines = "\n".join(line for line in worker.metrics().splitlines() if line.startswith("sentimon_drift"))
    assert detected(market, "label_mix") == 1, drift_lines
    assert worker.sample(f'sentimon_drift_label_js{{model="{MODEL}",topic="{market}"}}') >= 0.1
    for signal in ("label_mix", "confidence", "unknown_tokens", "text_length"):
        assert detected(social, signal) == 0, signal

    # 3. `sentimon drift status` reads the workers' window reports; the delay from the shift to the detection.
    status = subprocess.run([sys.executable, "-m", "sentimon", "drift", "status", "--json"],
                            env={**cli_env, "SENTIMON_WINDOW_PREFIX": env.name}, capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert status.returncode == 0, status.stderr
    body = json.loads(status.stdout)
    rows = {r["topic"]: r for r in body["workers"]}
    assert rows[market]["detected"]["label_mix"] and not any(rows[social]["detected"].values())
    shift_at = REFERENCE_EVENTS + STEADY_LIVE  # market events the worker had seen when the shift began
    since = rows[market]["drifting_since_events"]["label_mix"]
    delay = since - shift_at
    print(f"\nlive worker: label-mix drift detected {delay} events after the planted shift "
          f"({delay / WINDOW:.2f} windows of {WINDOW}; confirm_windows 2)")  # fmt: skip
    assert 0 < delay <= 3 * WINDOW

    # 4. A replay of the market topic reports the same drift, at the same window as the live worker.
    report = replay_topic(settings, market, f"{env.name}-check", tmp_path / "check.json")
    (figures,) = report["models"][MODEL]["drift"]["topics"]
    assert figures["topic"] == market and figures["windows"] == market_windows
    assert figures["first_detected"]["label_mix"]["events_seen"] == since
    assert (
        os.path.exists(tmp_path / "check.md") and "Drift against the reference" in (tmp_path / "check.md").read_text()
    )
