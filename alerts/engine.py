"""The engine: for each entity, the rules of the rule sets that select it -> evaluate -> state -> deliver."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from sentimon.alerts.evaluate import WindowCatalog, WindowReader, evaluate
from sentimon.alerts.metrics import AlertMetrics
from sentimon.alerts.payload import build_payload
from sentimon.alerts.schema import Rule, RuleSet
from sentimon.alerts.state import Notification
from sentimon.alerts.store import StateStore

log = logging.getLogger(__name__)

Deliver = Callable[[Notification, dict], None]


class ExampleSource(Protocol):
    def recent(self, entity: str) -> list[dict]: ...


class AlertEngine:
    """Evaluate rules on event time and hand each notification (with its payload) to ``deliver``."""

    def __init__(
        self,
        rulesets: Sequence[RuleSet],
        states: StateStore,
        deliver: Deliver,
        examples: ExampleSource | None = None,
        metrics: AlertMetrics | None = None,
        top_terms: int = 5,
    ):
        self.rulesets = list(rulesets)
        self.states = states
        self.deliver = deliver
        self.examples = examples
        self.metrics = metrics
        self.top_terms = top_terms

    def watches(self, entity: str) -> bool:
        return any(rs.entities.selects(entity) for rs in self.rulesets)

    def evaluate(
        self, reader: WindowReader, entities: Iterable[str], now_ms: int, kinds: frozenset[str] | None = None
    ) -> list[dict]:
        """Evaluate every applicable rule (of ``kinds``, default all) for ``entities`` at event time ``now_ms``.

        Returns the payloads delivered. A failing sink is logged by the dispatcher, never raised here.
        """
        started = time.perf_counter()
        refresh = getattr(reader, "refresh", None)
        if refresh is not None:
            refresh()  # a cached reader re-reads the watermark once per round
        delivered: list[dict] = []
        for entity in dict.fromkeys(entities):
            for rs in self.rulesets:
                for rule in rs.rules_for(entity):
                    if kinds is not None and rule.kind not in kinds:
                        continue
                    obs = evaluate(rule, reader, entity, now_ms, rs.calendar)
                    if self.metrics:
                        self.metrics.evaluations.labels(rule.kind).inc()
                    note = self.states.apply(rule, rs.rule_id(rule), obs)
                    if note is not None:
                        delivered.append(self._send(rule, note))
        if self.metrics:
            self.metrics.evaluation_seconds.observe(time.perf_counter() - started)
        return delivered

    def _send(self, rule: Rule, note: Notification) -> dict:
        examples = self.examples.recent(note.entity) if self.examples else []
        payload = build_payload(rule, note, examples, self.top_terms)
        if self.metrics:
            self.metrics.notifications.labels(note.kind, note.severity).inc()
        try:
            self.deliver(note, payload)
        except Exception:  # a bug in a sink wiring must not stop the other rules; the log has it
            log.exception("delivering %s failed", note.dedup_key)
            if self.metrics:
                self.metrics.errors.labels("deliver").inc()
        finally:
            self.states.ack(note)
        return payload

    def rule(self, rule_id: str, entity: str) -> Rule | None:
        """The rule behind ``rule_id`` ("ruleset/rule") with the entity's overrides, None when gone."""
        set_name, _, name = rule_id.partition("/")
        for rs in self.rulesets:
            if rs.name == set_name:
                for rule in rs.rules:
                    if rule.name == name:
                        return rule.for_entity(entity)
        return None

    def recover(self) -> list[dict]:
        """Deliver the notifications of workers that died between a transition and its delivery."""
        delivered = []
        for note in self.states.recover():
            rule = self.rule(note.rule_id, note.entity)
            if rule is None:
                log.warning("recovered %s, but its rule is no longer loaded; dropped", note.dedup_key)
                self.states.ack(note)
                continue
            log.warning("delivering %s left behind by a stopped worker", note.dedup_key)
            delivered.append(self._send(rule, note))
        return delivered

    def check_silence(self, reader: WindowCatalog, now_ms: int, entities: Iterable[str] | None = None) -> list[dict]:
        """Evaluate the silence rules: for the entities given, or every entity the reader has seen."""
        names = list(entities) if entities is not None else reader.entities()
        return self.evaluate(reader, names, now_ms, kinds=frozenset({"silence"}))
