"""The anti-flap state machine per (entity, rule): inactive -> pending -> firing -> resolved.

Pure and deterministic: the same sequence of (event time, observation) yields the same notifications.
Observations at or before the last evaluated event time are ignored, which makes re-delivered batches and
a second worker replaying the same batch no-ops. Exactly one ``firing`` and one ``resolved`` notification
per episode; ``renotify`` repeats a still-firing alert every ``renotify`` interval when that is set.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Literal

from sentimon.alerts.evaluate import Observation
from sentimon.alerts.schema import RuleBase

Phase = Literal["inactive", "pending", "firing", "resolved"]
NotificationKind = Literal["firing", "resolved", "renotify"]


@dataclass(frozen=True)
class AlertState:
    phase: Phase = "inactive"
    last_eval_ms: int | None = None
    pending_since_ms: int | None = None
    started_ms: int | None = None  # when the episode began firing; identifies the episode
    resolved_ms: int | None = None
    last_notified_ms: int | None = None
    value: float | None = None
    baseline: float | None = None

    def idle(self, rule: RuleBase, now_ms: int) -> bool:
        """Nothing in flight at event time ``now_ms``: inactive, or resolved with its cooldown over. An idle
        state need not be stored -- a non-breaching observation leaves it as it is."""
        if self.phase == "inactive":
            return True
        return self.phase == "resolved" and (self.resolved_ms or 0) + rule.cooldown_ms <= now_ms

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes | None) -> AlertState:
        return cls(**json.loads(text)) if text else cls()


@dataclass(frozen=True)
class Notification:
    kind: NotificationKind
    rule_id: str
    entity: str
    severity: str
    at_ms: int
    started_ms: int
    pending_since_ms: int | None
    resolved_ms: int | None
    observation: Observation

    def to_json(self) -> str:
        """Deterministic JSON (sorted keys), so the same notification always serializes to the same string."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Notification:
        data = json.loads(text)
        return cls(**{**data, "observation": Observation(**data["observation"])})

    @property
    def dedup_key(self) -> str:
        """One key per (rule, entity, episode, kind[, repeat time])."""
        tail = f":{self.at_ms}" if self.kind == "renotify" else ""
        return f"{self.rule_id}|{self.entity}|{self.started_ms}|{self.kind}{tail}"


def step(rule: RuleBase, rule_id: str, state: AlertState, obs: Observation) -> tuple[AlertState, Notification | None]:
    """Advance one (entity, rule) state by one observation; return the new state and what to notify."""
    if state.last_eval_ms is not None and obs.at_ms <= state.last_eval_ms:
        return state, None
    now = obs.at_ms
    state = replace(state, last_eval_ms=now)

    def notify(kind: NotificationKind, new: AlertState) -> tuple[AlertState, Notification]:
        assert new.started_ms is not None
        note = Notification(kind, rule_id, obs.entity, rule.severity, now, new.started_ms,
                            new.pending_since_ms, new.resolved_ms, obs)  # fmt: skip
        return replace(new, last_notified_ms=now), note

    if state.phase == "firing":
        if obs.condition == "clear":
            return notify("resolved", replace(state, phase="resolved", resolved_ms=now))
        if obs.value is not None:
            state = replace(state, value=obs.value, baseline=obs.baseline)
        due = state.last_notified_ms is not None and now - state.last_notified_ms >= rule.renotify_ms
        if rule.renotify_ms and due:
            return notify("renotify", state)
        return state, None

    if obs.condition != "breach":
        # Pending needs the condition to hold throughout (Prometheus 'for:'); the hysteresis band does not count.
        if state.phase == "pending":
            return replace(state, phase="inactive", pending_since_ms=None), None
        return state, None

    if state.phase == "resolved" and state.resolved_ms is not None and now < state.resolved_ms + rule.cooldown_ms:
        return state, None  # cooldown: no new episode yet
    since = state.pending_since_ms if state.phase == "pending" else now
    assert since is not None
    if now - since >= rule.for_ms:
        fired = AlertState("firing", now, since, now, None, None, obs.value, obs.baseline)
        return notify("firing", fired)
    return replace(state, phase="pending", pending_since_ms=since), None
