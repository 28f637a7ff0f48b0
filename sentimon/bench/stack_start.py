"""Time the local stack: cold start (fresh state dir), warm start (existing data), a 1,000-message
kafka-python round trip, and `down`. Prints a Markdown table; ports are picked free, nothing else is touched.

    .venv/bin/python -m sentimon.bench.stack_start [--fetch] [--secure]
    # --fetch also times downloading the Kafka jars; --secure also times `up --secure` in the same run
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


def measure(secure: bool, cache: Path | None) -> tuple[Settings, list[tuple[str, float]]]:
    """The steps on a fresh local stack on free ports; ``secure``: `up --secure` (TLS, logins)."""
    state = Path(tempfile.mkdtemp(prefix="sentimon-bench-", dir="/tmp"))
    local: dict[str, Any] = {
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
        rows.append(("cold up (format Kafka storage, initdb, start all)", timed(lambda: stack.up(secure=secure))))
        # A secure stack's clients need its logins and certificates (client.toml); a plain one's settings serve.
        client = load_settings(stack.client_config) if secure and stack.client_config else settings
        rows.append(("1,000-message kafka-python round trip (create topic, produce, consume)",
                     round_trip(client)))  # fmt: skip
        rows.append(("down", timed(stack.down)))
        rows.append(("warm up (existing data)", timed(lambda: stack.up(secure=secure))))
        rows.append(("down", timed(stack.down)))
    finally:
        stack.down()
        shutil.rmtree(state, ignore_errors=True)
    return settings, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fetch", action="store_true", help="also time the Kafka jar download (empty cache)")
    parser.add_argument("--secure", action="store_true", help="also time `up --secure`, right after the plain stack")
    args = parser.parse_args()
    cache = Path(tempfile.mkdtemp(prefix="sentimon-cache-")) if args.fetch else None
    try:
        settings, plain = measure(False, cache)
        secure = measure(True, cache)[1] if args.secure else None
    finally:
        if cache:
            shutil.rmtree(cache, ignore_errors=True)
    jars = "jars downloaded" if args.fetch else "jars cached"
    print(f"stack start, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()} ({platform.machine()}), "
          f"Kafka {settings.stack.kafka_version}, {jars}")  # fmt: skip
    if secure is None:
        print("| step | seconds |\n|---|---|")
        for name, seconds in plain:
            print(f"| {name} | {seconds:.1f} |")
        return
    print("| step | plain `up`, s | `up --secure`, s |\n|---|---:|---:|")
    for (name, a), (_, b) in zip(plain, secure, strict=True):
        print(f"| {name} | {a:.1f} | {b:.1f} |")


if __name__ == "__main__":
    main()
