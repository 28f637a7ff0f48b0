"""The drift monitor in the worker: an after-batch hook over ``inference.drift.DriftMonitor``.

Load it with ``stream.hooks = ["sentimon.streams.drift:stream_hook"]``. Per batch it adds each newly applied
event (re-deliveries, status "duplicate", are not counted twice) to its (model, topic) window and tokenizes at
most ``drift.unk_sample`` texts for the unknown-token rate; when a window closes it sets the gauges and writes
the window report to Redis (``<windows.prefix>:drift``, one field per worker, model and topic) for
`sentimon drift status`. The reference file is read at start and re-read when it changes, so a new reference
takes effect without a restart; without one the hook only counts.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from sentimon.inference.drift import (
    SIGNALS,
    DriftError,
    DriftMonitor,
    DriftReference,
    Thresholds,
    WindowReport,
    observation,
    reference_path,
)
from sentimon.streams.pipeline import ScoredEvent

log = logging.getLogger(__name__)

STATUS_TTL_S = 7 * 24 * 3600  # a worker gone for a week is dropped from `sentimon drift status`


def status_key(windows_prefix: str) -> str:
    """The Redis hash of the workers' last drift window reports."""
    return f"{windows_prefix}:drift"


class DriftMetrics:
    """The drift series, on the worker's registry (labels: model name and source topic, both bounded)."""

    def __init__(self, registry: CollectorRegistry):
        labels = ["model", "topic"]

        def gauge(name: str, doc: str, extra: tuple[str, ...] = ()) -> Gauge:
            return Gauge(name, doc, [*labels, *extra], registry=registry)

        self.label_js = gauge("sentimon_drift_label_js", "Jensen-Shannon distance (base 2) of the last drift window's "
                              "label mix from the reference.")  # fmt: skip
        self.confidence_z = gauge("sentimon_drift_confidence_z", "Mean top-class probability of the last drift "
                                  "window, in reference sigmas from the reference mean.")  # fmt: skip
        self.confidence_ph = gauge("sentimon_drift_confidence_ph", "Page-Hinkley statistic of the windows' "
                                   "confidence z-scores (alarm at drift.ph_threshold).")  # fmt: skip
        self.length_z = gauge("sentimon_drift_length_z", "Mean text length of the last drift window, in reference "
                              "sigmas.")  # fmt: skip
        self.unk_rate = gauge("sentimon_drift_unknown_token_ratio", "Share of sampled tokens that are the "
                              "tokenizer's unknown token, last drift window.")  # fmt: skip
        self.unk_z = gauge("sentimon_drift_unknown_token_z", "Unknown-token rate of the last drift window, in "
                           "reference sigmas.")  # fmt: skip
        self.detected = gauge("sentimon_drift_detected", "1 while a signal (label_mix, confidence, unknown_tokens, "
                              "text_length) drifts, per model and topic.", ("signal",))  # fmt: skip
        self.windows = Counter("sentimon_drift_windows_total", "Drift windows closed and compared with the "
                               "reference.", labels, registry=registry)  # fmt: skip

    def observe(self, r: WindowReport) -> None:
        key = {"model": r.model, "topic": r.topic}
        self.label_js.labels(**key).set(r.label_js)
        self.confidence_z.labels(**key).set(r.confidence_z)
        self.confidence_ph.labels(**key).set(r.confidence_ph)
        self.length_z.labels(**key).set(r.length_z)
        if r.window.unk_rate is not None and r.unk_z is not None:
            self.unk_rate.labels(**key).set(r.window.unk_rate)
            self.unk_z.labels(**key).set(r.unk_z)
        for signal in SIGNALS:
            self.detected.labels(**key, signal=signal).set(1 if r.detected[signal] else 0)
        self.windows.labels(**key).inc()

    def clear(self) -> None:
        for gauge in (self.label_js, self.confidence_z, self.confidence_ph, self.length_z, self.unk_rate, self.unk_z,
                      self.detected):  # fmt: skip
            gauge.clear()


