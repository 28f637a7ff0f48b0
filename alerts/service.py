"""Wiring from settings: rule sets + shared Redis states + history + sinks -> an engine, and the stream hook.

``stream_hook(settings)`` is what the worker loads (setting ``stream_hooks = ["sentimon.alerts:stream_hook"]``): after
each batch it records negative example texts and evaluates the touched entities at the batch's max event
time. Silence is checked on a timer (``alerts_silence_interval_s``, wall clock) at the windows' watermark
(event time), by a daemon thread the hook starts on its first batch, or by the caller via ``check_silence``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from sentimon.alerts.cache import CachedWindows
from sentimon.alerts.dispatch import Dispatcher
from sentimon.alerts.engine import AlertEngine
from sentimon.alerts.evaluate import WindowReader
from sentimon.alerts.examples import RedisExamples
from sentimon.alerts.history import History
from sentimon.alerts.metrics import AlertMetrics
from sentimon.alerts.schema import load_rulesets
from sentimon.alerts.sinks import KafkaSink, LogSink, Sink, WebhookSink
from sentimon.alerts.store import RedisStates

log = logging.getLogger(__name__)


def build_sinks(settings, metrics: AlertMetrics | None = None) -> list[Sink]:
    sinks: list[Sink] = [LogSink()]
    if settings.alerts_kafka:
        sinks.append(KafkaSink(settings.kafka_servers, settings.topic_alerts, metrics))
    for url in settings.alerts_webhooks:
        sinks.append(
            WebhookSink(
                url,
                fmt=settings.alerts_webhook_format,
                timeout_s=settings.alerts_webhook_timeout_s,
                attempts=settings.alerts_webhook_attempts,
                backoff_s=settings.alerts_webhook_backoff_s,
                backoff_max_s=settings.alerts_webhook_backoff_max_s,
                queue_size=settings.alerts_webhook_queue,
                metrics=metrics,
            )
        )
    return sinks


class AlertService:
    """The engine with its Redis states, example ring, history and sinks; ``on_batch`` is the stream hook."""

    __name__ = "alerts"  # the pipeline names hooks in logs and metrics

    def __init__(
        self,
        settings,
        redis_client=None,
        history: History | None = None,
        sinks: Sequence[Sink] | None = None,
        metrics: AlertMetrics | None = None,
    ):
        import redis

        self.settings = settings
        self.metrics = metrics
        self.redis = redis_client or redis.Redis.from_url(settings.redis)
        self.examples = RedisExamples(self.redis, settings.alerts_prefix, settings.alerts_examples)
        self.history = history if history is not None else History(settings.database)
        self.dispatcher = Dispatcher(self.history, build_sinks(settings, metrics) if sinks is None else sinks, metrics)
        self.engine = AlertEngine(
            load_rulesets(list(settings.alerts_rules) or None),
            RedisStates(self.redis, settings.alerts_prefix, settings.alerts_state_ttl_s, settings.alerts_lease_s),
            self.dispatcher,
            self.examples,
            metrics,
            settings.alerts_top_terms,
        )
        self._timer: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._cache: CachedWindows | None = None
        self._last_eval: dict[str, int] = {}  # entity -> event time of its last evaluation in this process
        self._deferred: set[str] = set()

    def reader(self, store: Any) -> WindowReader:
        """The store behind a per-process block cache (a WindowStore), or the reader itself."""
        from sentimon.streams.windows import WindowStore

        if not isinstance(store, WindowStore):
            return store
        with self._lock:
            if self._cache is None or self._cache.store is not store:
                self._cache = CachedWindows(store)
            return self._cache

    def on_batch(self, events: Sequence[Any], store: WindowReader) -> list[dict]:
        """Record example texts and evaluate the entities these events touched, at their max event time.

        An entity evaluated less than ``alerts_eval_interval_ms`` (event time) ago is deferred to the timer.
        """
        usable = [ev for ev in events if getattr(ev, "status", "applied") != "late"]
        if not usable:
            return []
        if self.settings.alerts_examples:
            self.examples.add(usable)
        now_ms = max(int(ev.ts_ms) for ev in usable)
        heartbeat = getattr(self.engine.states, "heartbeat", None)
        if heartbeat is not None:
            heartbeat()  # keep the lease on our claimed notifications while batches flow
        due = []
        with self._lock:
            for entity in dict.fromkeys(x for ev in usable for x in ev.entities):
                if not self.engine.watches(entity):
                    continue
                last = self._last_eval.get(entity)
                if last is None or now_ms - last >= self.settings.alerts_eval_interval_ms or now_ms < last:
                    self._last_eval[entity] = now_ms
                    self._deferred.discard(entity)
                    due.append(entity)
                else:
                    self._deferred.add(entity)
        return self.engine.evaluate(self.reader(store), due, now_ms)

    def __call__(self, events: Sequence[Any], store: WindowReader) -> None:
        self.start_silence_timer(store)
        try:
            self.on_batch(events, store)
        except Exception:
            # The stream must go on; the next batch evaluates these entities again at a later event time.
            log.exception("alert evaluation failed for a batch of %d events", len(events))
            if self.metrics:
                self.metrics.errors.labels("evaluate").inc()

    def check_silence(self, store: WindowReader, now_ms: int | None = None) -> list[dict]:
        """The timer's work, at ``now_ms`` or the store's watermark: notifications left by stopped workers,
        every rule for the entities whose evaluation was deferred, and the silence rules for every entity."""
        if now_ms is None:
            now_ms = store.watermark()  # type: ignore[attr-defined]
            if now_ms is None:
                return []
        reader = self.reader(store)
        recovered = self.engine.recover()
        with self._lock:
            deferred, self._deferred = sorted(self._deferred), set()
            for entity in deferred:
                self._last_eval[entity] = max(self._last_eval.get(entity, now_ms), now_ms)
        out = self.engine.evaluate(reader, deferred, now_ms) if deferred else []
        return recovered + out + self.engine.check_silence(reader, now_ms)

    def start_silence_timer(self, store: WindowReader) -> None:
        with self._lock:
            if self._timer is not None:
                return
            self._timer = threading.Thread(target=self._silence_loop, args=(store,), name="sentimon-silence",
                                           daemon=True)  # fmt: skip
            self._timer.start()

    def _silence_loop(self, store: WindowReader) -> None:
        while not self._stop.wait(self.settings.alerts_silence_interval_s):
            try:
                self.check_silence(store)
            except Exception:
                log.exception("silence check failed")
                if self.metrics:
                    self.metrics.errors.labels("silence").inc()

    def close(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._timer is not None:
            self._timer.join(timeout_s)
        self.dispatcher.close(timeout_s)


def stream_hook(settings, registry=None) -> AlertService:
    """The after-batch hook for ``streams`` (``stream_hooks = ["sentimon.alerts:stream_hook"]``). Metrics go to
    ``registry`` when the caller passes the one it serves, else to prometheus_client's default registry."""
    import atexit

    from prometheus_client import REGISTRY

    service = AlertService(settings, metrics=AlertMetrics.create(registry or REGISTRY))
    # The worker has no hook shutdown: flush queued webhooks and the Kafka producer when the process exits.
    atexit.register(service.close)
    return service
