import pytest

from sentimon.replay.timeline import (
    MINUTE_MS,
    EntityProfile,
    Episode,
    TimelineSpec,
    generate,
    score_detection,
    trading_day,
)

POOL = {
    "negative": [f"awful thing {i}" for i in range(20)],
    "neutral": [f"plain thing {i}" for i in range(20)],
    "positive": [f"great thing {i}" for i in range(20)],
}


def test_same_seed_same_messages_other_seed_differs() -> None:
    a = generate(trading_day(minutes=60, seed=3), POOL)
    b = generate(trading_day(minutes=60, seed=3), POOL)
    c = generate(trading_day(minutes=60, seed=4), POOL)
    assert a == b
    assert a != c


def test_messages_are_valid_sorted_and_uniquely_identified() -> None:
    spec = trading_day(minutes=60)
    messages = generate(spec, POOL)
    assert [m["ts"] for m in messages] == sorted(m["ts"] for m in messages)
    assert len({m["id"] for m in messages}) == len(messages)
    assert all(spec.start_ms <= m["ts"] < spec.end_ms for m in messages)
    for m in messages:
        assert m["label"] in ("negative", "neutral", "positive")
        assert m["entities"] and m["text"]


def test_planted_episodes_change_mix_and_volume() -> None:
    spec = trading_day(minutes=390)
    messages = generate(spec, POOL)
    shift = next(ep for ep in spec.episodes if ep.entity == "TSLA")
    spike = next(ep for ep in spec.episodes if ep.entity == "NVDA")

    def stats(entity: str, inside: bool, ep: Episode) -> tuple[float, float]:
        ms = [m for m in messages if m["entities"] == [entity] and (ep.start_ms <= m["ts"] < ep.end_ms) == inside]
        episode_min = (ep.end_ms - ep.start_ms) / MINUTE_MS
        span_min = episode_min if inside else spec.duration_min - episode_min
        return sum(m["label"] == "negative" for m in ms) / len(ms), len(ms) / span_min

    neg_in, _ = stats("TSLA", True, shift)
    neg_out, _ = stats("TSLA", False, shift)
    assert neg_in > 0.6 > 0.3 > neg_out
    _, rate_in = stats("NVDA", True, spike)
    _, rate_out = stats("NVDA", False, spike)
    assert rate_in > 4 * rate_out


def test_spec_validation() -> None:
    e = (EntityProfile("X", "stock", 1.0, "$X"),)
    with pytest.raises(ValueError, match="unknown entity"):
        TimelineSpec(0, 10, e, (Episode("Y", "volume_spike", 0, MINUTE_MS),))
    with pytest.raises(ValueError, match="outside"):
        TimelineSpec(0, 10, e, (Episode("X", "volume_spike", 0, 20 * MINUTE_MS),))
    with pytest.raises(ValueError, match="no negative"):
        generate(TimelineSpec(0, 10, e), {"neutral": ["a"], "positive": ["b"]})


def test_detection_scoring() -> None:
    eps = [
        Episode("A", "negative_shift", 10 * MINUTE_MS, 20 * MINUTE_MS),
        Episode("B", "volume_spike", 30 * MINUTE_MS, 40 * MINUTE_MS),
        Episode("C", "volume_spike", 50 * MINUTE_MS, 55 * MINUTE_MS),
    ]
    alerts = [
        {"entity": "A", "started_at_ms": 13 * MINUTE_MS},  # detects A after 3 min
        {"entity": "B", "started_at_ms": 31 * MINUTE_MS},  # detects B after 1 min
        {"entity": "D", "started_at_ms": 31 * MINUTE_MS},  # a control entity: false alert
        {"entity": "A", "started_at_ms": 90 * MINUTE_MS},  # long after A: false alert
    ]
    report = score_detection(alerts, eps)
    assert report.recall == pytest.approx(2 / 3)
    assert report.precision == pytest.approx(2 / 4)
    assert report.delays_s == {f"A/negative_shift@{10 * MINUTE_MS}": 180.0, f"B/volume_spike@{30 * MINUTE_MS}": 60.0}
    assert [m["entity"] for m in report.missed] == ["C"]
    assert len(report.false_alerts) == 2
    assert score_detection([], eps).precision is None


def test_lead_in_is_quiet_history_before_the_open() -> None:
    spec = trading_day(minutes=60, lead_in_min=120)
    assert spec.duration_min == 180 and spec.session_start_ms == spec.start_ms + 120 * MINUTE_MS
    assert all(ep.start_ms >= spec.session_start_ms for ep in spec.episodes)
    messages = generate(spec, POOL)
    before = sum(m["ts"] < spec.session_start_ms for m in messages) / 120
    after = sum(m["ts"] >= spec.session_start_ms for m in messages) / 60
    assert before < 0.5 * after
