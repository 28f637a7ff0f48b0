"""Drift references from history, and the workers' drift state: what `sentimon drift` wires.

A reference is built from scored events: a quiet period of the live scored topic (records whose origin is the
given raw topic, Kafka timestamps in [since, until)), or everything a replay namespace published to its scored
topics (``<topics.scored>.replay.<namespace>.<model>``). Every text is tokenized for the unknown-token rate
with the bundle's tokenizer of the model named (the live worker samples a few per batch; the monitor adds that
sampling spread to the reference's).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from typing import Any

from sentimon.inference.drift import DriftReference, Observation, build_reference, observation
from sentimon.replay.errors import ReplayError
from sentimon.replay.reader import TopicRange
from sentimon.replay.run import TOPIC_INFIX
from sentimon.streams.drift import status_key, unknown_token_counter

TOKENIZE_BATCH = 256


def scored_events(settings, topic: str, since_ms: int | None = None, until_ms: int | None = None,
                  origin: str | None = None) -> Iterator[dict[str, Any]]:  # fmt: skip
    """The scored-topic records of ``topic`` in the time range, once per message id (re-deliveries and records
    marked duplicate left out), only those from raw topic ``origin`` when given."""
    seen: set[str] = set()
    for record in TopicRange(settings, topic, since_ms, until_ms):
        try:
            event = json.loads(record.value or b"")
        except ValueError:
            continue
        if not isinstance(event, dict) or event.get("status") == "duplicate" or "probs" not in event:
            continue
        if origin is not None and (event.get("origin") or {}).get("topic") != origin:
            continue
        mid = str(event.get("id"))
        if mid in seen:
            continue
        seen.add(mid)
        yield event


def observations(events: Iterable[dict[str, Any]], counter: Any = None, model_name: str | None = None,
                 topic: str | None = None) -> Iterator[Observation]:  # fmt: skip
    """Observations of scored-topic records; with ``counter``, the unknown tokens of ``model_name``'s texts.
    ``topic`` overrides the origin topic (a replay's records are keyed by the topic the replay read)."""
    batch: list[dict[str, Any]] = []

    def flush() -> Iterator[Observation]:
        mine = [
            i for i, ev in enumerate(batch) if counter is not None and (ev.get("model") or {}).get("name") == model_name
        ]
        counts = dict(zip(mine, counter.count([batch[i].get("text") or "" for i in mine]), strict=True)) if mine else {}
        for i, ev in enumerate(batch):
            unk, tokens = counts.get(i, (0, 0))
            o = observation(ev, unk, tokens)
            yield o if topic is None else Observation(o.model, topic, o.label, o.confidence, o.length, o.unk, o.tokens,
                                                      o.model_version)  # fmt: skip
        batch.clear()

    for ev in events:
        batch.append(ev)
        if len(batch) >= TOKENIZE_BATCH:
            yield from flush()
    yield from flush()


def replay_topics(settings, namespace: str) -> list[str]:
    """The scored topics a replay namespace published (one per model)."""
    from sentimon.infra import kafka_clients

    head = f"{settings.topics.scored}{TOPIC_INFIX}{namespace}."
    consumer = kafka_clients.consumer(settings, enable_auto_commit=False, client_id="sentimon-drift")
    try:
        return sorted(t for t in consumer.topics() if t.startswith(head))
    finally:
        consumer.close()


def reference_from_replay(settings, namespace: str, model: str | None = None) -> DriftReference:
    """A reference from every scored topic of replay ``namespace``, keyed by the raw topic the replay read."""
    topics = replay_topics(settings, namespace)
    if not topics:
        raise ReplayError(
            f"replay namespace {namespace!r} published no scored topic ({settings.topics.scored}{TOPIC_INFIX}"
            f"{namespace}.*); run `sentimon replay --namespace {namespace} ...` with --publish (the default)"
        )
    counter, name = unknown_token_counter(settings, model)

    def everything() -> Iterator[Observation]:
        for topic in topics:
            yield from observations(scored_events(settings, topic), counter, name)

    return _build(settings, everything(), f"replay {namespace}")


def reference_from_topic(settings, topic: str, since_ms: int | None, until_ms: int | None,
                         model: str | None = None) -> DriftReference:  # fmt: skip
    """A reference from the live scored topic: events from raw ``topic`` scored in [since, until)."""
    counter, name = unknown_token_counter(settings, model)
    events = scored_events(settings, settings.topics.scored, since_ms, until_ms, origin=topic)
    span = f"{_iso(since_ms)}..{_iso(until_ms)}"
    return _build(settings, observations(events, counter, name), f"topic {topic} {span}")


def _build(settings, obs: Iterable[Observation], source: str) -> DriftReference:
    d = settings.drift
    return build_reference(obs, d.window_events, d.min_reference_windows, source, int(time.time() * 1000))


def worker_status(settings) -> list[dict[str, Any]]:
    """The last drift window report of every (worker, model, topic), newest first."""
    import redis

    from sentimon.core.redact import mask_url
    from sentimon.infra.redis_client import connect

    client = connect(settings.stack)
    try:
        raw = client.hgetall(status_key(settings.windows.prefix))
    except redis.RedisError as exc:
        raise ReplayError(
            f"Redis at {mask_url(settings.stack.redis)} is unreachable ({type(exc).__name__}); the workers' drift "
            "state is there: start it with `sentimon up` or set stack.redis_url (SENTIMON_REDIS_URL)"
        ) from None
    finally:
        client.close()
    rows = [json.loads(v) for v in raw.values()]
    return sorted(rows, key=lambda r: (r["model"], r["topic"], -r["at_ms"]))


def _iso(ms: int | None) -> str:
    if ms is None:
        return "*"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def replay_drift(run: Any) -> dict[str, Any] | None:
    """A replayed model's drift figures against the configured reference (``drift.reference``), per topic the
    reference holds for it; None when there is no reference to compare with."""
    from sentimon.inference.drift import Thresholds, reference_path, replay_figures

    drift = getattr(run.settings, "drift", None)
    path = reference_path(run.settings) if drift is not None else None
    if drift is None or path is None or not path.is_file():
        return None
    reference = DriftReference.load(path)
    counter, name = unknown_token_counter(run.settings) if drift.unk_sample else (None, None)
    obs = observations((ev.to_dict() for ev in run.events.values()), counter, name)
    return {
        "reference": str(path),
        "reference_source": reference.source,
        "window_events": reference.window_events,
        "topics": replay_figures(obs, reference, Thresholds.from_settings(drift)),
    }
