"""Streaming: Kafka micro-batches -> scorer -> idempotent per-entity Redis windows (+ DLQ, metrics).

Start reading at ``pipeline.process_batch`` (the pure core); ``app`` is the thin Faust shell around it.
Public API: ``WindowStore`` / ``WindowStats`` (windows read by alerts and the CLI), ``parse_message``,
``EntityExtractor``, ``Pipeline`` / ``ScoredEvent`` / ``Hook`` and ``StreamsError``.
"""

from streams.windows import LABELS, ApplyResult, BucketStats, WindowStats, WindowStore

__all__ = ["LABELS", "ApplyResult", "BucketStats", "WindowStats", "WindowStore"]
