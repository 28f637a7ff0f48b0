"""The worker side of a rollout: follow a registry alias, route a canary, shadow-score, publish step statistics.

A worker whose model is ``NAME@champion`` builds a ``Follower`` (``follower_for``). It keeps an immutable
``Routing`` (champion scorer, candidate scorer, the rollout state) and replaces it whole; the pipeline reads it
once at the start of each batch (``Follower.score``), so a batch is scored by the models of one snapshot and a
new version takes over between batches -- nothing is re-read, skipped or counted twice: the batch loop, its
offsets and the idempotent window update are untouched.

Threads (all daemons, none on the event loop or the batch path):
- *listener*: subscribes to ``<registry_prefix>:changes``; a note for this model wakes the refresher;
- *refresher*: on a note, and every ``inference.follow_poll_s`` anyway (a missed note is found by polling),
  reads the champion pointer ``<prefix>:NAME:champion`` and the rollout state ``<prefix>:NAME:rollout``, loads
  and warms any version it has not loaded, then installs the new ``Routing``; it also publishes this worker's
  step statistics to ``<prefix>:NAME:rollout:stats`` (a hash, one field per worker);
- *shadow*: scores copies of batches with the other model from a bounded queue (``inference.shadow_queue``
  batches); a full queue drops the copy and counts it -- the champion never waits for the shadow.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from sentimon.streams.model_counts import count_by_model
from sentimon.streams.pipeline import warm_up
from sentimon.streams.rollout import RolloutState, StepStats, bucket_of, primary_entity, routes_to_candidate
from sentimon.streams.shadow import ShadowJob, ShadowRunner

log = logging.getLogger(__name__)

CHAMPION, CANDIDATE = "champion", "candidate"
SWAP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def rollout_key(prefix: str, name: str) -> str:
    return f"{prefix}:{name}:rollout"


def stats_key(prefix: str, name: str) -> str:
    return f"{prefix}:{name}:rollout:stats"


class VersionedScorer:
    """A registry version's scorer, named by the registry (``NAME``, content ``VERSION``) rather than by its
    manifest: two builds with the same manifest version are still told apart in every scored event."""

    def __init__(self, inner: Any, name: str, version: str):
        self.inner, self.name, self.version = inner, name, version

    def score(self, texts: list[str]) -> list[Any]:
        return self.inner.score(texts)

    def __getattr__(self, item: str) -> Any:
        return getattr(self.inner, item)


@dataclass(frozen=True)
class Routing:
    """What one batch is scored with. ``state`` is the running rollout whose candidate is loaded, else None."""

    champion: Any
    candidate: Any = None
    state: RolloutState | None = None

    @property
    def percent(self) -> int:
        return self.state.percent if self.state is not None and self.candidate is not None else 0

    @property
    def shadow(self) -> bool:
        return self.state is not None and self.candidate is not None and self.state.shadow

    def role_of(self, entities: Sequence[str]) -> str:
        if self.state is None or self.candidate is None:
            return CHAMPION
        hit = routes_to_candidate(self.state.salt, primary_entity(entities), self.state.percent)
        return CANDIDATE if hit else CHAMPION


class RolloutMetrics:
    """The rollout series, on the worker's registry."""

    def __init__(self, registry: CollectorRegistry):
        self.swap_seconds = Histogram(
            "sentimon_model_swap_seconds",
            "From the alias change (notification, or the poll that found it) to the first batch the new champion "
            "scored.",
            buckets=SWAP_BUCKETS,
            registry=registry,
        )
        self.loads = Counter(
            "sentimon_model_loads_total", "Model versions loaded and warmed by the follower, by outcome.", ["outcome"],
            registry=registry,
        )  # fmt: skip
        self.percent = Gauge(
            "sentimon_rollout_percent", "Share of entities (percent) the canary candidate scores.", registry=registry
        )
        self.routed = Counter(
            "sentimon_rollout_messages_total", "Messages scored, by role (champion, candidate).", ["role"],
            registry=registry,
        )  # fmt: skip
        self.shadow = Counter(
            "sentimon_shadow_messages_total", "Shadow copies, by outcome (scored, dropped, failed).", ["outcome"],
            registry=registry,
        )  # fmt: skip


