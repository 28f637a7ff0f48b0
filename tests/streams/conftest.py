"""Helpers for stream integration tests: real `sentimon worker` subprocesses (so kill -9 is real), topics and
Redis prefix per test, a Kafka producer/consumer, and waiting on exact window counts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from sentimon.core.host import free_port
from sentimon.streams.windows import WindowStore

# Short group timings so joins and rebalances take seconds on a 2-core box (production: README).
TEST_TIMINGS = {
    "SENTIMON_WORKER_SESSION_TIMEOUT_S": "6",
    "SENTIMON_WORKER_HEARTBEAT_S": "1",
    "SENTIMON_WORKER_REBALANCE_TIMEOUT_S": "8",
    "SENTIMON_WORKER_COMMIT_INTERVAL_S": "1",
    "SENTIMON_WORKER_UNASSIGNED_EXIT_S": "45",
}


@dataclass
class StreamEnv:
    """One test's isolated pipeline: its topics, consumer group, Redis prefix and worker processes."""

    settings: object
    name: str
    tmp: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def topics(self) -> dict[str, str]:
        return {k: f"{self.name}.{k}" for k in ("social", "market", "scored", "dlq", "alerts")}

    def env(self, metrics_port: int) -> dict[str, str]:
        s = self.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith("SENTIMON_")}
        env.update(
            {
                "SENTIMON_KAFKA_BOOTSTRAP": s.stack.kafka_servers,
                "SENTIMON_REDIS_URL": s.stack.redis,
                "SENTIMON_STATE_DIR": str(self.tmp / "state"),
                "SENTIMON_WORKER_ID": f"{self.name}-group",
                "SENTIMON_WINDOW_PREFIX": self.name,
                "SENTIMON_MODEL": "vader",
                "SENTIMON_INFERENCE__MARKET_MODEL": "",  # one model for both raw topics
                "SENTIMON_METRICS_PORT": str(metrics_port),
                "SENTIMON_WEB_PORT": str(free_port()),
                **{f"SENTIMON_TOPIC_{k.upper()}": v for k, v in self.topics.items()},
                **TEST_TIMINGS,
                **self.extra_env,
            }
        )
        return env

    def start_worker(self) -> Worker:
        port = free_port()
        name = f"worker-{len(self.procs)}"
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        ready = self.tmp / f"{name}.ready"
        proc = subprocess.Popen(
            [sys.executable, "-m", "sentimon", "worker", "--loglevel", "info", "--ready-file", str(ready)],
            env=self.env(port),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[2],
        )
        self.procs.append(proc)
        return Worker(proc, port, self.tmp / f"{name}.log", ready)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@dataclass
class Worker:
    proc: subprocess.Popen
    metrics_port: int
    log: Path
    ready_file: Path

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
            return resp.read().decode()

    def sample(self, line_prefix: str) -> float:
        """Sum of the samples whose exposition line starts with ``line_prefix``."""
        total = 0.0
        for line in self.metrics().splitlines():
            if line.startswith(line_prefix):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def ready(self) -> dict | None:
        """The worker's ready file (its partitions and assignment count), None while it holds no assignment."""
        try:
            return json.loads(self.ready_file.read_text())
        except FileNotFoundError:
            return None

    def wait_ready(self, timeout_s: float = 60) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            ready = self.ready()
            if ready is not None:
                return ready
            time.sleep(0.3)
        raise AssertionError(f"worker not ready in {timeout_s} s:\n{self.log.read_text()[-3000:]}")

    def listening_addresses(self) -> set[str]:
        """Local addresses (hex ip:port as in /proc/net/tcp*) this process listens on."""
        inodes = set()
        fd_dir = Path(f"/proc/{self.proc.pid}/fd")
        for fd in fd_dir.iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        found = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and cols[9] in inodes:  # 0A = LISTEN
                    found.add(cols[1])
        return found

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout_s: float = 30) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout_s)


@pytest.fixture
def stream_env(stack_settings, unique, make_topic, tmp_path) -> Iterator[StreamEnv]:
    env = StreamEnv(stack_settings, unique, tmp_path)
    for kind, topic in env.topics.items():
        make_topic(topic, partitions=4 if kind in ("social", "market") else 1)
    try:
        yield env
    finally:
        env.stop_all()


@pytest.fixture
def store(stack_settings, stream_env) -> Iterator[WindowStore]:
    client = redis.Redis.from_url(stack_settings.stack.redis)
    yield WindowStore(client, prefix=stream_env.name, bucket_ms=stack_settings.windows.bucket_ms)
    client.close()


def send(bootstrap: str, topic: str, values: list[bytes], rate: float = 0.0, keys: list | None = None) -> None:
    """Produce raw values (acks=all); ``rate`` messages/s when > 0."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    started = time.monotonic()
    try:
        for i, value in enumerate(values):
            if rate > 0:
                delay = started + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            producer.send(topic, key=keys[i] if keys else None, value=value)
        producer.flush()
    finally:
        producer.close()


def message(i: int, entities: list[str], text: str = "nice", ts_ms: int | None = None) -> bytes:
    return json.dumps(
        {"id": f"m{i}", "ts": ts_ms or int(time.time() * 1000), "source": "test", "text": text, "entities": entities}
    ).encode()


def read_topic(bootstrap: str, topic: str, expected: int, timeout_s: float = 30) -> list:
    """All records of ``topic`` once at least ``expected`` arrived (or the timeout)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
        consumer_timeout_ms=1000,
    )  # fmt: skip
    records = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and len(records) < expected:
            records += list(consumer)
        # Anything more (e.g. duplicates) that is already there.
        records += list(consumer)
    finally:
        consumer.close()
    return records


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.25) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def hour_count(store: WindowStore, entity: str) -> int:
    return store.stats(entity, 3_600_000, int(time.time() * 1000) + 120_000).count
