"""Wiring from settings: rule sets + shared Redis states + history + sinks -> an engine, and the stream hook.

``stream_hook(settings)`` is what the worker loads (setting ``stream.hooks = ["sentimon.alerts:stream_hook"]``): after
each batch it records negative example texts and evaluates each touched entity at every event-time boundary
its events crossed (``alerts.schedule``): live, backlog and replay give the same alerts. A timer
(``alerts.silence_interval_s``, wall clock) catches up the entities that went quiet and checks silence, at the
windows' watermark (event time), in a daemon thread the hook starts on its first batch, or by the caller via
``check_silence``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from sentimon.alerts.cache import CachedWindows, WindowSource
from sentimon.alerts.dispatch import Dispatcher
from sentimon.alerts.engine import AlertEngine
from sentimon.alerts.evaluate import WindowCatalog
from sentimon.alerts.examples import RedisExamples
from sentimon.alerts.history import History
from sentimon.alerts.metrics import AlertMetrics
from sentimon.alerts.schedule import EvaluationSchedule, horizon_ms
from sentimon.alerts.schema import load_rulesets
from sentimon.alerts.sinks import KafkaPublisher, KafkaSink, LogSink, Publish, Sink, WebhookSink
from sentimon.alerts.store import RedisStates
from sentimon.core.parts import AlertSettings
from sentimon.core.settings import Settings

log = logging.getLogger(__name__)


def build_sinks(settings: Settings, metrics: AlertMetrics | None = None, publish: Publish | None = None) -> list[Sink]:
    """The configured sinks. Kafka records go through ``publish`` (in the worker: the worker's own producer), else
    through a producer of their own."""
    sinks: list[Sink] = [LogSink()]
    if settings.alerts.kafka:
        publish = publish or KafkaPublisher(settings)
        sinks.append(KafkaSink(settings.topics.alerts, publish, metrics))
    for url in settings.alerts.webhooks:
        sinks.append(
            WebhookSink(
                url,
                fmt=settings.alerts.webhook_format,
                timeout_s=settings.alerts.webhook_timeout_s,
                attempts=settings.alerts.webhook_attempts,
                backoff_s=settings.alerts.webhook_backoff_s,
                backoff_max_s=settings.alerts.webhook_backoff_max_s,
                queue_size=settings.alerts.webhook_queue,
                metrics=metrics,
            )
        )
    return sinks


class AlertService:
    """The engine with its Redis states, example ring, history and sinks; ``on_batch`` is the stream hook."""

    __name__ = "alerts"  # the pipeline names hooks in logs and metrics

    def __init__(
        self,
        settings: AlertSettings,
        redis_client: Any,
        history: History,
        sinks: Sequence[Sink],
        metrics: AlertMetrics | None = None,
        link: Callable[[str, int], str] | None = None,
    ):
        self.settings = settings
        self.metrics = metrics
        self.redis = redis_client
        self.examples = RedisExamples(self.redis, settings.prefix, settings.examples)
        self.history = history
        self.dispatcher = Dispatcher(self.history, sinks, metrics)
        rulesets = load_rulesets(list(settings.rules) or None)
        self.engine = AlertEngine(
            rulesets,
            RedisStates(self.redis, settings.prefix, settings.state_ttl_s, settings.lease_s),
            self.dispatcher,
            self.examples,
            metrics,
            settings.top_terms,
            link,
        )
        self._timer: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._cache: CachedWindows | None = None
        self._horizon_ms = horizon_ms(rulesets)
        self._schedule: EvaluationSchedule | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        redis_client: Any = None,
        history: History | None = None,
        sinks: Sequence[Sink] | None = None,
        metrics: AlertMetrics | None = None,
        publish: Publish | None = None,
    ) -> AlertService:
        """The service on the alerts part, with the stack's Redis and history database and the configured sinks
        unless given."""
        from sentimon.infra.redis_client import connect

        return cls(
            settings.alerts,
            redis_client or connect(settings.stack),
            history if history is not None else History(settings.stack.database),
            build_sinks(settings, metrics, publish) if sinks is None else sinks,
            metrics,
            settings.console.entity_url,
        )

    def reader(self, store: WindowCatalog) -> WindowCatalog:
        """The stream's window store behind a per-process block cache, or any other reader as it is."""
        if not isinstance(store, WindowSource):
            return store
        with self._lock:
            if self._cache is None or self._cache.store is not store:
                self._cache = CachedWindows(store)
            return self._cache

    def schedule(self, store: WindowCatalog) -> EvaluationSchedule:
        """Evaluation boundaries every ``eval_interval_ms`` rounded up to whole buckets of the store."""
        with self._lock:
            if self._schedule is None:
                bucket_ms = int(getattr(store, "bucket_ms", 60_000))
                step_ms = max(-(-self.settings.eval_interval_ms // bucket_ms), 1) * bucket_ms
                self._schedule = EvaluationSchedule(step_ms, self._horizon_ms, self.settings.max_tracked_entities)
            return self._schedule

    def on_batch(self, events: Sequence[Any], store: WindowCatalog) -> list[dict]:
        """Record example texts and evaluate the watched entities at each event-time boundary their events
        crossed and the store's watermark passed (see ``alerts.schedule``); late events move nothing."""
        usable = [ev for ev in events if getattr(ev, "status", "applied") != "late"]
        if not usable:
            return []
        if self.settings.examples:
            self.examples.add(usable)
        heartbeat = getattr(self.engine.states, "heartbeat", None)
        if heartbeat is not None:
            heartbeat()  # keep the lease on our claimed notifications while batches flow
        # Up to the watermark: a boundary some active partition has not reached yet waits for it.
        watermark = getattr(store, "watermark", None)
        until_ms = watermark() if callable(watermark) else None
        due = self.schedule(store).crossed(usable, self.engine.watches, until_ms)
        return self.engine.evaluate_at(self.reader(store), due) if due else []

    def __call__(self, events: Sequence[Any], store: WindowCatalog) -> None:
        self.start_silence_timer(store)
        try:
            self.on_batch(events, store)
        except Exception:
            # The stream must go on; the next batch evaluates these entities again at a later event time.
            log.exception("alert evaluation failed for a batch of %d events", len(events))
            if self.metrics:
                self.metrics.errors.labels("evaluate").inc()

    def check_silence(self, store: WindowCatalog, now_ms: int | None = None) -> list[dict]:
        """The timer's work, at ``now_ms`` or the store's watermark (the last boundary before it): notifications
        left by stopped workers, every rule for the entities that went quiet since their last boundary, and
        the silence rules for the entities active within a silence baseline."""
        if now_ms is None:
            now_ms = store.watermark()
            if now_ms is None:
                return []
        schedule = self.schedule(store)
        reader = self.reader(store)
        recovered = self.engine.recover()
        out = self.engine.evaluate_at(reader, schedule.catch_up(now_ms))
        return recovered + out + self.engine.check_silence(reader, schedule.floor(now_ms) - 1)

    def start_silence_timer(self, store: WindowCatalog) -> None:
        with self._lock:
            if self._timer is not None:
                return
            self._timer = threading.Thread(target=self._silence_loop, args=(store,), name="sentimon-silence",
                                           daemon=True)  # fmt: skip
            self._timer.start()

    def _silence_loop(self, store: WindowCatalog) -> None:
        while not self._stop.wait(self.settings.silence_interval_s):
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


def stream_hook(settings: Settings, registry=None, publish: Publish | None = None) -> AlertService:
    """The after-batch hook for ``streams`` (``stream.hooks = ["sentimon.alerts:stream_hook"]``). Metrics go to
    ``registry`` when the caller passes the one it serves, else to prometheus_client's default registry; Kafka
    notifications go through ``publish``, the worker's producer. The worker closes the hook when it stops."""
    from prometheus_client import REGISTRY

    return AlertService.from_settings(settings, metrics=AlertMetrics.create(registry or REGISTRY), publish=publish)
