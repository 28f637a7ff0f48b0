import time
from datetime import UTC, datetime

import pytest

from sentimon.alerts.evaluate import evaluate
from sentimon.alerts.schema import load_rulesets
from sentimon.replay.timeline import (
    MARKET_SOURCE,
    MINUTE_MS,
    EntityProfile,
    Episode,
    TimelineSpec,
    generate,
    last_session_date,
    score_detection,
    trading_day,
)
from tests.alerts.fakes import FakeWindows

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


def test_tickers_draw_from_the_market_pool_and_carry_the_market_source() -> None:
    market = {label: [f"{label} headline {i}" for i in range(5)] for label in POOL}
    spec = trading_day(minutes=60)
    messages = generate(spec, POOL, market)
    kinds = {e.name: e.kind for e in spec.entities}
    for m in messages:
        stock = kinds[m["entities"][0]] == "stock"
        assert ("headline" in m["text"]) == stock
        assert (m["source"] == MARKET_SOURCE) == stock
    with pytest.raises(ValueError, match="no negative"):
        generate(spec, POOL, {**market, "negative": []})


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


def test_history_is_the_day_before_shaped_like_a_trading_day() -> None:
    spec = trading_day(date="2026-12-03", minutes=390)  # a Thursday; New York is on EST (UTC-5)
    assert spec.session_start_ms == _utc("2026-12-03T14:30") and spec.start_ms == _utc("2026-12-02T14:30")
    messages = generate(spec, POOL)

    def rate(entity: str, start: str, end: str) -> float:
        a, b = _utc(start), _utc(end)
        return sum(m["entities"] == [entity] and a <= m["ts"] < b for m in messages) / ((b - a) / MINUTE_MS)

    yesterday, night, today = rate("AAPL", *_DAY_BEFORE), rate("AAPL", *_NIGHT), rate("AAPL", *_MORNING)
    assert yesterday == pytest.approx(today, rel=0.15) and night < 0.4 * today  # a session, then a quiet night
    # Brands are talked about round the clock: no market hours for 'acme air'.
    assert rate("acme air", *_NIGHT) == pytest.approx(rate("acme air", *_MORNING), rel=0.2)
    assert all(ep.start_ms >= spec.session_start_ms for ep in spec.episodes)


_DAY_BEFORE = ("2026-12-02T14:30", "2026-12-02T21:00")
_NIGHT = ("2026-12-02T22:00", "2026-12-03T13:00")
_MORNING = ("2026-12-03T14:30", "2026-12-03T17:00")  # before TSLA's episode


def _utc(iso: str) -> int:
    return int(datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp() * 1000)


def test_sessions_open_at_half_past_nine_in_new_york_summer_and_winter() -> None:
    assert trading_day(date="2026-07-15", history_min=0).start_ms == _utc("2026-07-15T13:30")  # EDT
    assert trading_day(date="2026-01-15", history_min=0).start_ms == _utc("2026-01-15T14:30")  # EST


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2026-12-04T16:57", "2026-12-03"),  # Friday before the close: Thursday's session
        ("2026-12-04T21:00", "2026-12-04"),  # Friday at the close
        ("2026-12-05T12:00", "2026-12-04"),  # Saturday
        ("2026-12-07T23:00", "2026-12-04"),  # Monday evening: Monday's day before is a Sunday, so Friday
        ("2026-12-08T21:30", "2026-12-08"),  # Tuesday after the close
    ],
)
def test_last_session_date_is_the_most_recent_ended_tuesday_to_friday(now: str, expected: str) -> None:
    assert last_session_date(_utc(now)).isoformat() == expected


def test_the_default_day_is_recent_and_over() -> None:
    """Played records must be younger than the raw topics' week of retention, and never in the future."""
    spec = trading_day()
    now_ms = time.time() * 1000
    assert spec.end_ms <= now_ms and now_ms - spec.start_ms < 6 * 24 * 60 * MINUTE_MS


def test_volume_spike_rule_catches_the_spike_and_not_the_open() -> None:
    """The shipped stock rule over the planted day's counts (volume does not depend on the model): the open
    after the day before is normal; only NVDA's spike breaches, and only while it lasts."""
    spec = trading_day(date="2026-12-03")
    reader = FakeWindows()
    for m in generate(spec, POOL):
        reader.add(m["entities"][0], m["ts"], m["label"], 0.0)
    stock = next(rs for rs in load_rulesets() if rs.name == "stock")
    rule = next(r for r in stock.rules if r.name == "volume-spike")
    spike = next(ep for ep in spec.episodes if ep.kind == "volume_spike" and ep.entity == "NVDA")
    breaches = {
        (ticker, t)
        for ticker in ("AAPL", "TSLA", "NVDA", "MSFT", "AMZN")
        for t in range(spec.session_start_ms, spec.end_ms, 5 * MINUTE_MS)
        if evaluate(rule, reader, ticker, t, stock.calendar).condition == "breach"
    }
    assert breaches, "the NVDA spike must breach"
    assert {ticker for ticker, _ in breaches} == {"NVDA"}
    assert all(spike.start_ms < t <= spike.end_ms + 60 * MINUTE_MS for _, t in breaches)
    assert min(t for _, t in breaches) - spike.start_ms <= 15 * MINUTE_MS
