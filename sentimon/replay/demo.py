"""The pieces of `sentimon demo` that are not terminal output: a namespaced configuration, the worker's
environment, routing the timeline onto the raw topics at a chosen pace, and waiting for the windows."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from sentimon.core.host import free_port


def demo_settings(settings, run_id: str, out_dir: Path, model: str | None = None):
    """Everything a demo run writes lives under ``run_id``: topics, Redis prefixes, the alert history file, the
    consumer group. Reruns never see each other's state, and production state is never touched."""
    ns = f"sentimon.demo.{run_id}"
    return settings.model_copy(
        update={
            "model": model or settings.model,
            "topic_social": f"{ns}.raw.social",
            "topic_market": f"{ns}.raw.market",
            "topic_scored": f"{ns}.scored",
            "topic_dlq": f"{ns}.dlq",
            "topic_alerts": f"{ns}.alerts",
            # One partition on one topic keeps the whole day in event-time order inside the worker: played
            # hundreds of times faster than real time, any skew between partitions would be minutes of event
            # time (late events, entities looking silent) that a real-time stream never has.
            "topic_partitions": 1,
            "window_prefix": f"demo:{run_id}",
            "alerts_prefix": f"demo:{run_id}:alerts",
            "database_url": f"sqlite:///{(out_dir / 'alerts.db').resolve()}",
            "worker_id": f"sentimon-demo-{run_id}",
            "worker_data_dir": out_dir / "worker",
            "stream_hooks": ["sentimon.alerts:stream_hook"],
            "alerts_webhooks": [],
            # The day plays hundreds of times faster than real time: a second of skew between the market and
            # social agents is minutes of event time, so lateness is scaled up with it.
            "window_allowed_lateness_ms": 3 * 3_600_000,
            # A demo runs beside whatever else is on this host: its worker takes free ports.
            "metrics_port": free_port(),
            "web_port": free_port(),
        }
    )


def settings_env(settings) -> dict[str, str]:
    """``SENTIMON_*`` variables that reproduce ``settings`` in a child process."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, list | dict):
            value = json.dumps([str(v) for v in value] if isinstance(value, list) else value)
        env[f"SENTIMON_{name.upper()}"] = str(value)
    return env


def pace(
    messages: list[dict],
    send: Callable[[dict], None],
    speed: float,
    *,
    on_progress: Callable[[int, int], None] = lambda sent, ts: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    tick_s: float = 0.05,
) -> float:
    """Send ``messages`` (sorted by ts) so event time runs ``speed`` times faster than wall time.
    Returns the wall seconds spent."""
    if not messages:
        return 0.0
    started, first_ts = clock(), messages[0]["ts"]
    for i, message in enumerate(messages, 1):
        due = started + (message["ts"] - first_ts) / 1000 / speed
        while (wait := due - clock()) > 0:
            sleep(min(wait, tick_s))
        send(message)
        if i % 50 == 0 or i == len(messages):
            on_progress(i, message["ts"])
    return clock() - started


def scored_count(bootstrap: str, topic: str) -> int:
    """Records on the scored topic: every message the worker finished (applied, duplicate or late)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="sentimon-demo")
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        return sum(consumer.end_offsets([TopicPartition(topic, p) for p in partitions]).values())
    finally:
        consumer.close()
