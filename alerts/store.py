"""Where (entity, rule) states live: in memory (one process, replays, tests) or shared through Redis.

Redis transitions are atomic (WATCH/MULTI around the pure ``step``): of two workers evaluating the same
observation, exactly one commits the transition and gets the notification; the other re-reads a state whose
``last_eval_ms`` already covers that event time, so ``step`` returns no notification. When an episode ends and
its state is deleted (idle), a ``settled`` key keeps that event time for an hour, so a worker still evaluating
older boundaries of the entity (its partitions lag) cannot open the ended episode again.

A worker may die between committing a transition and delivering its notification. So the same transaction
also pushes the notification onto the worker's own "claimed" list (the outbox), and the worker refreshes a
lease key while it lives. ``ack`` removes a notification only once every sink confirmed it and the history has
it; ``release`` marks one whose delivery failed (a sink down, the database down) for another try. ``recover``
hands the caller the released notifications of this worker and the claimed lists of workers whose lease
expired (killed, even by ``os._exit``). Which sinks already confirmed a notification is kept per notification
(``sent``/``mark_sent``), so a re-delivery goes only to the sinks that missed it.
"""

from __future__ import annotations

import threading
import uuid
from typing import Protocol

from sentimon.alerts.evaluate import Observation
from sentimon.alerts.schema import RuleBase
from sentimon.alerts.state import AlertState, Notification, step


class StateStore(Protocol):
    def apply(self, rule: RuleBase, rule_id: str, obs: Observation) -> Notification | None: ...

    def get(self, rule_id: str, entity: str) -> AlertState: ...

    def ack(self, note: Notification) -> None: ...

    def release(self, note: Notification) -> None: ...

    def recover(self) -> list[Notification]: ...

    def sent(self, note: Notification) -> set[str]: ...

    def mark_sent(self, note: Notification, sink: str) -> None: ...


class MemoryStates:
    """States of one process; enough for a single worker, replays and unit tests."""

    def __init__(self) -> None:
        self._states: dict[tuple[str, str], AlertState] = {}
        self._sent: dict[str, set[str]] = {}
        self._released: list[Notification] = []
        self._lock = threading.Lock()

    def get(self, rule_id: str, entity: str) -> AlertState:
        return self._states.get((rule_id, entity), AlertState())

    def apply(self, rule: RuleBase, rule_id: str, obs: Observation) -> Notification | None:
        new, note = step(rule, rule_id, self.get(rule_id, obs.entity), obs)
        if new.idle(rule, obs.at_ms):
            self._states.pop((rule_id, obs.entity), None)  # nothing in flight: no state kept
        else:
            self._states[(rule_id, obs.entity)] = new
        return note

    def ack(self, note: Notification) -> None:
        with self._lock:
            self._sent.pop(note.dedup_key, None)

    def release(self, note: Notification) -> None:
        with self._lock:
            self._released.append(note)  # one process: retried by this process's next recover()

    def recover(self) -> list[Notification]:
        with self._lock:
            out, self._released = self._released, []
        return out

    def sent(self, note: Notification) -> set[str]:
        with self._lock:
            return set(self._sent.get(note.dedup_key, ()))

    def mark_sent(self, note: Notification, sink: str) -> None:
        with self._lock:
            self._sent.setdefault(note.dedup_key, set()).add(sink)


