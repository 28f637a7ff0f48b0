"""The replay report's content without services: the series' resolution, totals with duplicates and dead letters
explained, and a plot that draws what its legend promises (checked on the figure's artists, not pixels)."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import pytest

from sentimon.replay import report as reporting
from sentimon.replay.run import ModelRun, ReplayStats
from sentimon.replay.timeline import Episode

MIN = 60_000
T0 = 1_764_000_000_000 - 1_764_000_000_000 % (60 * MIN)  # an hour boundary


@pytest.mark.parametrize(
    ("span_ms", "bucket_ms"),
    [(2 * 60 * MIN, MIN), (30 * 60 * MIN, 10 * MIN), (7 * 24 * 60 * MIN, 60 * MIN), (390 * MIN, 2 * MIN), (0, MIN)],
)
def test_the_bucket_gives_at_most_200_points_and_not_too_few(span_ms: int, bucket_ms: int) -> None:
    assert reporting.bucket_for(span_ms) == bucket_ms
    points = span_ms // bucket_ms
    assert points <= reporting.TARGET_POINTS and (span_ms < 100 * MIN or points >= 80)


def _event(i: int, ts: int, label: str) -> SimpleNamespace:
    score = {"negative": -0.8, "neutral": 0.0, "positive": 0.6}[label]
    probs = {k: float(k == label) for k in ("negative", "neutral", "positive")}
    return SimpleNamespace(message_id=f"m{i}", ts_ms=ts, label=label, score=score, probs=probs, text=f"text {i}",
                           extra={})  # fmt: skip


def _run(name: str, alerts: list[tuple[int, int | None]]) -> ModelRun:
    events = {}
    for i in range(240):  # two hours, two messages a minute; a negative stretch in the second hour
        ts = T0 + i * 30_000
        label = "negative" if 120 <= i < 180 else ("positive" if i % 3 else "neutral")
        events[f"m{i}"] = _event(i, ts, label)
    notes: list[dict] = []
    for k, (start, end) in enumerate(alerts):
        notes.append({"kind": "firing", "rule": "stock/negative", "entity": "TSLA", "episode": f"e{k}",
                      "started_at": reporting._iso(start)})  # fmt: skip
        if end is not None:
            notes.append({"kind": "resolved", "episode": f"e{k}", "resolved_at": reporting._iso(end)})
    settings = SimpleNamespace(windows=SimpleNamespace(prefix=f"replay:ns.{name}"))
    run = ModelRun(name, settings, SimpleNamespace(), None, events=events, notifications=notes)
    run.statuses = Counter({"applied": 240, "duplicate": 7, "late": 2})
    run.dead_letters = Counter({"lone_surrogate": 3, "invalid_json": 1})
    return run


@pytest.fixture
def report() -> dict:
    runs = [_run("vader", [(T0 + 65 * MIN, T0 + 95 * MIN)]), _run("static", [(T0 + 70 * MIN, None)])]
    stats = ReplayStats(records=253, wall_s=1.0, first_ts_ms=T0, last_ts_ms=T0 + 120 * MIN - 30_000)
    episodes = [Episode("TSLA", "negative_shift", T0 + 60 * MIN, T0 + 90 * MIN)]
    return reporting.build(runs, stats, topic="raw", episodes=episodes)


def test_the_json_carries_volume_and_sentiment_per_bucket(report: dict) -> None:
    assert report["bucket_ms"] == MIN
    series = report["models"]["vader"]["series"]
    assert len(series) == 120 and [b["start_ms"] for b in series] == list(range(T0, T0 + 120 * MIN, MIN))
    assert all(b["n"] == 2 for b in series)
    assert series[60]["negative"] == 2 and series[60]["mean_score"] == pytest.approx(-0.8)
    assert series[0]["negative"] == 0
    assert report["episodes"] == [{"entity": "TSLA", "kind": "negative_shift", "start_ms": T0 + 60 * MIN,
                                   "end_ms": T0 + 90 * MIN}]  # fmt: skip
    alerts = report["models"]["vader"]["alerts"]
    assert alerts[0]["resolved_at_ms"] == T0 + 95 * MIN
    assert report["models"]["static"]["alerts"][0]["resolved_at_ms"] is None  # still firing at the end


def test_totals_count_duplicates_late_and_dead_letters_by_reason(report: dict) -> None:
    totals = report["models"]["vader"]["totals"]
    by_reason = {"lone_surrogate": 3, "invalid_json": 1}
    assert totals == {"scored": 249, "unique_messages": 240, "applied": 240, "duplicate": 7, "late": 2,
                      "dead_letters": 4, "dead_letters_by_reason": by_reason}  # fmt: skip
    md = reporting.markdown(report, "r.png")
    assert "| vader | 253 | 240 | 7 | 2 | 4 | lone_surrogate 3, invalid_json 1 |" in md
    assert "Duplicates: an id already counted" in md and "Dead letters: records the worker would refuse" in md
    assert "Plotted per 1 min of event time." in md


def test_the_plot_draws_what_its_legend_promises(report: dict) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection  # what broken_barh draws

    fig = reporting.figure(report)
    try:
        ax_n, ax_neg, ax_al = fig.axes[:3]
        labels = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
        assert {"vader: messages", "static: messages", "vader: negative share", "static: negative share",
                "planted episode", "vader: alert episodes", "static: alert episodes"} <= set(labels)  # fmt: skip
        # Volume and negative share: one line per model with a point per bucket.
        assert [len(line.get_xdata()) for line in ax_n.get_lines()] == [120, 120]
        assert [len(line.get_xdata()) for line in ax_neg.get_lines()] == [120, 120]
        # Alert episodes: one bar per alert, on its model's row; the unresolved one runs to the replay's end.
        bars = [c for c in ax_al.collections if isinstance(c, PolyCollection)]
        assert len(bars) == 2
        # The planted episode is shaded on every panel.
        shaded = [p for ax in (ax_n, ax_neg, ax_al) for p in ax.patches if p.get_facecolor()[0] == 1.0]
        assert len(shaded) == 3
        assert "planted" in ax_n.get_title() and "alert episodes" in ax_n.get_title()
    finally:
        plt.close(fig)


def test_without_episodes_or_alerts_the_legend_promises_neither(report: dict) -> None:
    import matplotlib.pyplot as plt

    report = {**report, "episodes": None,
              "models": {k: {**m, "alerts": []} for k, m in report["models"].items()}}  # fmt: skip
    fig = reporting.figure(report)
    try:
        labels = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
        assert not any("planted" in x or "alert" in x for x in labels)
        assert "planted" not in fig.axes[0].get_title()
    finally:
        plt.close(fig)
