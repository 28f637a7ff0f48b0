"""Event-time evaluation (pure, in memory): the same event history gives the same alerts whether it arrives
live (small batches), as a backlog after an outage (full batches spanning minutes) or in one replay batch;
evaluating at batch ends only -- the old behaviour -- misses the burst in a backlog."""

from __future__ import annotations

import random
import threading

import pytest

from sentimon.alerts.engine import AlertEngine
from sentimon.alerts.schedule import EvaluationSchedule, horizon_ms
from sentimon.alerts.schema import load_rulesets
from sentimon.alerts.store import MemoryStates

from .fakes import HOUR, MIN, T0, Event, FakeWindows

CHATTER = {
    "positive": ["what a great product, love it", "really happy with the new release"],
    "neutral": ["the store opens at nine", "new catalogue is out"],
    "negative": ["bad support today"],
}
BURST_TEXTS = ["awful, terrible service, worst ever", "horrible scam, hate it, disgusting"]


def history(start_ms: int, brand: str = "Acme", control: str = "Globex", seed: int = 3) -> list[dict]:
    """Three hours of chatter (2 a minute per entity, ~20% negative), then a 30-minute all-negative burst at
    5x the volume for ``brand``; ascending event times. Each message names its intended label."""
    rng = random.Random(seed)
    out: list[dict] = []
    for minute in range(3 * 60 + 30):
        for entity in (brand, control):
            burst = entity == brand and minute >= 180
            for j in range(10 if burst else 2):
                label = "negative" if burst else rng.choice(["positive", "neutral", "neutral", "positive", "negative"])
                text = rng.choice(BURST_TEXTS if burst else CHATTER[label])
                ts = start_ms + minute * MIN + (j * 6_000 if burst else j * 30_000) + rng.randrange(1_000)
                out.append({"id": f"{entity}-{minute}-{j}", "ts": ts, "entities": [entity], "text": text,
                            "source": "twitter", "label": label})  # fmt: skip
    out.sort(key=lambda m: m["ts"])
    return out


def as_events(messages: list[dict]) -> list[Event]:
    score = {"negative": -0.8, "neutral": 0.0, "positive": 0.7}
    return [Event(m["id"], m["ts"], tuple(m["entities"]), m["label"], m.get("score", score[m["label"]]), m["text"],
                  m["source"]) for m in messages]  # fmt: skip


def alerts(batches: list[list[Event]], rulesets=None, batch_end_only: bool = False, sink=None) -> list[tuple]:
    """What the stream hook does per batch -- windows updated, then evaluated -- on in-memory windows."""
    rulesets = rulesets or load_rulesets()
    windows = FakeWindows()
    sent: list[dict] = [] if sink is None else sink
    engine = AlertEngine(rulesets, MemoryStates(), lambda note, payload: sent.append(payload))
    schedule = EvaluationSchedule(MIN, horizon_ms(rulesets))
    for batch in batches:
        for ev in batch:
            for entity in ev.entities:
                windows.add(entity, ev.ts_ms, ev.label, ev.score)
        if batch_end_only:
            engine.evaluate(windows, {e for ev in batch for e in ev.entities}, max(ev.ts_ms for ev in batch))
        else:
            engine.evaluate_at(windows, schedule.crossed(batch, engine.watches))
    return [(p["entity"], p["rule"], p["kind"], p["at"]) for p in sent]


