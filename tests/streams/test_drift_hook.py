"""The worker's drift hook on plain ScoredEvents (no services): gauges per model and topic, re-deliveries not
counted, the unknown-token sample, the reference re-read when it changes, metric names."""

from __future__ import annotations

import random
import re
import time
from pathlib import Path
from types import SimpleNamespace

from prometheus_client import CollectorRegistry

from sentimon.inference.drift import SIGNALS, Thresholds, build_reference, observation
from sentimon.inference.unknown_tokens import UnknownTokens
from sentimon.streams.drift import DriftHook, DriftMetrics
from sentimon.streams.pipeline import ScoredEvent

TINY = Path(__file__).resolve().parents[1] / "assets" / "tiny-bundle"
WINDOW = 200
STEADY = {"I love this {}": 0.3, "the {} opened flat": 0.4, "I hate the {}": 0.3}
SHIFTED = {"I love this {}": 0.1, "the {} opened flat": 0.2, "I hate the {}": 0.7}
LABEL = {"I love this {}": "positive", "the {} opened flat": "neutral", "I hate the {}": "negative"}
NOUNS = ["bank", "fund", "airline", "zzqx", "phone"]


def scored(rng: random.Random, n: int, topic: str, mix: dict[str, float], start: int = 0) -> list[ScoredEvent]:
    out = []
    for i in range(n):
        template = rng.choices(list(mix), list(mix.values()))[0]
        label = LABEL[template]
        top = min(0.99, max(0.34, rng.gauss(0.9, 0.05)))
        probs = {k: (top if k == label else (1 - top) / 2) for k in ("negative", "neutral", "positive")}
        text = template.format(" ".join(rng.choices(NOUNS, k=rng.randint(1, 4))))
        out.append(ScoredEvent(f"{topic}-{start + i}", 0, "test", (), text, label, 0.0, probs, "tiny-transformer",
                               "0.1.0", topic, 0, start + i, status="applied"))  # fmt: skip
    return out


def make_reference(path: Path, counter: UnknownTokens) -> None:
    rng = random.Random(1)
    events = scored(rng, 6 * WINDOW, "social", STEADY) + scored(rng, 6 * WINDOW, "market", STEADY)
    counts = counter.count([ev.text for ev in events])
    obs = [observation(ev, *c) for ev, c in zip(events, counts, strict=True)]
    build_reference(obs, WINDOW, source="test").save(path)


def test_the_hook_flags_the_shifted_topic_only_and_names_its_series(tmp_path: Path) -> None:
    counter = UnknownTokens.from_bundle(TINY)
    assert counter is not None
    ref = tmp_path / "reference.json"
    registry = CollectorRegistry()
    hook = DriftHook(ref, Thresholds(), DriftMetrics(registry), unknown_tokens=counter, unk_model="tiny-transformer",
                     unk_sample=16)  # fmt: skip
    store = SimpleNamespace(prefix="t")  # no Redis client: the status write is skipped
    rng = random.Random(2)
    hook(scored(rng, 50, "market", STEADY), store)  # no reference yet: nothing happens
    assert hook.monitor is None
    make_reference(ref, counter)

    def value(name: str, topic: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {"model": "tiny-transformer", "topic": topic, **labels})

    start = 0
    for batch in range(40):  # 40 batches of 50: 10 windows per topic, the market shifted after 4
        market = scored(rng, 50, "market", SHIFTED if batch >= 16 else STEADY, start)
        social = scored(rng, 50, "social", STEADY, start)
        start += 50
        redelivered = [ScoredEvent(**{**{f: getattr(ev, f) for f in ev.__slots__}, "status": "duplicate"})
                       for ev in market[:10]]  # fmt: skip
        hook(market + social + redelivered, store)
    assert value("sentimon_drift_windows_total", "market") == 10  # duplicates not counted
    assert value("sentimon_drift_detected", "market", signal="label_mix") == 1
    assert value("sentimon_drift_label_js", "market") >= 0.1
    for signal in SIGNALS:
        assert value("sentimon_drift_detected", "social", signal=signal) == 0, signal
    assert value("sentimon_drift_unknown_token_ratio", "social") > 0  # 'zzqx' and most words are [UNK] here
    track = hook.monitor and hook.monitor.tracks[("tiny-transformer", "market")]
    assert track and track.since["label_mix"] - 16 * 50 <= 2 * WINDOW

    # A new reference (here: the shifted traffic) is picked up at the next batch, and the tracks start over.
    time.sleep(0.01)
    built = scored(random.Random(3), 6 * WINDOW, "market", SHIFTED)
    counts = counter.count([ev.text for ev in built])
    build_reference([observation(ev, *c) for ev, c in zip(built, counts, strict=True)], WINDOW).save(ref)
    hook(scored(rng, 50, "market", SHIFTED, start), store)
    assert hook.monitor is not None and hook.monitor.reference.get("tiny-transformer", "social") is None
    assert value("sentimon_drift_detected", "market", signal="label_mix") is None  # cleared with the old reference


def test_drift_metric_names_follow_the_conventions() -> None:
    registry = CollectorRegistry()
    metrics = DriftMetrics(registry)
    metrics.windows.labels(model="m", topic="t").inc()
    for family in registry.collect():
        assert re.fullmatch(r"sentimon_drift_[a-z_]+", family.name), family.name
        if family.type == "counter":
            assert family.name.endswith("windows"), family.name  # exposed as sentimon_drift_windows_total
        for sample in family.samples:
            assert set(sample.labels) <= {"model", "topic", "signal"}
