"""Where (entity, rule) states live: in memory (one process, replays, tests) or shared through Redis.

Redis transitions are atomic (WATCH/MULTI around the pure ``step``): of two workers evaluating the same
observation, exactly one commits the transition and gets the notification; the other re-reads a state whose
``last_eval_ms`` already covers that event time, so ``step`` returns no notification.
"""

from __future__ import annotations

from typing import Protocol

from alerts.evaluate import Observation
from alerts.schema import RuleBase
from alerts.state import AlertState, Notification, step


class StateStore(Protocol):
    def apply(self, rule: RuleBase, rule_id: str, obs: Observation) -> Notification | None: ...

    def get(self, rule_id: str, entity: str) -> AlertState: ...


class MemoryStates:
    """States of one process; enough for a single worker, replays and unit tests."""

    def __init__(self) -> None:
        self._states: dict[tuple[str, str], AlertState] = {}

    def get(self, rule_id: str, entity: str) -> AlertState:
        return self._states.get((rule_id, entity), AlertState())

    def apply(self, rule: RuleBase, rule_id: str, obs: Observation) -> Notification | None:
        new, note = step(rule, rule_id, self.get(rule_id, obs.entity), obs)
        self._states[(rule_id, obs.entity)] = new
        return note


class RedisStates:
    """States shared by every worker through one Redis; ``ttl_s`` bounds how long an idle state is kept."""

    def __init__(self, client, prefix: str = "sentimon:alerts", ttl_s: int = 30 * 24 * 3600, max_retries: int = 50):
        self.client = client
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.max_retries = max_retries

    def key(self, rule_id: str, entity: str) -> str:
        return f"{self.prefix}:state:{rule_id}:{entity}"

    def get(self, rule_id: str, entity: str) -> AlertState:
        return AlertState.from_json(self.client.get(self.key(rule_id, entity)))

    def apply(self, rule: RuleBase, rule_id: str, obs: Observation) -> Notification | None:
        import redis

        key = self.key(rule_id, obs.entity)
        with self.client.pipeline() as pipe:
            for _ in range(self.max_retries):
                try:
                    pipe.watch(key)
                    state = AlertState.from_json(pipe.get(key))
                    new, note = step(rule, rule_id, state, obs)
                    if new == state:
                        pipe.unwatch()
                        return None
                    pipe.multi()
                    pipe.set(key, new.to_json(), ex=self.ttl_s)
                    pipe.execute()
                    return note
                except redis.WatchError:
                    continue  # another worker moved this state first: re-read and re-apply
        raise RuntimeError(f"state {key} kept changing under {self.max_retries} attempts; is a worker looping?")