class DriftHook:
    """``hook(events, store)``: see the module docstring."""

    __name__ = "drift"  # the pipeline names hooks in logs and metrics

    def __init__(self, reference_path: Path, thresholds: Thresholds, metrics: DriftMetrics | None = None,
                 unknown_tokens: Any = None, unk_model: str | None = None, unk_sample: int = 32,
                 worker_id: str = "worker", clock=time.time):  # fmt: skip
        self.reference_path = Path(reference_path)
        self.thresholds = thresholds
        self.metrics = metrics
        self.unknown_tokens = unknown_tokens  # inference.unknown_tokens.UnknownTokens or None
        self.unk_model = unk_model  # the model whose tokenizer that is: other models' events are not sampled
        self.unk_sample = unk_sample if unknown_tokens is not None else 0
        self.worker_id = worker_id
        self.clock = clock
        self.monitor: DriftMonitor | None = None
        self._stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()  # several agents' batches may run in the executor at once

    def reload(self) -> None:
        """Read the reference file again when it changed (size or mtime); a bad file keeps the previous one."""
        try:
            st = os.stat(self.reference_path)
        except FileNotFoundError:
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            reference = DriftReference.load(self.reference_path)
        except DriftError as exc:
            log.warning("drift: %s", exc)
            return
        if self.monitor is None:
            self.monitor = DriftMonitor(reference, self.thresholds)
        else:
            self.monitor.set_reference(reference)
            if self.metrics:
                self.metrics.clear()
        log.info("drift: reference %s (%s, %d model/topic pairs, windows of %d events)", self.reference_path,
                 reference.source, len(reference.topics), reference.window_events)  # fmt: skip

    def __call__(self, events: list[ScoredEvent], store: Any) -> None:
        with self._lock:
            self.reload()
            monitor = self.monitor
            if monitor is None:
                return
            fresh = [ev for ev in events if ev.status != "duplicate"]
            counts = self._sample_unknown(fresh)
            reports = []
            for i, ev in enumerate(fresh):
                unk, tokens = counts.get(i, (0, 0))
                report = monitor.observe(observation(ev, unk, tokens))
                if report is not None:
                    reports.append(report)
            for report in reports:
                if self.metrics:
                    self.metrics.observe(report)
                self._write_status(store, report)

    def _sample_unknown(self, events: list[ScoredEvent]) -> dict[int, tuple[int, int]]:
        mine = [i for i, ev in enumerate(events) if ev.model == self.unk_model] if self.unk_sample else []
        if not mine:
            return {}
        step = max(1, -(-len(mine) // self.unk_sample))  # evenly spread over the batch
        picked = mine[::step][: self.unk_sample]
        counted = self.unknown_tokens.count([events[i].text for i in picked])
        return dict(zip(picked, counted, strict=True))

    def _write_status(self, store: Any, report: WindowReport) -> None:
        client = getattr(store, "redis", None)
        if client is None:
            return
        monitor = self.monitor
        track = monitor.tracks.get((report.model, report.topic)) if monitor else None
        body = {**report.as_dict(), "worker": self.worker_id, "at_ms": int(self.clock() * 1000),
                "drifting_since_events": dict(track.since) if track else {}}  # fmt: skip
        key = status_key(store.prefix)
        pipe = client.pipeline(transaction=False)
        pipe.hset(key, f"{self.worker_id}|{report.model}|{report.topic}", json.dumps(body))
        pipe.expire(key, STATUS_TTL_S)
        pipe.execute()


def stream_hook(settings, registry: CollectorRegistry | None = None) -> DriftHook:
    """The worker's drift hook (``stream.hooks = ["sentimon.streams.drift:stream_hook"]``): gauges on the worker's
    registry, the unknown-token counter of the configured model's bundle (none for VADER)."""
    unknown, name = unknown_token_counter(settings) if settings.drift.unk_sample else (None, None)
    return DriftHook(
        reference_path(settings),
        Thresholds.from_settings(settings.drift),
        DriftMetrics(registry) if registry is not None else None,
        unknown_tokens=unknown,
        unk_model=name,
        unk_sample=settings.drift.unk_sample,
        worker_id=settings.worker.id + f"@{os.uname().nodename}:{os.getpid()}",
    )


def unknown_token_counter(settings, model: str | None = None) -> tuple[Any, str | None]:
    """The unknown-token counter of ``model`` (default: the configured one) and the model name its events carry;
    (None, None) when it has no tokenizer with an unknown token."""
    from sentimon.inference.bundle import MANIFEST_FILE, read_manifest
    from sentimon.inference.cascade import CASCADE_FILE, read_cascade
    from sentimon.inference.loader import BUILTIN, resolve
    from sentimon.inference.unknown_tokens import UnknownTokens

    model = model or settings.inference.model
    if str(model) in BUILTIN:
        return None, None
    path = resolve(model, settings.inference.models_dir, settings.inference)
    if (path / CASCADE_FILE).is_file():
        name = read_cascade(path).name
    elif (path / MANIFEST_FILE).is_file():
        name = read_manifest(path, verify_files=False).name
    else:
        return None, None
    counter = UnknownTokens.from_bundle(path, settings.inference.models_dir)
    return (counter, name) if counter is not None else (None, None)
