"""Streaming: Kafka micro-batches -> scorer -> idempotent per-entity Redis windows (+ DLQ, metrics).

Start reading at ``pipeline.Pipeline.process`` (the pure core: one batch of raw records in, scored events and
dead letters out); ``app`` is the thin Faust shell around it and ``worker.run_worker`` wires everything.
Public API:
- ``WindowStore`` / ``WindowStats`` / ``BucketStats``: the Redis windows (alerts reads them through its own protocol).
- ``Pipeline``, ``RawRecord``, ``ScoredEvent``, ``DeadLetter``, ``Hook``: the batch core and its hook contract
  ``hook(events: list[ScoredEvent], store: WindowStore) -> None``, called after each batch's window update.
- ``parse_message`` / ``Message`` / ``Rejection``: the wire schema; ``EntityExtractor``: cashtags + watchlist.
- ``StreamMetrics``: the Prometheus series; ``StreamsError``: the package's user-fixable error.
- Model rollout (README "Rollout"): ``rollout`` is the pure core (sticky canary routing, shadow comparator,
  analysis decisions); ``follow`` the worker side (hot swap on registry alias changes), ``shadow`` the candidate's
  off-path scoring, ``model_counts`` per-model window counts, ``rollout_control`` the analysis loop `rollout start`
  runs; ``drift`` the after-batch drift hook (``inference.drift`` is its core).
The Faust app is imported lazily (``streams.worker.run_worker``) so reading windows never imports Faust.
"""

from sentimon.streams.entities import EntityExtractor, WatchlistError, load_watchlist
from sentimon.streams.errors import StreamsError
from sentimon.streams.metrics import StreamMetrics
from sentimon.streams.pipeline import DeadLetter, Hook, Pipeline, RawRecord, ScoredEvent
from sentimon.streams.schema import Message, Rejection, parse_message
from sentimon.streams.windows import LABELS, ApplyResult, BucketStats, WindowStats, WindowStore

__all__ = [
    "LABELS",
    "ApplyResult",
    "BucketStats",
    "DeadLetter",
    "EntityExtractor",
    "Hook",
    "Message",
    "Pipeline",
    "RawRecord",
    "Rejection",
    "ScoredEvent",
    "StreamMetrics",
    "StreamsError",
    "WatchlistError",
    "WindowStats",
    "WindowStore",
    "load_watchlist",
    "parse_message",
]