class Follower:
    """Follows ``NAME@champion`` and the model's rollout for one worker; see the module docstring.

    ``load(version)`` returns a scorer of that version (``VersionedScorer``); ``resolve_champion()`` the
    champion's version when Redis holds no pointer (the registry database); ``publish(topic, key, value)`` writes
    shadow records (the worker's producer); ``stream_metrics`` gets ``set_scorer`` on each swap."""

    def __init__(
        self,
        name: str,
        redis: Any,
        load: Callable[[str], Any],
        resolve_champion: Callable[[], str],
        *,
        prefix: str = "sentimon:registry",
        poll_s: float = 2.0,
        stats_s: float = 1.0,
        shadow_queue: int = 64,
        shadow_sample: float = 0.25,
        shadow_topic: str | None = None,
        publish: Callable[[str, bytes | None, bytes], None] | None = None,
        registry: CollectorRegistry | None = None,
        stream_metrics: Any = None,
        model_counts_ttl_ms: int = 8 * 24 * 3600 * 1000,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.name, self.redis, self.load, self.resolve_champion = name, redis, load, resolve_champion
        self.prefix, self.poll_s, self.stats_s = prefix, poll_s, stats_s
        self.shadow_sample, self.shadow_topic, self.publish = shadow_sample, shadow_topic, publish
        self.metrics = RolloutMetrics(registry or CollectorRegistry())
        self.stream_metrics = stream_metrics
        self.model_counts_ttl_ms = model_counts_ttl_ms
        self.clock = clock
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._routing: Routing | None = None
        self._loaded: dict[str, Any] = {}  # version -> scorer (champion and candidate only)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._noted_at: float | None = None  # monotonic time of the first unhandled note
        self._pending_swap: tuple[str, float] | None = None  # (version, noted at) until its first batch
        self._lock = threading.Lock()  # guards _stats, _pending_swap
        self._stats = StepStats()
        self._stats_dirty = False
        self.shadow = ShadowRunner(shadow_queue, self._shadowed, self._shadow_failed)
        self._threads: list[threading.Thread] = []
        self._pubsub: Any = None

    # -- lifecycle -------------------------------------------------------------------------------------------

    @property
    def champion(self) -> Any:
        return self.routing().champion

    def routing(self) -> Routing:
        routing = self._routing
        if routing is None:
            raise RuntimeError("Follower.start() was not called")
        return routing

    def start(self) -> Follower:
        """Load the champion (and a running rollout's candidate) now, then follow in the background."""
        self._refresh(initial=True)
        self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(f"{self.prefix}:changes")
        for target, what in ((self._listen, "listener"), (self._refresher, "refresher")):
            thread = threading.Thread(target=target, name=f"sentimon-follow-{what}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self.shadow.start()
        return self

    def attach(self, registry: CollectorRegistry, publish: Any = None, stream_metrics: Any = None) -> None:
        """Serve the rollout metrics on the worker's registry, publish shadow records through ``publish`` and keep
        ``sentimon_model_info`` (``stream_metrics``) naming the models in use; the worker calls it after start."""
        self.metrics = RolloutMetrics(registry)
        self.publish, self.stream_metrics = publish, stream_metrics
        routing = self._routing
        if routing is not None:
            self._show(routing)

    def _show(self, routing: Routing) -> None:
        self.metrics.percent.set(routing.percent)
        if self.stream_metrics is not None:
            self.stream_metrics.set_scorer(routing.champion)
            if routing.candidate is not None:
                self.stream_metrics.model_info.labels(name=routing.candidate.name, version=routing.candidate.version,
                                                      tier="candidate").set(1)  # fmt: skip

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self.shadow.close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._publish_stats()
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except Exception:
                log.debug("closing the registry subscription failed", exc_info=True)

    # -- following -------------------------------------------------------------------------------------------

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                note = self._pubsub.get_message(timeout=0.5)
            except Exception as exc:  # Redis restarting: the refresher's polling covers the gap
                log.warning("registry notifications interrupted (%s); polling every %.1f s", exc, self.poll_s)
                self._stop.wait(self.poll_s)
                try:
                    self._pubsub.subscribe(f"{self.prefix}:changes")
                except Exception:
                    pass
                continue
            if note is None or note.get("type") != "message":
                continue
            try:
                body = json.loads(note["data"])
            except (TypeError, ValueError):
                continue
            if isinstance(body, dict) and body.get("name") == self.name:
                if self._noted_at is None:
                    self._noted_at = self.clock()
                self._wake.set()

    def _refresher(self) -> None:
        next_poll = self.clock() + self.poll_s
        while not self._stop.is_set():
            timeout = max(min(next_poll - self.clock(), self.stats_s), 0.0)
            woken = self._wake.wait(timeout)
            if self._stop.is_set():
                return
            if woken or self.clock() >= next_poll:
                self._wake.clear()
                next_poll = self.clock() + self.poll_s
                try:
                    self._refresh()
                except Exception:
                    self.metrics.loads.labels(outcome="failed").inc()
                    log.exception("following %s@champion failed; keeping the models in use", self.name)
            self._publish_stats()

    def _read(self) -> tuple[str | None, RolloutState | None]:
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(f"{self.prefix}:{self.name}:champion")
        pipe.get(rollout_key(self.prefix, self.name))
        champion, raw = pipe.execute()
        state = RolloutState.from_json(raw) if raw else None
        return (champion.decode() if isinstance(champion, bytes) else champion), state

    def _get(self, version: str) -> Any:
        scorer = self._loaded.get(version)
        if scorer is None:
            started = time.perf_counter()
            try:
                scorer = self.load(version)
                warm_up(scorer)  # first-call allocations happen here, not in a batch
            except Exception:
                self.metrics.loads.labels(outcome="failed").inc()
                raise
            self.metrics.loads.labels(outcome="loaded").inc()
            log.info("loaded and warmed %s@%s in %.2f s", self.name, version, time.perf_counter() - started)
            self._loaded[version] = scorer
        return scorer

    def _refresh(self, initial: bool = False) -> None:
        noted = self._noted_at if self._noted_at is not None else self.clock()
        self._noted_at = None
        champion_version, state = self._read()
        if champion_version is None:
            champion_version = self.resolve_champion()
        champion = self._get(champion_version)
        candidate = None
        if state is not None and state.active and state.champion == champion_version:
            try:
                candidate = self._get(state.candidate)
            except Exception:
                log.exception("candidate %s@%s could not be loaded; the champion scores everything", self.name,
                              state.candidate)  # fmt: skip
                with self._lock:  # the analysis fails the step on it
                    self._step_stats_locked((state.id, state.step)).load_failures += 1
                    self._stats_dirty = True
        else:
            state = None  # finished, or meant for another champion: the champion scores everything
        routing = Routing(champion, candidate, state)
        previous = self._routing
        if previous is not None and _same(previous, routing):
            return
        keep = {champion_version, *([state.candidate] if state and candidate is not None else [])}
        self._loaded = {v: s for v, s in self._loaded.items() if v in keep}
        with self._lock:
            if previous is not None and previous.champion.version != champion_version:
                self._pending_swap = (champion_version, noted)
            self._step_stats_locked((state.id, state.step) if state else ("", 0))
        self._routing = routing  # the swap: the next batch reads this snapshot
        self._show(routing)
        if not initial:
            what = f"; rollout {state.mode} {state.candidate} at {state.percent}%" if state else ""
            log.info("following %s: champion %s%s", self.name, champion_version, what)

    # -- the batch path (executor thread) --------------------------------------------------------------------

    def score(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        entities: Sequence[Sequence[str]],
        score: Callable[[list[str], Any], list[Any]],
    ) -> tuple[list[Any], list[Any]]:
        """Score one batch with the current snapshot: ``score(texts, scorer)`` per model; returns predictions
        (exceptions for failed texts, as ``Pipeline.score``) and the scorer of each, in order."""
        routing = self.routing()  # read once: the whole batch uses one snapshot
        roles = [routing.role_of(e) for e in entities]
        preds: list[Any] = [None] * len(texts)
        by: list[Any] = [None] * len(texts)
        state = routing.state
        for role in (CHAMPION, CANDIDATE):
            idx = [i for i, r in enumerate(roles) if r == role]
            if not idx:
                continue
            scorer = routing.champion if role == CHAMPION else routing.candidate
            started = time.perf_counter()
            got = score([texts[i] for i in idx], scorer)
            seconds = time.perf_counter() - started
            for i, pred in zip(idx, got, strict=True):
                preds[i], by[i] = pred, scorer
            self.metrics.routed.labels(role=role).inc(len(idx))
            if state is None:
                continue
            errors = sum(isinstance(p, Exception) for p in got)
            with self._lock:
                self._stats.model(role).add_batch(len(idx), errors, seconds)
                self._stats_dirty = True
            self._offer_shadow(routing, role, [ids[i] for i in idx], [texts[i] for i in idx], got, seconds)
        self._note_swap(routing)
        return preds, by

    def _note_swap(self, routing: Routing) -> None:
        pending = self._pending_swap
        if pending is None or pending[0] != routing.champion.version:
            return
        with self._lock:
            if self._pending_swap != pending:
                return
            self._pending_swap = None
        seconds = max(self.clock() - pending[1], 0.0)
        self.metrics.swap_seconds.observe(seconds)
        log.info("model swap: %s@%s scored its first batch %.3f s after the alias change", self.name, pending[0],
                 seconds)  # fmt: skip

    def _offer_shadow(
        self, routing: Routing, role: str, ids: list[str], texts: list[str], preds: list[Any], seconds: float
    ) -> None:
        state = routing.state
        assert state is not None
        if role == CHAMPION and not state.shadow:
            return
        keep = [i for i, p in enumerate(preds) if not isinstance(p, Exception)]
        if role == CANDIDATE:  # the canary's agreement: the champion re-scores a sample of the candidate's texts
            keep = [i for i in keep if bucket_of(state.id, ids[i]) < math.ceil(self.shadow_sample * 100)]
        if not keep:
            return
        scored_by, other = (routing.champion, routing.candidate) if role == CHAMPION else (routing.candidate,
                                                                                        routing.champion)  # fmt: skip
        job = ShadowJob(scored_by, other, role, [ids[i] for i in keep], [texts[i] for i in keep],
                        [preds[i].label for i in keep], seconds, state.id, state.step)  # fmt: skip
        if not self.shadow.offer(job):
            self.metrics.shadow.labels(outcome="dropped").inc(len(keep))
            with self._lock:
                if (self._stats.rollout, self._stats.step) == (state.id, state.step):
                    self._stats.shadow.dropped += len(keep)
                    self._stats_dirty = True

    # -- shadow results (the shadow thread) ------------------------------------------------------------------

    def _shadowed(self, job: ShadowJob, labels: list[str], seconds: float) -> None:
        champion_labels, candidate_labels = (job.labels, labels) if job.role == CHAMPION else (labels, job.labels)
        champion_s, candidate_s = (job.seconds, seconds) if job.role == CHAMPION else (seconds, None)
        with self._lock:
            if (self._stats.rollout, self._stats.step) == (job.rollout, job.step):
                self._stats.shadow.add(champion_labels, candidate_labels)
                self._stats.shadow.add_latency(champion_s, candidate_s)
                self._stats_dirty = True
        self.metrics.shadow.labels(outcome="scored").inc(len(labels))
        if self.shadow_topic and self.publish is not None:
            champion, candidate = (job.scored_by, job.other) if job.role == CHAMPION else (job.other, job.scored_by)
            record = {
                "rollout": job.rollout, "step": job.step, "model": self.name,
                "champion": champion.version, "candidate": candidate.version,
                "results": [{"id": i, "champion": a, "candidate": b}
                            for i, a, b in zip(job.ids, champion_labels, candidate_labels, strict=True)],
                "latency_s": {"champion": champion_s, "candidate": candidate_s},
            }  # fmt: skip
            self.publish(self.shadow_topic, job.rollout.encode(), json.dumps(record).encode())

    def _shadow_failed(self, job: ShadowJob) -> None:
        self.metrics.shadow.labels(outcome="failed").inc(len(job.texts))

    # -- step statistics -------------------------------------------------------------------------------------

    def _step_stats_locked(self, key: tuple[str, int]) -> StepStats:
        """The statistics of step ``key`` (rollout id, step): a new step publishes the last one's and starts afresh."""
        if (self._stats.rollout, self._stats.step) != key:
            self._publish_stats_locked()
            self._stats = StepStats(rollout=key[0], step=key[1])
        return self._stats

    def _publish_stats(self) -> None:
        with self._lock:
            self._publish_stats_locked()

    def _publish_stats_locked(self) -> None:
        if not self._stats_dirty or not self._stats.rollout:
            return
        body = {**self._stats.to_dict(), "at": time.time()}
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hset(stats_key(self.prefix, self.name), self.worker_id, json.dumps(body))
            pipe.expire(stats_key(self.prefix, self.name), 7 * 24 * 3600)
            pipe.execute()
            self._stats_dirty = False
        except Exception as exc:  # published again at the next tick
            log.warning("publishing rollout statistics failed: %s", exc)

    # -- per-model window counts (an after-batch hook) -------------------------------------------------------

    def window_hook(self, events: list[Any], store: Any) -> None:
        """While a canary splits traffic, count applied events per model beside the windows (``model_counts``)."""
        routing = self._routing
        if routing is not None and routing.percent > 0:
            count_by_model(events, store.redis, store.prefix, store.bucket_ms, self.model_counts_ttl_ms)


def _same(a: Routing, b: Routing) -> bool:
    def key(r: Routing) -> tuple:
        s = r.state
        return (r.champion.version, r.candidate.version if r.candidate is not None else None,
                (s.id, s.step, s.percent, s.state) if s else None)  # fmt: skip

    return key(a) == key(b)


def follower_for(settings: Any, redis: Any, threads: int, **kwargs: Any) -> Follower | None:
    """The follower of a worker whose ``inference.model`` is ``NAME@champion``; None for any other model."""
    from sentimon.inference.registry import is_ref, parse_ref

    model = settings.inference.model
    if not is_ref(model) or parse_ref(model).alias != CHAMPION:
        return None
    name = parse_ref(model).name

    def load(version: str) -> Any:
        from sentimon import inference

        return VersionedScorer(inference.load(f"{name}@{version}", settings=settings.inference, threads=threads),
                               name, version)  # fmt: skip

    def resolve_champion() -> str:
        from sentimon.inference import registry

        reg = registry.from_settings(settings)
        try:
            version = reg.version_of(f"{name}@champion").version
        finally:
            reg.close()
        assert version is not None
        return version

    inf = settings.inference
    return Follower(
        name, redis, load, resolve_champion, prefix=inf.registry_prefix, poll_s=inf.follow_poll_s,
        stats_s=inf.rollout_stats_s, shadow_queue=inf.shadow_queue, shadow_sample=inf.canary_shadow_sample,
        shadow_topic=f"{settings.topics.scored}.shadow", model_counts_ttl_ms=settings.windows.retention_ms, **kwargs,
    )  # fmt: skip
