"""The console's pure parts: board ranking and aggregates, timeline steps, alert filters and episodes, worker
status from an exposition, example book, links."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from sentimon.console import entity_link
from sentimon.console.examples import ExampleBook
from sentimon.console.status import worker_status
from sentimon.console.views import (
    HOUR_MS,
    board,
    episodes,
    filter_alerts,
    iso,
    now_ms,
    parse_iso,
    timeline,
    timeline_step,
)
from sentimon.streams.metrics import StreamMetrics
from tests.alerts.fakes import MIN, T0, FakeWindows


class Windows(FakeWindows):
    """The fake reader plus the two calls the console adds: a stepped series and the watermark."""

    def series(self, entity, start_ms, end_ms, step_ms=None):  # type: ignore[override]
        step = step_ms or self.bucket_ms
        from sentimon.streams.windows import BucketStats

        return [BucketStats(s, self.stats(entity, step, s + step)) for s in range(start_ms, end_ms, step)]

    def watermark(self):
        return max((b for _, b in self.buckets), default=None)


def alert(entity: str, state: str = "firing", severity: str = "critical", kind: str = "level", **kw) -> dict:
    return {"rule": f"opinion/{kind}", "entity": entity, "state": state, "severity": severity, "rule_kind": kind,
            "started_at": iso(T0 + 30 * MIN), "resolved_at": None, "payload": {"summary": f"{entity} bad"}, **kw}


def windows() -> Windows:
    w = Windows()
    w.fill("BIG", T0, T0 + 120 * MIN, 10, "positive", 0.5)
    w.fill("NEG", T0 + 60 * MIN, T0 + 120 * MIN, 2, "negative", -0.8)
    w.fill("OLD", T0 - 30 * HOUR_MS, T0 - 29 * HOUR_MS, 5)  # outside 24 h
    return w


def test_board_ranks_firing_first_then_volume_and_reads_event_time() -> None:
    w = windows()
    end = now_ms(w, wall_ms=0)
    assert end == T0 + 119 * MIN + 1  # just past the newest bucket, not the wall clock
    got = board(w, end, [alert("NEG"), alert("BIG", state="resolved")], limit=10)
    assert [r["entity"] for r in got["entities"]] == ["NEG", "BIG"]
    neg, big = got["entities"]
    assert neg["h1"] == {"mentions": 120, "mean_score": pytest.approx(-0.8), "negative": 1.0, "positive": 0.0}
    assert big["h24"]["mentions"] == 1200 and big["h1"]["mentions"] == 600
    assert len(big["spark"]["mentions"]) == 24 and big["spark"]["mentions"][-1] == 50
    assert [a["rule"] for a in neg["firing"]] == ["opinion/level"] and big["firing"] == []
    assert [r["entity"] for r in board(w, end, [], limit=1)["entities"]] == ["BIG"]


def test_timeline_steps_keep_the_chart_small_and_whole_buckets() -> None:
    assert timeline_step(HOUR_MS, MIN) == MIN
    assert timeline_step(24 * HOUR_MS, MIN) == 6 * MIN
    assert timeline_step(7 * 24 * HOUR_MS, MIN) == 42 * MIN
    t = timeline(windows(), "NEG", T0 + 120 * MIN, 2 * HOUR_MS)
    assert len(t["t"]) == 120 and sum(t["mentions"]) == 120 and sum(t["negative"]) == 120
    assert t["t"][0] == T0 // 1000 and t["mean_score"][0] is None and t["mean_score"][-1] == pytest.approx(-0.8)


def test_episodes_span_to_resolve_or_now_and_filters_combine() -> None:
    resolved = alert("B", state="resolved", severity="warning", kind="spike", resolved_at=iso(T0 + 50 * MIN))
    rows = [alert("A"), resolved, {"rule": "x", "entity": "C", "started_at": None}]
    spans = episodes(rows, T0 + 90 * MIN)
    assert [(e["start_ms"], e["end_ms"]) for e in spans] == [(T0 + 30 * MIN, T0 + 90 * MIN),
                                                              (T0 + 30 * MIN, T0 + 50 * MIN)]  # fmt: skip
    assert [a["entity"] for a in filter_alerts(rows[:2], state="firing")] == ["A"]
    assert [a["entity"] for a in filter_alerts(rows[:2], severity="warning", kind="spike")] == ["B"]
    assert [a["entity"] for a in filter_alerts(rows[:2], entity="b")] == ["B"]
    assert [a["entity"] for a in filter_alerts(rows[:2], text="A BAD")] == ["A"]
    assert filter_alerts(rows[:2], text="nothing") == []
    assert parse_iso("not a time") is None and parse_iso(iso(T0)) == T0


def test_worker_status_from_the_workers_own_exposition() -> None:
    registry = CollectorRegistry()
    m = StreamMetrics(registry)
    m.set_model("vader", "3.3.2")
    m.messages.labels(topic="raw", outcome="applied").inc(40)
    m.messages.labels(topic="raw", outcome="rejected").inc(2)
    m.dlq.labels(reason="bad_json").inc(2)
    m.batch_size.observe(30)
    m.batch_size.observe(10)
    m.inference_seconds.observe(0.3)
    m.inference_seconds.observe(0.1)
    m.consumer_lag.labels(topic="raw").set(0)
    got = worker_status(generate_latest(registry).decode())
    assert got["model"] == {"name": "vader", "version": "3.3.2", "tier": "lexicon"}
    assert got["messages"] == {"applied": 40, "rejected": 2} and got["dlq"] == {"bad_json": 2}
    assert got["batches"] == 2 and got["mean_batch_size"] == 20 and abs(got["mean_inference_s"] - 0.2) < 1e-9
    assert got["lag"] == [{"topic": "raw", "partition": "all", "messages": 0, "seconds": 0}]
    assert got["errors"] == {"scorer": 0, "redis": 0}


def test_example_book_keeps_the_newest_per_label_and_stays_bounded() -> None:
    book = ExampleBook(per_label=2, max_entities=2)
    for i in range(3):
        book.add({"id": f"n{i}", "ts": i, "entities": ["A", "A"], "text": f"awful delay {i}", "label": "negative",
                  "score": -0.9, "status": "applied"})  # fmt: skip
    book.add({"id": "d", "entities": ["A"], "text": "dup", "label": "positive", "status": "duplicate"})
    book.add({"id": "x", "entities": ["A"], "text": "  ", "label": "positive"})
    got = book.for_entity("A")
    assert [e["id"] for e in got["examples"]["negative"]] == ["n2", "n1"]
    assert got["examples"]["positive"] == [] and got["top_terms"][:2] == ["awful", "delay"]
    book.add({"id": "b", "entities": ["B"], "text": "fine", "label": "neutral"})
    book.add({"id": "c", "entities": ["C"], "text": "fine", "label": "neutral"})
    assert book.for_entity("A")["examples"]["negative"] == []  # the least recently mentioned is dropped


def test_entity_links_quote_the_name_and_carry_the_time() -> None:
    assert entity_link("http://h:8088/", "acme air", T0) == f"http://h:8088/entity/acme%20air?range=6h&at={T0}"
    assert entity_link("http://h:8088", "BRK.B") == "http://h:8088/entity/BRK.B?range=6h"


def test_alert_links_follow_the_public_url_or_the_bind_address() -> None:
    from sentimon.core.settings import load_settings

    s = load_settings()
    assert s.console.entity_url("TSLA", T0) == f"http://127.0.0.1:8088/entity/TSLA?range=6h&at={T0}"
    s = s.replace(console={"public_url": "https://board.example/", "host": "0.0.0.0"})
    assert s.console.entity_url("acme air") == "https://board.example/entity/acme%20air?range=6h"
