"""Delivery of one notification: record it in the history, then hand it to every sink.

The history's unique episode key is the last line of dedup: when the row already exists (another worker or
a re-delivered batch got there first), the sinks are skipped. A failing sink is logged and counted; it never
stops the others or the stream.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from sentimon.alerts.errors import HistoryError
from sentimon.alerts.history import History
from sentimon.alerts.metrics import AlertMetrics
from sentimon.alerts.sinks import Sink
from sentimon.alerts.state import Notification

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(self, history: History | None, sinks: Sequence[Sink], metrics: AlertMetrics | None = None):
        self.history = history
        self.sinks = list(sinks)
        self.metrics = metrics

    def __call__(self, note: Notification, payload: dict[str, Any]) -> None:
        if self.history is not None:
            try:
                if not self.history.record(note, payload):
                    log.info("alert %s already recorded; not sent again", note.dedup_key)
                    return
            except (HistoryError, SQLAlchemyError) as exc:
                # Deliver anyway: a down database must not silence alerts.
                log.error("alert %s not recorded in history: %s", note.dedup_key, exc)
                if self.metrics:
                    self.metrics.errors.labels("history").inc()
        for sink in self.sinks:
            try:
                sink.send(payload)
            except Exception:  # one broken sink must not stop the others
                log.exception("alert %s: sink %s failed", note.dedup_key, sink.name)
                if self.metrics:
                    self.metrics.deliveries.labels(sink.name, "failed").inc()

    def close(self, timeout_s: float = 10.0) -> None:
        for sink in self.sinks:
            try:
                sink.close(timeout_s)
            except Exception:
                log.exception("closing sink %s failed", sink.name)
        if self.history is not None:
            self.history.close()
