"""Where notifications go: the log, the Kafka alerts topic, webhooks.

The Kafka sink's ``send`` returns once the broker acknowledged the record (alerts are few; the producer is the
worker's own); webhooks are posted by a background thread from a bounded queue, and ``submit`` reports the
outcome through a callback, so the dispatcher acknowledges a notification only after the receiver confirmed
it (a full queue or a receiver still down after the retries reports False: the notification is retried later,
never dropped). Webhook retries use tenacity: exponential backoff on connection errors, timeouts, 429 and 5xx;
other 4xx answers are final (the receiver refused the payload; retrying cannot help).

Every sink sends the notification's id (``notification_id``: rule|entity|episode start|kind) and episode
(``episode``): receivers dedupe by them, since delivery is at least once. Webhooks also get them as the
``Idempotency-Key`` and ``X-Sentimon-Episode`` headers.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Literal, Protocol

from sentimon.alerts.metrics import AlertMetrics
from sentimon.core.redact import host_only, mask_urls_in, sub_urls
from sentimon.core.settings import Settings

log = logging.getLogger(__name__)


class Sink(Protocol):
    name: str  # a metrics label (bounded)
    key: str  # unique among the configured sinks: which sinks confirmed a notification is kept by key

    def send(self, payload: dict[str, Any]) -> None: ...

    def close(self, timeout_s: float = 10.0) -> None: ...


# ``done(True)``: the receiver confirmed (or refused for good); ``done(False)``: not delivered, try again later.
Done = Callable[[bool], None]

IDEMPOTENCY_HEADER = "Idempotency-Key"
EPISODE_HEADER = "X-Sentimon-Episode"


def dedup_headers(payload: dict[str, Any]) -> dict[str, str]:
    """The headers receivers dedupe by (values are ASCII-safe: entities may be any text)."""
    from urllib.parse import quote

    out = {}
    if payload.get("notification_id"):
        out[IDEMPOTENCY_HEADER] = quote(str(payload["notification_id"]), safe="|:/-_.")
    if payload.get("episode"):
        out[EPISODE_HEADER] = quote(str(payload["episode"]), safe="|:/-_.")
    return out


class LogSink:
    name = "log"
    key = "log"

    def __init__(self, logger: logging.Logger | None = None):
        self.logger = logger or logging.getLogger("sentimon.alerts")

    def send(self, payload: dict[str, Any]) -> None:
        level = logging.INFO if payload["kind"] == "resolved" else logging.WARNING
        self.logger.log(level, "alert %s [%s] %s", payload["kind"], payload["severity"], payload["summary"],
                        extra={"alert": payload})  # fmt: skip

    def close(self, timeout_s: float = 10.0) -> None:
        pass


# ``publish(topic, key, value)`` returns once the broker acknowledged the record and raises if it did not.
# In the worker it is the worker's own producer (one Kafka client per process, handed to the hook factory);
# elsewhere (replay, tests) a ``KafkaPublisher``.
Publish = Callable[[str, bytes, bytes], None]


class KafkaPublisher:
    """A ``Publish`` with a kafka-python producer of its own, for processes that run no worker."""

    def __init__(self, settings: Settings, timeout_s: float = 10.0):
        self.settings = settings
        self.timeout_s = timeout_s
        self._producer: Any = None

    def __call__(self, topic: str, key: bytes, value: bytes) -> None:
        if self._producer is None:
            from sentimon.infra import kafka_clients

            self._producer = kafka_clients.producer(self.settings, client_id="sentimon-alerts", acks="all", retries=5,
                                                    max_block_ms=int(self.timeout_s * 1000))  # fmt: skip
        self._producer.send(topic, key=key, value=value).get(timeout=self.timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        if self._producer is not None:
            self._producer.close(timeout=timeout_s)
            self._producer = None


class KafkaSink:
    """JSON records keyed by entity on the alerts topic, each acknowledged (acks=all) before ``send`` returns."""

    name = "kafka"

    def __init__(self, topic: str, publish: Publish, metrics: AlertMetrics | None = None):
        self.key = f"kafka:{topic}"
        self.topic = topic
        self.publish = publish
        self.metrics = metrics

    def send(self, payload: dict[str, Any]) -> None:
        value = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        # A failure raises to the dispatcher, which logs and counts it like any sink's.
        self.publish(self.topic, payload["entity"].encode("utf-8"), value)
        if self.metrics:
            self.metrics.deliveries.labels("kafka", "ok").inc()

    def close(self, timeout_s: float = 10.0) -> None:
        # Only a producer of its own is closed here; the worker's closes with the worker.
        if isinstance(self.publish, KafkaPublisher):
            self.publish.close(timeout_s)


def alertmanager_alerts(payload: dict[str, Any], generator_url: str = "") -> list[dict[str, Any]]:
    """The payload as Alertmanager's API v2 ``POST /api/v2/alerts`` body (labels and string annotations)."""
    labels = {
        "alertname": payload["rule_name"],
        "rule": payload["rule"],
        "ruleset": payload["ruleset"],
        "entity": payload["entity"],
        "severity": payload["severity"],
        "source": "sentimon",
    }
    magnitude = payload["magnitude"]
    annotations = {
        "summary": payload["summary"],
        "description": payload["description"],
        "direction": payload["direction"],
        "value": "" if payload["value"] is None else f"{payload['value']:.6g}",
        "baseline": "" if payload["baseline"] is None else f"{payload['baseline']:.6g}",
        "ratio": "" if magnitude.get("ratio") is None else f"{magnitude['ratio']:.4g}",
        "top_terms": ", ".join(payload["top_terms"]),
        "examples": "\n".join(payload["examples"]),
        "sources": ", ".join(payload["sources"]),
    }
    alert = {"labels": labels, "annotations": {k: v for k, v in annotations.items() if v},
             "startsAt": payload["started_at"], "generatorURL": generator_url}  # fmt: skip
    if payload["kind"] == "resolved":
        alert["endsAt"] = payload["resolved_at"]
    return [alert]


