"""Delivery of one notification, at least once to every sink: send it to the sinks that have not confirmed it,
then record it (and which sinks confirmed it) in the history.

``submit`` returns a future that resolves True once every sink confirmed and the history has it, False when
something must be retried (a sink down, a full webhook queue, the database down). The engine acknowledges the
notification's claim only on True; on False the claim stays and the next recovery round submits it again.
Which sinks already confirmed is kept in a ``Ledger`` (the shared Redis states), so a retry, or another
worker recovering a dead worker's claims, sends only to the sinks that missed it. Sinks go first: a down
database delays the history, never the alert. A failing sink is logged and counted; it never stops the others
or the stream.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from sqlalchemy.exc import SQLAlchemyError

from sentimon.alerts.errors import HistoryError
from sentimon.alerts.history import History
from sentimon.alerts.metrics import AlertMetrics
from sentimon.alerts.sinks import Sink
from sentimon.alerts.state import Notification
from sentimon.alerts.store import MemoryStates

log = logging.getLogger(__name__)


class Ledger(Protocol):
    """Which sinks (by key) confirmed a notification; shared by every worker when it lives in Redis."""

    def sent(self, note: Notification) -> set[str]: ...

    def mark_sent(self, note: Notification, sink: str) -> None: ...


def sink_key(sink: Sink) -> str:
    return getattr(sink, "key", sink.name)


@dataclass
class _Delivery:
    note: Notification
    payload: dict[str, Any]
    ledger: Ledger
    waiting: set[str]
    confirmed: set[str]
    failed: bool = False
    future: Future = field(default_factory=Future)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Dispatcher:
    def __init__(
        self,
        history: History | None,
        sinks: Sequence[Sink],
        metrics: AlertMetrics | None = None,
        history_retry_s: float = 5.0,
    ):
        self.history = history
        self.sinks = list(sinks)
        self.metrics = metrics
        # After a failed history write, skip the database for this long (each try costs a connect timeout).
        self.history_retry_s = history_retry_s
        self._history_down_until = 0.0
        self._own_ledger = MemoryStates()  # when the caller shares none: retries within this process only

    def __call__(self, note: Notification, payload: dict[str, Any]) -> None:
        """Fire and forget (``submit`` tells the outcome)."""
        self.submit(note, payload)

    def submit(self, note: Notification, payload: dict[str, Any], ledger: Ledger | None = None) -> Future:
        """Send ``note`` to every sink that has not confirmed it yet, then record it; see the module doc."""
        ledger = ledger or self._own_ledger
        try:
            done = ledger.sent(note)
        except Exception:  # Redis down: sending again is safe (receivers dedupe), skipping a sink is not
            log.warning("alert %s: cannot read which sinks confirmed it; sending to all", note.dedup_key)
            done = set()
        pending = [s for s in self.sinks if sink_key(s) not in done]
        delivery = _Delivery(note, payload, ledger, {sink_key(s) for s in pending}, done & self.keys())
        if not pending:
            self._finish(delivery)
        for sink in pending:
            submit = getattr(sink, "submit", None)
            if submit is not None:  # asynchronous (webhook): settles from its sender thread
                submit(payload, partial(self._settled, delivery, sink_key(sink), sink.name))
                continue
            try:
                sink.send(payload)
                ok = True
            except Exception:  # one broken sink must not stop the others
                log.exception("alert %s: sink %s failed", note.dedup_key, sink.name)
                ok = False
            self._settled(delivery, sink_key(sink), sink.name, ok)
        return delivery.future

    def keys(self) -> set[str]:
        return {sink_key(s) for s in self.sinks}

    def _settled(self, delivery: _Delivery, key: str, name: str, ok: bool) -> None:
        if ok:
            try:
                delivery.ledger.mark_sent(delivery.note, key)
            except Exception:  # not fatal: a retry would send to this sink again, and receivers dedupe
                log.warning("alert %s: confirmation by %s not stored", delivery.note.dedup_key, key, exc_info=True)
        elif self.metrics:
            self.metrics.deliveries.labels(name, "failed").inc()
        with delivery.lock:
            delivery.waiting.discard(key)
            if ok:
                delivery.confirmed.add(key)
            else:
                delivery.failed = True
            last = not delivery.waiting
        if last:
            self._finish(delivery)

    def _finish(self, delivery: _Delivery) -> None:
        complete = not delivery.failed
        if complete and self.metrics:
            self.metrics.delivered.inc()
        recorded = self._record(delivery, complete)
        if complete and recorded and delivery.ledger is self._own_ledger:
            self._own_ledger.ack(delivery.note)  # done: forget its confirmations (a shared ledger expires them)
        delivery.future.set_result(complete and recorded)

    def _record(self, delivery: _Delivery, complete: bool) -> bool:
        if self.history is None:
            return True
        note = delivery.note
        if time.monotonic() < self._history_down_until:
            return False  # recently down: the retry round writes it
        try:
            self.history.record_delivery(note, delivery.payload, sorted(delivery.confirmed), complete)
            return True
        except (HistoryError, SQLAlchemyError) as exc:
            # The alert went out anyway; the claim stays and the history is written on a later round.
            self._history_down_until = time.monotonic() + self.history_retry_s
            log.error("alert %s not recorded in history yet (retried): %s", note.dedup_key, exc)
            if self.metrics:
                self.metrics.errors.labels("history").inc()
            return False

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush every sink (queued webhooks are delivered, or stay claimed for another worker), then close."""
        for sink in self.sinks:
            try:
                sink.close(timeout_s)
            except Exception:
                log.exception("closing sink %s failed", sink.name)
        if self.history is not None:
            self.history.close()
