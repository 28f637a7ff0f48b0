"""Time the local stack: cold start (fresh state dir), warm start (existing data), a 1,000-message
kafka-python round trip, and `down`. Prints a Markdown table; ports are picked free, nothing else is touched.

    .venv/bin/python -m sentimon.bench.stack_start [--fetch]   # --fetch also times downloading the Kafka jars
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sentimon.core.host import free_port
from sentimon.core.settings import Settings, load_settings
from sentimon.infra import Stack, TopicSpec, ensure_topics, kafka_clients


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def round_trip(settings: Settings, n: int = 1000) -> float:
    def run() -> None:
        ensure_topics(settings, [TopicSpec("bench.roundtrip", 1, 3_600_000)])
        producer = kafka_clients.producer(settings, acks="all")
        for i in range(n):
            producer.send("bench.roundtrip", json.dumps({"i": i}).encode())
        producer.flush()
        producer.close()
        consumer = kafka_clients.consumer(
            settings, "bench.roundtrip", auto_offset_reset="earliest", consumer_timeout_ms=10000
        )
        got = sum(1 for _, __ in zip(range(n), consumer, strict=False))
        consumer.close()
        assert got == n, f"round trip returned {got} of {n}"

    return timed(run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fetch", action="store_true", help="also time the Kafka jar download (empty cache)")
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="sentimon-bench-", dir="/tmp"))
    cache = Path(tempfile.mkdtemp(prefix="sentimon-cache-")) if args.fetch else None
    local: dict[str, Any] = {  # a fresh local stack on free ports
        "state_dir": state,
        "kafka_port": free_port(),
        "kafka_controller_port": free_port(),
        "redis_port": free_port(),
        "postgres_port": free_port(),
    }
    if cache:
        local["cache_dir"] = cache
    settings = load_settings(stack=local)
    stack = Stack(settings)
    rows = []
    try:
        rows.append(("cold up (format Kafka storage, initdb, start all)", timed(stack.up)))
        rows.append(("1,000-message kafka-python round trip (create topic, produce, consume)",
                     round_trip(settings)))  # fmt: skip
        rows.append(("down", timed(stack.down)))
        rows.append(("warm up (existing data)", timed(stack.up)))
        rows.append(("down", timed(stack.down)))
    finally:
        stack.down()
        shutil.rmtree(state, ignore_errors=True)
        if cache:
            shutil.rmtree(cache, ignore_errors=True)
    jars = "jars downloaded" if args.fetch else "jars cached"
    print(f"stack start, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()} ({platform.machine()}), "
          f"Kafka {settings.stack.kafka_version}, {jars}")  # fmt: skip
    print("| step | seconds |\n|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