def live(events: list[Event], every_ms: int = 2_000) -> list[list[Event]]:
    out: dict[int, list[Event]] = {}
    for ev in events:
        out.setdefault(ev.ts_ms // every_ms, []).append(ev)
    return list(out.values())


def chunks(events: list[Event], size: int = 256) -> list[list[Event]]:
    return [events[i : i + size] for i in range(0, len(events), size)]


def test_live_backlog_and_replay_give_the_same_alerts_with_the_default_rules():
    events = as_events(history(T0))
    got_live = alerts(live(events))
    assert got_live == alerts(chunks(events))
    assert got_live == alerts([events])
    fired = {(entity, rule) for entity, rule, kind, _ in got_live if kind == "firing"}
    assert ("Acme", "opinion/negative-share-high") in fired
    assert all(entity == "Acme" for entity, _ in fired)  # the control entity never alerts


def test_evaluating_at_batch_ends_only_misses_the_burst_in_a_backlog():
    # The old behaviour, for contrast: this is what made a backlog fire nothing.
    events = as_events(history(T0))
    rules = load_rulesets()
    backlog = alerts(chunks(events, 2048), rules, batch_end_only=True)
    assert ("Acme", "opinion/negative-share-high", "firing") not in [a[:3] for a in backlog]
    assert ("Acme", "opinion/negative-share-high", "firing") in [a[:3] for a in alerts(chunks(events, 2048), rules)]


def test_for_is_measured_in_event_time_whatever_the_batching():
    events = as_events(history(T0))
    for batches in (live(events), chunks(events, 700)):
        payloads: list[dict] = []
        alerts(batches, sink=payloads)
        [firing] = [p for p in payloads if p["rule"] == "opinion/negative-share-high"]
        # Pending from the first boundary the 2-hour share crossed 40% to exactly 15 event-time minutes later.
        assert firing["pending_since"] == "2026-01-01T03:06:59.999Z" and firing["at"] == "2026-01-01T03:21:59.999Z"


def test_schedule_evaluates_every_boundary_crossed_once_in_order():
    s = EvaluationSchedule(MIN, horizon_ms=HOUR)
    first = [Event("a", T0 + 10, ("X",), "neutral", 0.0), Event("b", T0 + 3 * MIN + 5, ("X", "Y"), "neutral", 0.0)]
    assert s.crossed(first) == {T0 + MIN: ["X"], T0 + 2 * MIN: ["X"], T0 + 3 * MIN: ["X"]}  # Y: first seen at b
    again = [Event("c", T0 + 3 * MIN + 9, ("X",), "neutral", 0.0)]
    assert s.crossed(again) == {}  # no new boundary: a re-delivered or same-bucket batch evaluates nothing
    late = [Event("d", T0 + MIN, ("X",), "neutral", 0.0), Event("e", T0 + 5 * MIN, ("Y",), "neutral", 0.0)]
    assert s.crossed(late) == {T0 + 4 * MIN: ["Y"], T0 + 5 * MIN: ["Y"]}
    assert s.crossed([Event("f", T0 + 4 * MIN, ("Z",), "neutral", 0.0)], watched=lambda e: e != "Z") == {}


def test_schedule_catches_up_quiet_entities_and_caps_long_gaps_at_the_horizon():
    s = EvaluationSchedule(MIN, horizon_ms=10 * MIN)
    s.crossed([Event("a", T0, ("X",), "neutral", 0.0), Event("b", T0 + MIN, ("X",), "neutral", 0.0)])
    assert s.catch_up(T0 + 3 * MIN + 30_000) == {T0 + 2 * MIN: ["X"], T0 + 3 * MIN: ["X"]}
    assert s.catch_up(T0 + 3 * MIN + 50_000) == {}
    gap = s.crossed([Event("c", T0 + 5 * HOUR, ("X",), "neutral", 0.0)])
    assert list(gap) == list(range(T0 + 5 * HOUR - 10 * MIN, T0 + 5 * HOUR + 1, MIN))


def test_schedule_is_lru_bounded_and_thread_safe():
    s = EvaluationSchedule(MIN, horizon_ms=HOUR, max_entities=100)
    threads = [
        threading.Thread(
            target=lambda k=k: [
                s.crossed([Event(str(i), T0 + i * MIN, (f"E{k}-{i}",), "neutral", 0.0)]) for i in range(200)
            ]
        )  # fmt: skip
        for k in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(s) == 100
    with pytest.raises(ValueError, match="step_ms"):
        EvaluationSchedule(0, HOUR)


def test_no_state_is_kept_for_entities_that_never_breach():
    events = as_events(history(T0))
    rulesets = load_rulesets()
    states = MemoryStates()
    engine = AlertEngine(rulesets, states, lambda note, payload: None)
    schedule = EvaluationSchedule(MIN, horizon_ms(rulesets))
    windows = FakeWindows()
    for batch in chunks(events):
        for ev in batch:
            windows.add(ev.entities[0], ev.ts_ms, ev.label, ev.score)
        engine.evaluate_at(windows, schedule.crossed(batch, engine.watches))
    kept = {entity for _, entity in states._states}
    assert kept == {"Acme"}  # the control entity, evaluated every minute for 3.5 hours, left nothing behind


def test_a_boundary_waits_for_the_watermark_when_another_partition_is_behind():
    s = EvaluationSchedule(MIN, horizon_ms=HOUR)
    ahead = [Event("a", T0, ("X",), "neutral", 0.0), Event("b", T0 + 5 * MIN, ("X",), "neutral", 0.0)]
    # Another partition's events for these minutes are not in yet: the watermark is at T0 + 2 min.
    assert s.crossed(ahead, until_ms=T0 + 2 * MIN + 7) == {T0 + MIN: ["X"], T0 + 2 * MIN: ["X"]}
    # The lagging partition's batch (another entity) moves the watermark on: X's boundaries follow.
    behind = [Event("c", T0 + 4 * MIN + 3, ("Y",), "neutral", 0.0)]
    assert s.crossed(behind, until_ms=T0 + 4 * MIN + 3) == {T0 + 3 * MIN: ["X"], T0 + 4 * MIN: ["X"]}
    assert s.crossed([], until_ms=T0 + 9 * MIN) == {T0 + 5 * MIN: ["X"]}  # as far as X's events went


def test_catch_up_stops_once_a_quiet_entity_has_empty_windows():
    s = EvaluationSchedule(MIN, horizon_ms=10 * MIN)
    s.crossed([Event("a", T0, ("X",), "neutral", 0.0)])
    due = s.catch_up(T0 + 5 * HOUR)
    assert list(due) == list(range(T0 + MIN, T0 + 11 * MIN + 1, MIN))  # up to the horizon past its last event
    assert s.catch_up(T0 + 6 * HOUR) == {}


def test_memory_examples_keep_a_bounded_number_of_entities():
    from sentimon.alerts.examples import MemoryExamples

    examples = MemoryExamples(size=2, max_entities=3)
    for i in range(10):
        examples.add([Event(f"x{i}", T0 + i, (f"E{i}",), "negative", -1.0, "awful")])
    assert [e for e in (f"E{i}" for i in range(10)) if examples.recent(e)] == ["E7", "E8", "E9"]
