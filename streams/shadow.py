"""Shadow scoring off the batch path: a bounded queue of batch copies and one thread that scores them with the
other model. ``offer`` never waits: a full queue drops the copy (the caller counts it), so the model that serves
the traffic is never slowed by the one that only shadows it."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class ShadowJob:
    """A copy of part of a batch: ``labels`` as ``scored_by`` gave them, to be scored again by ``other``."""

    scored_by: Any
    other: Any
    role: str  # the role of ``scored_by``: "champion" or "candidate"
    ids: list[str]
    texts: list[str]
    labels: list[str]
    seconds: float  # the original's scoring time
    rollout: str
    step: int


class ShadowRunner:
    """``done(job, labels, seconds)`` receives each copy's labels from ``job.other``; ``failed(job)`` a copy that
    could not be scored (logged)."""

    def __init__(
        self,
        size: int,
        done: Callable[[ShadowJob, list[str], float], None],
        failed: Callable[[ShadowJob], None] = lambda job: None,
    ):
        self.done, self.failed = done, failed
        self._queue: queue.Queue[ShadowJob | None] = queue.Queue(maxsize=size)
        self._thread = threading.Thread(target=self._run, name="sentimon-shadow", daemon=True)

    def start(self) -> ShadowRunner:
        self._thread.start()
        return self

    def offer(self, job: ShadowJob) -> bool:
        """Queue a copy; False (dropped) when the queue is full."""
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            return False
        return True

    def idle(self) -> bool:
        return self._queue.empty()

    def close(self, timeout_s: float = 5.0) -> None:
        try:
            self._queue.put(None, timeout=timeout_s)  # after the copies queued before it
        except queue.Full:  # still busy: the thread is a daemon and goes with the process
            pass
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            try:
                started = time.perf_counter()
                labels = [p.label for p in job.other.score(job.texts)]
                self.done(job, labels, time.perf_counter() - started)
            except Exception:
                log.exception("shadow scoring of %d texts failed", len(job.texts))
                self.failed(job)
