"""Pipeline and model status from the worker's Prometheus exposition (the one source of those numbers)."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

_MEANS = ("sentimon_inference_seconds_sum", "sentimon_batch_size_messages_sum",
          "sentimon_ingest_to_window_seconds_sum", "sentimon_ingest_to_window_seconds_count")  # fmt: skip


def worker_status(exposition: str) -> dict[str, Any]:
    """Model (name, version, tier), messages by outcome, dead letters by reason, lag per partition in messages
    and seconds, error counters and batch/latency means, from one scrape of ``/metrics``."""
    out: dict[str, Any] = {"model": None, "messages": {}, "dlq": {}, "lag": [], "errors": {}, "batches": 0}
    lag: dict[tuple[str, str], dict[str, Any]] = {}
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(exposition):
        for s in family.samples:
            name, labels, value = s.name, s.labels, s.value
            if name == "sentimon_model_info" and value == 1:
                out["model"] = {k: labels.get(k, "") for k in ("name", "version", "tier")}
            elif name == "sentimon_messages_total":
                out["messages"][labels["outcome"]] = out["messages"].get(labels["outcome"], 0) + int(value)
            elif name == "sentimon_dlq_messages_total":
                out["dlq"][labels["reason"]] = int(value)
            elif name in ("sentimon_consumer_lag_messages", "sentimon_consumer_lag_seconds"):
                row = lag.setdefault((labels["topic"], labels.get("partition", "")),
                                     {"topic": labels["topic"], "partition": labels.get("partition", "")})  # fmt: skip
                row["messages" if name.endswith("messages") else "seconds"] = value
            elif name in ("sentimon_scorer_errors_total", "sentimon_redis_errors_total", "sentimon_hook_errors_total"):
                key = name.removeprefix("sentimon_").removesuffix("_errors_total")
                out["errors"][key] = out["errors"].get(key, 0) + int(value)
            elif name == "sentimon_batch_size_messages_count":
                out["batches"] = int(value)
            elif name in _MEANS:
                sums[name] = value
    out["lag"] = sorted(lag.values(), key=lambda r: (r["topic"], r["partition"]))
    batches = out["batches"]
    out["mean_batch_size"] = sums.get("sentimon_batch_size_messages_sum", 0) / batches if batches else None
    out["mean_inference_s"] = sums.get("sentimon_inference_seconds_sum", 0) / batches if batches else None
    n = sums.get("sentimon_ingest_to_window_seconds_count", 0)
    out["mean_ingest_to_window_s"] = sums.get("sentimon_ingest_to_window_seconds_sum", 0) / n if n else None
    return out
