"""Deterministic event-time timelines through evaluate -> state machine -> notifications (pure, in memory)."""

from __future__ import annotations

from datetime import datetime

from sentimon.alerts.engine import AlertEngine
from sentimon.alerts.evaluate import Observation, evaluate
from sentimon.alerts.schema import parse_ruleset
from sentimon.alerts.state import AlertState, step
from sentimon.alerts.store import MemoryStates

from .fakes import DAY, HOUR, MIN, T0, FakeWindows


def ruleset(*rules: dict, **extra) -> object:
    return parse_ruleset({"name": "t", "rules": list(rules), **extra})


NEG_LEVEL = {"name": "neg", "kind": "level", "metric": "negative_share", "window": "10m", "min_volume": 10,
             "op": "above", "threshold": 0.4, "clear": 0.3, "for": "5m"}  # fmt: skip


def run(rs, reader, entities, start_ms, end_ms, every_ms=MIN, engine=None):
    sent: list[dict] = []
    engine = engine or AlertEngine([rs], MemoryStates(), lambda note, payload: sent.append(payload))
    for t in range(start_ms, end_ms, every_ms):
        engine.evaluate(reader, entities, t)
    return sent


def kinds(sent):
    return [(p["entity"], p["kind"]) for p in sent]


def test_short_blip_stays_pending_and_never_fires():
    # A blip keeps breaching while it is inside the 5-minute window: 3 + 5 minutes < the 10 minutes of `for`.
    rs = ruleset({**NEG_LEVEL, "window": "5m", "for": "10m"})
    w = FakeWindows()
    w.fill("AAPL", T0, T0 + HOUR, 10)  # neutral background
    w.fill("AAPL", T0 + 20 * MIN, T0 + 23 * MIN, 40, "negative", -0.9)  # 3-minute blip
    engine = AlertEngine([rs], states := MemoryStates(), lambda n, p: sent.append(p))
    sent: list[dict] = []
    phases = []
    for t in range(T0, T0 + HOUR, MIN):
        engine.evaluate(w, ["AAPL"], t)
        phases.append(states.get("t/neg", "AAPL").phase)
    assert "pending" in phases  # the blip was seen ...
    assert sent == []  # ... but never held for 5 minutes
    assert phases[-1] == "inactive"


def test_sustained_negative_shift_fires_once_and_resolves_once_control_silent():
    rs = ruleset(NEG_LEVEL)
    w = FakeWindows()
    for e in ("AAPL", "MSFT"):
        w.fill(e, T0, T0 + 3 * HOUR, 10)
    w.fill("AAPL", T0 + HOUR, T0 + 2 * HOUR, 20, "negative", -0.8)
    sent = run(rs, w, ["AAPL", "MSFT"], T0, T0 + 3 * HOUR)
    assert kinds(sent) == [("AAPL", "firing"), ("AAPL", "resolved")]
    firing, resolved = sent
    assert firing["direction"] == "up" and firing["value"] > 0.4
    # pending started with the first breaching minute; fired 5 minutes (the rule's `for`) later
    assert firing["pending_since"] < firing["started_at"] == resolved["started_at"]
    assert resolved["resolved_at"] > firing["started_at"]


def test_replaying_the_same_history_yields_the_same_alerts():
    rs = ruleset(NEG_LEVEL)
    w = FakeWindows()
    w.fill("AAPL", T0, T0 + 3 * HOUR, 10)
    w.fill("AAPL", T0 + HOUR, T0 + 2 * HOUR, 20, "negative", -0.8)
    first = run(rs, w, ["AAPL"], T0, T0 + 3 * HOUR)
    second = run(rs, w, ["AAPL"], T0, T0 + 3 * HOUR)
    assert first == second and len(first) == 2


def test_hysteresis_prevents_flapping():
    # Negative share oscillates between 0.35 and 0.45 minute by minute after the first breach.
    def timeline(rule):
        states, notes = MemoryStates(), []
        for i in range(60):
            share = 0.45 if i % 2 == 0 else 0.35
            obs = evaluate_share(rule, share, T0 + i * MIN)
            note = states.apply(rule, "t/x", obs)
            if note:
                notes.append(note.kind)
        return notes

    with_band = ruleset({**NEG_LEVEL, "for": "0s"}).rules[0]
    without_band = ruleset({**NEG_LEVEL, "for": "0s", "clear": None}).rules[0]
    assert timeline(with_band) == ["firing"]
    flapping = timeline(without_band)
    assert flapping.count("firing") == 30 and flapping.count("resolved") == 30