class _Retryable(Exception):
    pass


class _Final(Exception):
    pass


_STOP = object()


class _WebhookByHost(logging.Filter):
    """On the HTTP library's logger (httpx logs every request's full URL at INFO): that webhook by host only."""

    def __init__(self, where: str):
        super().__init__()
        self.where = where

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        masked = sub_urls(text, lambda url: self.where if host_only(url) == self.where else url)
        if masked != text:
            record.msg, record.args = masked, None
        return True


def webhook_key(url: str) -> str:
    """How the delivery ledger and the history name a webhook sink: its host and a digest of the whole URL
    (two hooks on one host stay apart; the URL's token is never stored)."""
    import hashlib

    return f"webhook:{host_only(url)}#{hashlib.sha256(url.encode()).hexdigest()[:16]}"


class WebhookSink:
    """JSON POST per notification from a background thread, with timeout and retries with backoff."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        fmt: Literal["json", "alertmanager"] = "json",
        timeout_s: float = 5.0,
        attempts: int = 5,
        backoff_s: float = 0.5,
        backoff_max_s: float = 30.0,
        queue_size: int = 1000,
        headers: dict[str, str] | None = None,
        metrics: AlertMetrics | None = None,
    ):
        import httpx

        self.url = url
        # Logs, the delivery ledger in Redis and the history name it by host and a digest of the URL: its path
        # or query is often the token.
        self.where = host_only(url)
        self.key = webhook_key(url)
        self._log_filter = _WebhookByHost(self.where)
        logging.getLogger("httpx").addFilter(self._log_filter)
        self.fmt = fmt
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.metrics = metrics
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self._client = httpx.Client(timeout=timeout_s, headers={"User-Agent": "sentimon-alerts", **(headers or {})})
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._thread = threading.Thread(target=self._run, name="sentimon-webhook", daemon=True)
        self._thread.start()

    def body(self, payload: dict[str, Any]) -> Any:
        return alertmanager_alerts(payload) if self.fmt == "alertmanager" else payload

    def send(self, payload: dict[str, Any]) -> None:
        self.submit(payload, lambda ok: None)

    def submit(self, payload: dict[str, Any], done: Done) -> None:
        """Queue one POST; ``done`` is called from the sender thread with its outcome."""
        try:
            self._queue.put_nowait((self.body(payload), dedup_headers(payload), done))
        except queue.Full:
            self.dropped += 1
            self._count("dropped")
            log.error("webhook %s queue full (%d): alert %s for %s not sent now; retried later", self.where,
                      self._queue.maxsize, payload["rule"], payload["entity"])  # fmt: skip
            done(False)

    def _count(self, outcome: str) -> None:
        if self.metrics:
            self.metrics.deliveries.labels("webhook", outcome).inc()

    def _scrub(self, error: object) -> str:
        """An HTTP library's error text, which may quote the URL it was given, with the URL by host only."""
        return mask_urls_in(str(error).replace(self.url, self.where))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                body, headers, done = item
                ok = self._deliver(body, headers)
                try:
                    done(ok)
                except Exception:  # the callback is the dispatcher's; never let it stop this thread
                    log.exception("webhook %s: delivery callback failed", self.where)
            finally:
                self._queue.task_done()

    def _deliver(self, body: Any, headers: dict[str, str]) -> bool:
        import httpx
        from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff_s, max=self.backoff_max_s),
            retry=retry_if_exception_type((_Retryable, httpx.TransportError)),
            reraise=True,
            before_sleep=lambda state: log.warning(
                "webhook %s attempt %d failed: %s; retrying", self.where, state.attempt_number,
                self._scrub(state.outcome and state.outcome.exception()),
            ),
        )  # fmt: skip
        try:
            for attempt in retrying:
                with attempt:
                    response = self._client.post(self.url, json=body, headers=headers)
                    if response.status_code == 429 or response.status_code >= 500:
                        raise _Retryable(f"HTTP {response.status_code}")
                    if response.status_code >= 400:
                        raise _Final(f"HTTP {response.status_code}: {response.text[:200]}")
        except _Final as exc:
            self.failed += 1
            self._count("rejected")
            log.error("webhook %s refused the alert for good: %s", self.where, self._scrub(exc))
            return True  # settled: the same payload would be refused again
        except (_Retryable, httpx.HTTPError) as exc:
            self.failed += 1
            self._count("failed")
            log.error(
                "webhook %s gave up: %s (the alert stays claimed and is retried later)", self.where, self._scrub(exc)
            )
            return False
        self.delivered += 1
        self._count("ok")
        return True

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until every queued notification was delivered or given up; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout_s: float = 10.0) -> None:
        self.flush(timeout_s)
        try:
            self._queue.put(_STOP, timeout=timeout_s)
        except queue.Full:
            log.error("webhook %s: queue still full at close; %d undelivered", self.where, self._queue.qsize())
        self._thread.join(timeout_s)
        self._client.close()
        logging.getLogger("httpx").removeFilter(self._log_filter)
