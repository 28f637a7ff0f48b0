"""Shared cases for the history, run against SQLite (test_history) and the real PostgreSQL (test_history_pg)."""

from __future__ import annotations

from sentimon.alerts.evaluate import Observation
from sentimon.alerts.history import History
from sentimon.alerts.payload import build_payload
from sentimon.alerts.schema import parse_ruleset
from sentimon.alerts.state import AlertState, step

from .fakes import MIN, T0

RS = parse_ruleset(
    {
        "name": "h",
        "rules": [
            {
                "name": "neg",
                "kind": "level",
                "metric": "negative_share",
                "window": "1h",
                "op": "above",
                "threshold": 0.4,
                "clear": 0.3,
                "renotify": "10m",
            }
        ],
    }  # fmt: skip
)
RULE = RS.rules[0]


def episode(entity: str, start_ms: int, minutes: int):
    """Notifications (with payloads) of one breach of ``minutes`` followed by a clear."""
    state, out = AlertState(), []
    for i in range(minutes + 1):
        cond = "breach" if i < minutes else "clear"
        obs = Observation(entity, start_ms + i * MIN, cond, 0.6 if cond == "breach" else 0.1, 0.2, 40)
        state, note = step(RULE, "h/neg", state, obs)
        if note:
            out.append((note, build_payload(RULE, note)))
    return out


def check_history_roundtrip(history: History, entity: str) -> None:
    notes = episode(entity, T0, 25)
    assert [n.kind for n, _ in notes] == ["firing", "renotify", "renotify", "resolved"]
    for note, payload in notes:
        assert history.record(note, payload) is True
        assert history.record(note, payload) is False  # a second worker / re-delivery: nothing new
    second = episode(entity, T0 + 2 * 3600_000, 3)  # a later episode stays firing: do not send its resolve
    history.record(*second[0])
    rows = history.list(entity=entity)
    assert [(r["state"], r["started_at"]) for r in rows] == [
        ("firing", "2026-01-01T02:00:00.000Z"),
        ("resolved", "2026-01-01T00:00:00.000Z"),
    ]
    resolved = rows[1]
    assert resolved["resolved_at"] == "2026-01-01T00:25:00.000Z"
    assert resolved["notifications"] == 4 and resolved["last_notified_at"] == resolved["resolved_at"]
    assert resolved["rule"] == "h/neg" and resolved["rule_kind"] == "level" and resolved["severity"] == "warning"
    assert resolved["value"] == 0.6 and resolved["baseline"] == 0.2
    assert resolved["payload"]["direction"] == "up" and resolved["payload"]["entity"] == entity
    assert [r["entity"] for r in history.list(state="firing", entity=entity)] == [entity]
    assert history.list(state="resolved", entity="nobody") == []
    assert len(history.list(entity=entity, limit=1)) == 1


def check_resolve_without_firing_row_is_kept(history: History, entity: str) -> None:
    notes = episode(entity, T0, 2)
    resolved = [(n, p) for n, p in notes if n.kind == "resolved"]
    assert history.record(*resolved[0]) is True
    (row,) = history.list(entity=entity)
    assert row["state"] == "resolved" and row["started_at"] == "2026-01-01T00:00:00.000Z"