def evaluate_share(rule, share, at_ms):
    w = FakeWindows()
    neg = round(100 * share)
    w.add("X", at_ms, "negative", -1.0, neg)
    w.add("X", at_ms, "neutral", 0.0, 100 - neg)
    return evaluate(rule, w, "X", at_ms)


def test_cooldown_holds_then_allows_a_new_episode():
    rule = ruleset({**NEG_LEVEL, "for": "0s", "cooldown": "30m"}).rules[0]
    states, notes = MemoryStates(), []
    shares = [0.5] * 5 + [0.1] * 5 + [0.5] * 10 + [0.1] * 20 + [0.5] * 5
    for i, share in enumerate(shares):
        note = states.apply(rule, "t/x", evaluate_share(rule, share, T0 + i * MIN))
        if note:
            notes.append((note.kind, (note.at_ms - T0) // MIN))
    # fire at 0, resolve at 5; breach at 10..19 is inside the 30-minute cooldown; the breach at 40 is not.
    assert notes == [("firing", 0), ("resolved", 5), ("firing", 40)]


def test_renotify_repeats_a_firing_alert_but_firing_is_sent_once():
    rule = ruleset({**NEG_LEVEL, "for": "0s", "renotify": "10m"}).rules[0]
    states, notes = MemoryStates(), []
    for i in range(31):
        note = states.apply(rule, "t/x", evaluate_share(rule, 0.6, T0 + i * MIN))
        if note:
            notes.append((note.kind, (note.at_ms - T0) // MIN))
    assert notes == [("firing", 0), ("renotify", 10), ("renotify", 20), ("renotify", 30)]


def test_redelivered_and_stale_observations_are_ignored():
    rule = ruleset({**NEG_LEVEL, "for": "0s"}).rules[0]
    obs = Observation("X", T0, "breach", 0.6, None, 50)
    state, note = step(rule, "t/x", AlertState(), obs)
    assert note is not None and note.kind == "firing"
    again, none = step(rule, "t/x", state, obs)
    assert none is None and again == state
    older = Observation("X", T0 - MIN, "clear", 0.1, None, 50)
    assert step(rule, "t/x", state, older) == (state, None)


def test_too_little_volume_never_fires():
    rs = ruleset(NEG_LEVEL)
    w = FakeWindows()
    w.fill("X", T0, T0 + HOUR, 1, "negative", -0.9)  # 100% negative but under min_volume (10 per 10 min)... just
    sent = run(rs, w, ["X"], T0, T0 + 9 * MIN)
    assert sent == []
    obs = evaluate(rs.rules[0], w, "X", T0 + 5 * MIN)
    assert obs.value is None and obs.condition == "clear" and obs.count == 6


def test_silence_fires_for_a_normally_busy_entity_only():
    rs = ruleset({"name": "quiet", "kind": "silence", "window": "1h", "baseline": "1d", "min_rate": 5})
    w = FakeWindows()
    w.fill("BUSY", T0, T0 + DAY, 1)  # 60 an hour for a day, then nothing
    w.fill("RARE", T0, T0 + DAY, 0)
    w.add("RARE", T0 + HOUR, "neutral", 0.0, 2)  # 2 mentions a day: quiet is normal
    sent: list[dict] = []
    engine = AlertEngine([rs], MemoryStates(), lambda n, p: sent.append(p))
    for t in range(T0 + DAY, T0 + DAY + 3 * HOUR, 5 * MIN):  # the timer, every 5 minutes
        engine.check_silence(w, t)
    assert kinds(sent) == [("BUSY", "firing")]
    assert sent[0]["value"] == 0 and sent[0]["direction"] == "down" and sent[0]["baseline"] >= 5
    assert sent[0]["started_at"].startswith("2026-01-02T01:00")  # first check with an empty last hour
    w.add("BUSY", T0 + DAY + 3 * HOUR, "neutral", 0.0, 3)  # data is back
    engine.check_silence(w, T0 + DAY + 3 * HOUR)
    assert kinds(sent)[-1] == ("BUSY", "resolved")


def test_market_hours_only_holds_still_when_closed():
    rs = ruleset(
        {
            "name": "quiet",
            "kind": "silence",
            "window": "1h",
            "baseline": "1d",
            "min_rate": 5,
            "market_hours_only": True,
        },  # fmt: skip
        calendar={"timezone": "America/New_York", "open": "09:30", "close": "16:00"},
    )
    w = FakeWindows()
    saturday = T0 + 2 * DAY  # 2026-01-03
    w.fill("AAPL", saturday - DAY, saturday, 5)
    engine = AlertEngine([rs], MemoryStates(), lambda n, p: sent.append(p))
    sent: list[dict] = []
    for t in range(saturday + 2 * HOUR, saturday + DAY, HOUR):
        engine.check_silence(w, t)
    assert sent == []
    thursday = T0 + 15 * HOUR  # 10:00 in New York; a fresh engine: event time cannot go back
    w.fill("AAPL", thursday - DAY - 2 * HOUR, thursday - 2 * HOUR, 5)
    AlertEngine([rs], MemoryStates(), lambda n, p: sent.append(p)).check_silence(w, thursday)
    assert kinds(sent) == [("AAPL", "firing")]


def test_volume_spike_and_negative_share_spike():
    rs = ruleset(
        {"name": "vol", "kind": "spike", "metric": "volume", "window": "1h", "baseline": "12h", "k": "balanced",
         "min_volume": 20, "min_baseline": 50},
        {"name": "negz", "kind": "spike", "metric": "negative_share", "window": "1h", "baseline": "12h",
         "k": "conservative", "min_volume": 20, "min_baseline": 50},
    )  # fmt: skip
    w = FakeWindows()
    for e in ("HOT", "CALM"):
        w.fill(e, T0 - HOUR, T0 + 13 * HOUR, 1)
    w.fill("HOT", T0 + 12 * HOUR, T0 + 12 * HOUR + 30 * MIN, 3, "negative", -0.9)
    end = T0 + 12 * HOUR + 30 * MIN
    vol = evaluate(rs.rules[0], w, "HOT", end)
    assert vol.condition == "breach" and vol.baseline == 60 and vol.value > 2
    negz = evaluate(rs.rules[1], w, "HOT", end)
    assert negz.condition == "breach" and negz.value > 3
    assert evaluate(rs.rules[0], w, "CALM", end).condition == "clear"
    assert evaluate(rs.rules[1], w, "CALM", end).condition == "clear"
    sent = run(rs, w, ["HOT", "CALM"], end, end + 1)
    assert sorted(kinds(sent)) == [("HOT", "firing"), ("HOT", "firing")]
    spike = next(p for p in sent if p["rule"] == "t/vol")
    assert spike["magnitude"]["z"] == spike["value"] and spike["magnitude"]["ratio"] > 2


def test_spike_needs_history_so_a_new_entity_does_not_fire():
    rs = ruleset({"name": "vol", "kind": "spike", "metric": "volume", "window": "1h", "baseline": "12h"})
    w = FakeWindows()
    w.fill("NEW", T0 + 12 * HOUR, T0 + 13 * HOUR, 5)
    assert evaluate(rs.rules[0], w, "NEW", T0 + 13 * HOUR).condition == "clear"


def test_surge_and_drop_ratios():
    rs = ruleset(
        {"name": "surge", "kind": "ratio", "window": "1h", "baseline": "1d", "direction": "up", "threshold": 1.5},
        {"name": "drop", "kind": "ratio", "window": "1h", "baseline": "1d", "direction": "down", "threshold": 0.5},
    )
    w = FakeWindows()
    w.fill("UP", T0, T0 + DAY, 1)
    w.fill("UP", T0 + DAY, T0 + DAY + HOUR, 2)
    w.fill("DOWN", T0, T0 + DAY, 2)
    w.fill("DOWN", T0 + DAY, T0 + DAY + HOUR, 0)
    w.add("DOWN", T0 + DAY + 30 * MIN, "neutral", 0.0, 10)
    now = T0 + DAY + HOUR - 1
    up = evaluate(rs.rules[0], w, "UP", now)
    assert up.condition == "breach" and abs(up.value - 2.0) < 1e-9 and up.baseline == 60
    assert evaluate(rs.rules[1], w, "UP", now).condition == "clear"
    down = evaluate(rs.rules[1], w, "DOWN", now)
    assert down.condition == "breach" and abs(down.value - 10 / 120) < 1e-9


def test_per_entity_override_changes_the_threshold_for_that_entity_only():
    rs = ruleset({**NEG_LEVEL, "for": "0s", "overrides": {"TSLA": {"threshold": 0.7, "clear": 0.6}}})
    w = FakeWindows()
    for e in ("TSLA", "AAPL"):
        w.add(e, T0, "negative", -1.0, 50)
        w.add(e, T0, "neutral", 0.0, 50)
    sent = run(rs, w, ["TSLA", "AAPL"], T0, T0 + 1)
    assert kinds(sent) == [("AAPL", "firing")]


def test_payload_carries_examples_terms_and_sources():
    from sentimon.alerts.examples import MemoryExamples

    from .fakes import Event

    rs = ruleset({**NEG_LEVEL, "for": "0s"})
    examples = MemoryExamples(size=3)
    events = [
        Event(f"m{i}", T0 + i, ("AAPL",), "negative", -0.9, f"battery recall for iphone {i} battery", src)
        for i, src in enumerate(["twitter", "news", "twitter", "twitter"])
    ] + [Event("p", T0, ("AAPL",), "positive", 0.9, "love it", "twitter"), Event("nt", T0, ("AAPL",), "negative", -1.0)]
    examples.add(events)
    examples.add(events)  # re-delivered batch: no duplicates
    w = FakeWindows()
    w.add("AAPL", T0, "negative", -1.0, 20)
    sent: list[dict] = []
    AlertEngine([rs], MemoryStates(), lambda n, p: sent.append(p), examples).evaluate(w, ["AAPL"], T0 + 10)
    (payload,) = sent
    assert payload["examples"] == [f"battery recall for iphone {i} battery" for i in (3, 2, 1)]
    assert payload["top_terms"][:2] == ["battery", "iphone"]
    assert payload["sources"] == ["twitter", "news"]


def test_notifications_serialize_deterministically():
    from sentimon.alerts.state import Notification

    rule = ruleset({**NEG_LEVEL, "for": "0s"}).rules[0]
    _, note = step(rule, "t/neg", AlertState(), Observation("X", T0, "breach", 0.6, 0.2, 50, {"z": 1.5}))
    assert Notification.from_json(note.to_json()) == note
    assert note.to_json() == Notification.from_json(note.to_json()).to_json()


def test_a_young_entity_is_not_a_surge_or_a_spike():
    rs = ruleset(
        {"name": "surge", "kind": "ratio", "window": "1h", "baseline": "7d", "direction": "up", "threshold": 1.5},
        {"name": "vol", "kind": "spike", "metric": "volume", "window": "1h", "baseline": "1d", "k": 2},
    )
    w = FakeWindows()
    now = T0 + 8 * DAY
    w.fill("YOUNG", now - DAY, now, 2)  # steady 120 an hour, but only for the last day
    w.fill("OLD", now - 8 * DAY, now - HOUR, 1)  # 60 an hour for a week, then 120 in the last hour
    w.fill("OLD", now - HOUR, now, 2)
    assert evaluate(rs.rules[0], w, "YOUNG", now - 1).condition == "clear"
    assert evaluate(rs.rules[0], w, "OLD", now - 1).condition == "breach"
    w.fill("NEWBIE", now - 3 * HOUR, now, 2)
    assert evaluate(rs.rules[1], w, "NEWBIE", now - 1).value is None
    assert evaluate(rs.rules[1], w, "OLD", now - 1).value is not None


def test_payloads_link_to_the_console_page_of_the_entity_at_the_alert_start():
    from sentimon.core.parts import ConsoleSettings

    rs = ruleset({**NEG_LEVEL, "for": "0s"})
    w = FakeWindows()
    w.fill("Acme Air", T0, T0 + HOUR, 10, "negative", -0.9)
    console = ConsoleSettings(public_url="https://board.example/sentimon")
    sent: list[dict] = []
    engine = AlertEngine([rs], MemoryStates(), lambda n, p: sent.append(p), link=console.entity_url)
    engine.evaluate(w, ["Acme Air"], T0 + 15 * MIN)
    [payload] = sent
    started_ms = int(datetime.fromisoformat(payload["started_at"]).timestamp() * 1000)
    assert payload["console_url"] == f"https://board.example/sentimon/entity/Acme%20Air?range=6h&at={started_ms}"
    without = AlertEngine([rs], MemoryStates(), lambda n, p: sent.append(p))
    without.evaluate(w, ["Acme Air"], T0 + 15 * MIN)
    assert "console_url" not in sent[-1]