class RedisStates:
    """States shared by every worker through one Redis; ``ttl_s`` bounds how long an idle state is kept."""

    def __init__(
        self,
        client,
        prefix: str = "sentimon:alerts",
        ttl_s: int = 30 * 24 * 3600,
        lease_s: float = 30.0,
        owner: str | None = None,
        max_retries: int = 50,
        settled_ttl_s: int = 3600,
    ):
        self.client = client
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.settled_ttl_s = settled_ttl_s
        self.lease_ms = max(int(lease_s * 1000), 1)
        self.owner = owner or uuid.uuid4().hex
        self.max_retries = max_retries
        # Claimed notifications this process is delivering right now: recover() leaves them alone.
        self._inflight: set[str] = set()
        self._lock = threading.Lock()

    def _claimed(self, owner: str) -> str:
        return f"{self.prefix}:claimed:{owner}"

    def _lease(self, owner: str) -> str:
        return f"{self.prefix}:lease:{owner}"

    def _sent_key(self, note: Notification) -> str:
        return f"{self.prefix}:sent:{note.dedup_key}"

    def heartbeat(self) -> None:
        """Keep this worker's lease; the timer calls it, so claimed notifications stay ours while we live."""
        self.client.set(self._lease(self.owner), 1, px=self.lease_ms)

    def key(self, rule_id: str, entity: str) -> str:
        return f"{self.prefix}:state:{rule_id}:{entity}"

    def settled_key(self, rule_id: str, entity: str) -> str:
        """The event time up to which a pair whose episode ended was evaluated (kept ``settled_ttl_s``): a worker
        lagging behind on another partition must not open the ended episode again from an older boundary."""
        return f"{self.prefix}:settled:{rule_id}:{entity}"

    def get(self, rule_id: str, entity: str) -> AlertState:
        return AlertState.from_json(self.client.get(self.key(rule_id, entity)))

    def stored(self) -> list[tuple[str, str, AlertState]]:
        """Every stored (rule id, entity, state): only pairs with something in flight are stored (pending, firing,
        resolved within its cooldown), so this stays small. SCAN, never KEYS."""
        head = f"{self.prefix}:state:"
        out = []
        for raw_key in self.client.scan_iter(match=f"{head}*", count=500):
            key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
            rule_id, _, entity = key[len(head) :].partition(":")
            text = self.client.get(raw_key)
            if text is not None:  # deleted between SCAN and GET
                out.append((rule_id, entity, AlertState.from_json(text)))
        return out

    def apply(self, rule: RuleBase, rule_id: str, obs: Observation) -> Notification | None:
        import redis

        key, settled = self.key(rule_id, obs.entity), self.settled_key(rule_id, obs.entity)
        with self.client.pipeline() as pipe:
            for _ in range(self.max_retries):
                try:
                    pipe.watch(key, settled)
                    stored = pipe.get(key)
                    state = AlertState.from_json(stored)
                    if stored is None:
                        settled_ms = pipe.get(settled)
                        if settled_ms is not None and obs.at_ms <= int(settled_ms):
                            pipe.unwatch()
                            return None  # an older boundary of an episode that already ended
                    new, note = step(rule, rule_id, state, obs)
                    # An idle state (inactive, or resolved with its cooldown over) is not stored: a pair that
                    # went quiet leaves no key behind, so Redis holds state only for pairs with something in flight.
                    idle = new.idle(rule, obs.at_ms)
                    if new == state and not (idle and stored is not None):
                        pipe.unwatch()
                        return None
                    pipe.multi()
                    if idle:
                        pipe.delete(key)
                        if stored is not None and new.last_eval_ms is not None:
                            pipe.set(settled, new.last_eval_ms, ex=self.settled_ttl_s)
                    else:
                        pipe.set(key, new.to_json(), ex=self.ttl_s)
                    if note is not None:
                        pipe.rpush(self._claimed(self.owner), note.to_json())
                        pipe.set(self._lease(self.owner), 1, px=self.lease_ms)
                        with self._lock:  # before it is visible in the list: the timer must not take it twice
                            self._inflight.add(note.to_json())
                    try:
                        pipe.execute()
                    except BaseException:
                        if note is not None:
                            with self._lock:
                                self._inflight.discard(note.to_json())
                        raise
                    return note
                except redis.WatchError:
                    continue  # another worker moved this state first: re-read and re-apply
        raise RuntimeError(f"state {key} kept changing under {self.max_retries} attempts; is a worker looping?")

    def ack(self, note: Notification) -> None:
        """Every sink confirmed the notification and the history has it: drop it from the claimed list."""
        item = note.to_json()
        self.client.lrem(self._claimed(self.owner), 1, item)
        with self._lock:
            self._inflight.discard(item)

    def release(self, note: Notification) -> None:
        """Its delivery failed somewhere: it stays claimed, and the next ``recover`` hands it out again."""
        with self._lock:
            self._inflight.discard(note.to_json())

    def sent(self, note: Notification) -> set[str]:
        """The sinks that already confirmed this notification (by any worker)."""
        return {m.decode() if isinstance(m, bytes) else m for m in self.client.smembers(self._sent_key(note))}

    def mark_sent(self, note: Notification, sink: str) -> None:
        key = self._sent_key(note)
        with self.client.pipeline(transaction=True) as pipe:
            pipe.sadd(key, sink)
            pipe.expire(key, self.ttl_s)
            pipe.execute()

    def recover(self) -> list[Notification]:
        """This worker's released notifications, and those of workers whose lease expired; the caller delivers
        them and acks or releases each. A restarted worker has a new owner id, so its previous life's list is
        recovered like any other."""
        self.heartbeat()
        mine = self._claimed(self.owner)
        out: list[Notification] = []
        with self._lock:
            for item in self.client.lrange(mine, 0, -1):
                text = item.decode() if isinstance(item, bytes) else item
                if text not in self._inflight:
                    self._inflight.add(text)
                    out.append(Notification.from_json(text))
        for raw_key in self.client.scan_iter(match=self._claimed("*"), count=500):
            key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
            owner = key.rsplit(":", 1)[1]
            if owner == self.owner or self.client.exists(self._lease(owner)):
                continue  # alive: it delivers its own
            # LMOVE is atomic per item: of two recovering workers, each item goes to exactly one.
            while (item := self.client.lmove(key, mine, "LEFT", "RIGHT")) is not None:
                with self._lock:
                    self._inflight.add(item.decode() if isinstance(item, bytes) else item)
                out.append(Notification.from_json(item))
        return out
