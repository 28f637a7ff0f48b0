"""The engine: for each entity, the rules of the rule sets that select it -> evaluate -> state -> deliver."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from typing import Protocol

from sentimon.alerts.dispatch import Dispatcher
from sentimon.alerts.evaluate import WindowCatalog, WindowReader, evaluate
from sentimon.alerts.metrics import AlertMetrics
from sentimon.alerts.payload import build_payload
from sentimon.alerts.schema import Rule, RuleSet, SilenceRule, find_rule
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
        link: Callable[[str, int], str] | None = None,
    ):
        self.rulesets = list(rulesets)
        self.link = link  # entity, alert start (ms) -> the console's page of it, carried as ``console_url``
        self.states = states
        self.deliver = deliver
        self.examples = examples
        self.metrics = metrics
        self.top_terms = top_terms

    def watches(self, entity: str) -> bool:
        return any(rs.entities.selects(entity) for rs in self.rulesets)

    def evaluate(
        self,
        reader: WindowReader,
        entities: Iterable[str],
        now_ms: int,
        kinds: frozenset[str] | None = None,
        refresh: bool = True,
    ) -> list[dict]:
        """Evaluate every applicable rule (of ``kinds``, default all) for ``entities`` at event time ``now_ms``.

        Returns the payloads delivered. A failing sink is logged by the dispatcher, never raised here.
        """
        started = time.perf_counter()
        reread = getattr(reader, "refresh", None)
        if refresh and reread is not None:
            reread()  # a cached reader re-reads the watermark once per round
        delivered: list[dict] = []
        for entity in dict.fromkeys(entities):
            for rs in self.rulesets:
                for rule in rs.rules_for(entity):
                    if kinds is not None and rule.kind not in kinds:
                        continue
                    obs = evaluate(rule, reader, entity, now_ms, rs.calendar)
                    if self.metrics:
                        self.metrics.evaluations.labels(rule.kind).inc()
                    if obs.condition != "breach" and self._untracked(rs.rule_id(rule), entity):
                        continue  # nothing to move: no state is written for an inactive (entity, rule)
                    note = self.states.apply(rule, rs.rule_id(rule), obs)
                    if note is not None:
                        delivered.append(self._send(rule, note))
        if self.metrics:
            self.metrics.evaluation_seconds.observe(time.perf_counter() - started)
        return delivered

    def evaluate_at(self, reader: WindowReader, due: dict[int, list[str]]) -> list[dict]:
        """Evaluate at each boundary of ``due`` (boundary -> entities, ascending; see ``alerts.schedule``): at
        event time ``boundary - 1``, over the buckets before it. One cache round for all of them."""
        reread = getattr(reader, "refresh", None)
        if reread is not None:
            reread()
        delivered: list[dict] = []
        for boundary, entities in sorted(due.items()):
            delivered += self.evaluate(reader, entities, boundary - 1, refresh=False)
        return delivered

    def _untracked(self, rule_id: str, entity: str) -> bool:
        """No state is stored for the pair (a stored one that went idle is still applied: the store deletes it)."""
        return self.states.get(rule_id, entity).phase == "inactive"

    def _send(self, rule: Rule, note: Notification) -> dict:
        examples = self.examples.recent(note.entity) if self.examples else []
        payload = build_payload(rule, note, examples, self.top_terms)
        if self.link is not None:
            payload["console_url"] = self.link(note.entity, note.started_ms)
        if self.metrics:
            self.metrics.notifications.labels(note.kind, note.severity).inc()
        states = self.states

        def settle(outcome: Future) -> None:
            # The claim is acknowledged only once every sink confirmed and the history has it; otherwise it
            # stays claimed and the next recovery round submits it again (to the sinks that missed it).
            try:
                if outcome.result():
                    states.ack(note)
                    return
            except Exception:
                log.exception("acknowledging %s failed; it is retried", note.dedup_key)
            states.release(note)

        try:
            if isinstance(self.deliver, Dispatcher):
                self.deliver.submit(note, payload, ledger=states).add_done_callback(settle)
            else:  # a plain callable (replays, tests): returning is confirmation
                self.deliver(note, payload)
                states.ack(note)
        except Exception:  # a bug in a sink wiring must not stop the other rules; the log has it
            log.exception("delivering %s failed; it is retried", note.dedup_key)
            if self.metrics:
                self.metrics.errors.labels("deliver").inc()
            states.release(note)
        return payload

    def rule(self, rule_id: str, entity: str) -> Rule | None:
        """The rule behind ``rule_id`` ("ruleset/rule") with the entity's overrides, None when gone."""
        return find_rule(self.rulesets, rule_id, entity)

    def recover(self) -> list[dict]:
        """Submit again the notifications whose delivery failed here, and those of workers that died between a
        transition and its confirmed delivery (killed, even by ``os._exit``): what matters is whether every sink
        confirmed, not whether the history has a row. Sinks that already confirmed are skipped."""
        delivered = []
        for note in self.states.recover():
            rule = self.rule(note.rule_id, note.entity)
            if rule is None:
                log.warning("recovered %s, but its rule is no longer loaded; dropped", note.dedup_key)
                self.states.ack(note)
                continue
            log.warning("delivering %s again (a sink, the history or its worker failed)", note.dedup_key)
            if self.metrics:
                self.metrics.redeliveries.inc()
            delivered.append(self._send(rule, note))
        return delivered

    def check_silence(self, reader: WindowCatalog, now_ms: int, entities: Iterable[str] | None = None) -> list[dict]:
        """Evaluate the silence rules: for the entities given, or those the reader saw within the longest
        silence window plus baseline (older ones cannot have a baseline rate: their silence is normal)."""
        if entities is None:
            reach = [rule.window_ms + rule.baseline_ms for rs in self.rulesets for rule in rs.rules
                     if isinstance(rule, SilenceRule)]  # fmt: skip
            if not reach:
                return []
            entities = reader.entities(since_ms=now_ms - max(reach))
        return self.evaluate(reader, list(entities), now_ms, kinds=frozenset({"silence"}))
