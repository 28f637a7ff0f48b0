"""Soak: a real `sentimon worker` with the alert hook under steady traffic, 1% hostile records, and a kill -9
every few minutes (restarted at once, as a supervisor would). A script, not a test: it prints what it saw.

Every ``--report-s`` it prints the consumer lag, the worker's RSS, restarts and counts; at the end (after the
backlog drained) the totals: valid messages sent, counted in the windows, dead-lettered, lost, double-counted,
hostile records sent and dead-lettered, and the alert deliveries per sink (webhook: an in-process HTTP
receiver; Kafka: the alerts topic), each as total and distinct notifications (delivery is at least once).
Every ``--burst-every-s`` one entity gets a minute of negative chatter, so alert episodes fire and resolve.

Kafka, Redis and PostgreSQL: a private stack on free ports (infra.Stack) unless SENTIMON_KAFKA_BOOTSTRAP,
SENTIMON_REDIS_URL and SENTIMON_DATABASE_URL name running ones.

    python -m sentimon.bench.soak [--minutes 30] [--rate 200] [--kill-every-s 300] [--hostile 0.01]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sentimon.bench.stream_bench import rss_mb
from sentimon.core.host import free_port
from sentimon.core.pacing import Pacer
from sentimon.core.settings import Settings, load_settings
from sentimon.infra import Stack, TopicSpec, ensure_topics, kafka_clients

PARTITIONS = 4
ENTITIES = ["AAPL", "TSLA", "NVDA", "MSFT", "AMZN", "BA", "DAL", "JBLU"]
CHATTER = [
    "{e} reported results today, nothing surprising in the numbers",
    "Great quarter for {e}, the guidance looks strong",
    "{e} shares flat in early trading",
    "Not impressed with {e} lately, service was slow",
]
BURST = "{e} recall, awful and terrible, fraud probe and lawsuit"
RULES = """
name: soak
entities: {match: "[A-Z]{1,5}"}
rules:
  - name: negative-burst
    kind: level
    metric: negative_share
    window: 1m
    min_volume: 20
    op: above
    threshold: 0.6
    clear: 0.45
    severity: critical
"""


def hostile(i: int, rng: random.Random) -> bytes:
    """One record the worker must dead-letter with a reason, never crash on (the cases of issue 12)."""
    kind = i % 9
    if kind == 0:
        return b"{not json " + str(i).encode()
    if kind == 1:  # a lone surrogate: passes JSON parsing, breaks encoding later
        return b'{"id":"h%d","text":"ok","meta":{"x":"\\ud800"}}' % i
    if kind == 2:
        return b'{"id":"h%d","text":"ok","score":NaN}' % i
    if kind == 3:
        return b'{"id":"h%d","text":"ok","meta":' % i + b"[" * 5000 + b"]" * 5000 + b"}"
    if kind == 4:
        return b'{"id":"h%d"}' % i  # no text
    if kind == 5:
        return json.dumps({"id": f"h{i}", "text": "ok", "entities": [f"E{j}" for j in range(20_000)]}).encode()
    if kind == 6:
        return bytes(rng.getrandbits(8) for _ in range(200))
    if kind == 7:
        return json.dumps({"id": f"h{i}", "text": "x" * 300_000}).encode()
    return b'{"id":"h%d","text":"\\udfff lone low surrogate"}' % i


class Receiver:
    """The webhook receiver: counts deliveries per Idempotency-Key."""

    def __init__(self) -> None:
        self.keys: Counter[str] = Counter()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.keys[self.headers.get("Idempotency-Key", "")] += 1
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


class Soak:
    def __init__(self, settings: Settings, tmp: Path, args: argparse.Namespace):
        self.settings, self.tmp, self.args = settings, tmp, args
        self.name = f"soak-{uuid.uuid4().hex[:8]}"
        self.topics = {k: f"{self.name}.{k}" for k in ("social", "market", "scored", "dlq", "alerts")}
        self.receiver = Receiver()
        self.sent: Counter[str] = Counter()  # valid messages per entity
        self.hostile_sent = 0
        self.restarts = {"killed": 0, "crashed": 0}
        self.proc: subprocess.Popen | None = None
        self.started = 0.0
        self.rules = tmp / "rules.yaml"
        self.rules.write_text(RULES)

    def env(self) -> dict[str, str]:
        s = self.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith("SENTIMON_")}
        env.update({
            **kafka_clients.child_env(s),
            "SENTIMON_REDIS_URL": s.stack.redis,
            "SENTIMON_DATABASE_URL": s.stack.database,
            "SENTIMON_STATE_DIR": str(self.tmp / "state"),
            "SENTIMON_MODEL": self.args.model,
            "SENTIMON_INFERENCE__MARKET_MODEL": "",
            "SENTIMON_WORKER_ID": f"{self.name}-group",
            "SENTIMON_WINDOW_PREFIX": self.name,
            "SENTIMON_METRICS_PORT": str(free_port()),
            "SENTIMON_WEB_PORT": str(free_port()),
            "SENTIMON_WORKER_SESSION_TIMEOUT_S": "10",
            "SENTIMON_WORKER_HEARTBEAT_S": "1",
            "SENTIMON_STREAM_HOOKS": '["sentimon.alerts:stream_hook"]',
            "SENTIMON_ALERTS_RULES": json.dumps([str(self.rules)]),
            "SENTIMON_ALERTS_PREFIX": f"{self.name}:alerts",
            "SENTIMON_ALERTS_WEBHOOKS": json.dumps([self.receiver.url]),
            "SENTIMON_ALERTS_LEASE_S": "15",  # a killed worker's undelivered alerts are taken over after this
            "SENTIMON_ALERTS_SILENCE_INTERVAL_S": "5",
            **{f"SENTIMON_TOPIC_{k.upper()}": v for k, v in self.topics.items()},
        })  # fmt: skip
        return env

    def start_worker(self) -> None:
        log = (self.tmp / "worker.log").open("ab")
        self.started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "sentimon", "worker", "--loglevel", "warning"],
                                     env=self.env(), stdout=log, stderr=subprocess.STDOUT)  # fmt: skip

    def produce(self, stop: threading.Event) -> None:
        rng = random.Random(7)
        producer = kafka_clients.producer(self.settings, acks="all", linger_ms=5, max_request_size=2_000_000)
        pacer, started = Pacer(), time.monotonic()
        i = 0
        while not stop.is_set():
            pacer.at_rate(i, self.args.rate)
            elapsed = time.monotonic() - started
            if rng.random() < self.args.hostile:
                value, self.hostile_sent = hostile(i, rng), self.hostile_sent + 1
            else:
                burst_entity = ENTITIES[int(elapsed // self.args.burst_every_s) % len(ENTITIES)]
                bursting = elapsed % self.args.burst_every_s < 60 and rng.random() < 0.5
                entity = burst_entity if bursting else rng.choice(ENTITIES)
                text = BURST if bursting else rng.choice(CHATTER)
                value = json.dumps({"id": f"s{i}", "ts": int(time.time() * 1000), "source": "soak",
                                    "text": text.format(e=entity), "entities": [entity]}).encode()  # fmt: skip
                self.sent[entity] += 1
            producer.send(self.topics["social"], key=str(i).encode(), value=value)
            i += 1
        producer.flush()
        producer.close()

    def lag(self) -> int | None:
        """Messages of the social topic not yet committed by the worker's group."""
        from kafka import TopicPartition

        try:
            # A consumer in the group that never subscribes: it reads the group's commits without joining.
            consumer = kafka_clients.consumer(self.settings, group_id=f"{self.name}-group", enable_auto_commit=False)
            parts = [TopicPartition(self.topics["social"], p) for p in range(PARTITIONS)]
            ends = consumer.end_offsets(parts)
            lag = sum(ends[tp] - (consumer.committed(tp) or 0) for tp in parts)
            consumer.close()
        except Exception:  # the broker is busy or restarting: no figure this round
            return None
        return lag

    def counted(self, since_ms: int) -> Counter[str]:
        import redis

        from sentimon.streams.windows import WindowStore

        client = redis.Redis.from_url(self.settings.stack.redis)
        store = WindowStore.from_settings(client, self.settings.windows.model_copy(update={"prefix": self.name}))
        now = int(time.time() * 1000) + 120_000
        out = Counter({e: store.stats(e, now - since_ms + 60_000, now).count for e in ENTITIES})
        client.close()
        return out

    def run(self) -> dict:
        args = self.args
        ensure_topics(self.settings,
                      [TopicSpec(t, PARTITIONS if k in ("social", "market") else 1, 24 * 3_600_000)
                       for k, t in self.topics.items()])  # fmt: skip
        started_ms = int(time.time() * 1000)
        self.start_worker()
        time.sleep(5)
        stop = threading.Event()
        producer = threading.Thread(target=self.produce, args=(stop,), daemon=True)
        producer.start()
        t0 = time.monotonic()
        end = t0 + args.minutes * 60
        next_kill, next_report = t0 + args.kill_every_s, t0
        rss: list[tuple[float, float]] = []
        self.lags: list[int] = []
        print(f"{'t_s':>6} {'lag':>7} {'rss_mb':>7} {'sent':>8} {'counted':>8} {'kills':>5} {'crashes':>7}")
        while time.monotonic() < end:
            assert self.proc is not None
            if self.proc.poll() is not None:  # it died on its own (a hostile record?): restart, and count it
                self.restarts["crashed"] += 1
                tail = (self.tmp / "worker.log").read_text(errors="replace").strip().splitlines()[-1:]
                print(f"worker exited {self.proc.returncode} on its own ({' '.join(tail)[:200]}); restarted",
                      file=sys.stderr)  # fmt: skip
                self.start_worker()
            if time.monotonic() >= next_kill:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                self.restarts["killed"] += 1
                self.start_worker()
                next_kill += args.kill_every_s
            if time.monotonic() >= next_report:
                t = time.monotonic() - t0
                mb = rss_mb(self.proc.pid)
                if time.monotonic() - self.started > 20:  # a worker still loading is not its steady size
                    rss.append((t, mb))
                total = sum(self.counted(started_ms).values())
                lag = self.lag()
                if lag is not None:
                    self.lags.append(lag)
                kills, crashes = self.restarts["killed"], self.restarts["crashed"]
                print(f"{t:6.0f} {'?' if lag is None else lag:>7} {mb:7.0f} {sum(self.sent.values()):8d} "
                      f"{total:8d} {kills:5d} {crashes:7d}", flush=True)  # fmt: skip
                next_report += args.report_s
            time.sleep(0.5)
        stop.set()
        producer.join(60)
        deadline = time.monotonic() + args.drain_s  # the backlog drains; alerts left by a kill are taken over
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                self.restarts["crashed"] += 1
                self.start_worker()
            if self.lag() == 0 and sum(self.counted(started_ms).values()) >= sum(self.sent.values()):
                break
            time.sleep(2)
        time.sleep(args.settle_s)
        counted = self.counted(started_ms)
        return self.summary(counted, rss)

    def summary(self, counted: Counter[str], rss: list[tuple[float, float]]) -> dict:
        def read(topic: str) -> list:
            consumer = kafka_clients.consumer(self.settings, topic, auto_offset_reset="earliest",
                                              consumer_timeout_ms=3000)  # fmt: skip
            out = list(consumer)
            consumer.close()
            return out

        dead = [json.loads(r.value) for r in read(self.topics["dlq"])]
        dead_sources = {(d["source"]["partition"], d["source"]["offset"]) for d in dead}
        records = [json.loads(r.value) for r in read(self.topics["alerts"])]
        alerts = Counter(r.get("notification_id") for r in records)
        from sentimon.alerts.history import History

        history = History(self.settings.stack.database)
        rows = [r for r in history.list(limit=10_000) if r["rule"].startswith("soak/")]
        history.close()
        lost = sum(max(0, self.sent[e] - counted[e]) for e in ENTITIES)
        double = sum(max(0, counted[e] - self.sent[e]) for e in ENTITIES)
        return {
            "minutes": self.args.minutes,
            "rate_per_s": self.args.rate,
            "valid_sent": sum(self.sent.values()),
            "counted": sum(counted.values()),
            "lost": lost,
            "double_counted": double,
            "hostile_sent": self.hostile_sent,
            "dead_lettered": len(dead_sources),
            "dlq_reasons": dict(Counter(d["reason"] for d in dead)),
            "lag_max": max(self.lags, default=None),
            "kills": self.restarts["killed"],
            "crashes": self.restarts["crashed"],
            "rss_mb_start": rss[0][1] if rss else None,
            "rss_mb_end": rss[-1][1] if rss else None,
            "rss_mb_max": max((mb for _, mb in rss), default=None),
            "alert_notifications": len(set(self.receiver.keys) | set(alerts)),
            "webhook_deliveries": sum(self.receiver.keys.values()),
            "webhook_distinct": len(self.receiver.keys),
            "kafka_alert_records": sum(alerts.values()),
            "kafka_alert_distinct": len(alerts),
            "alert_kinds": dict(Counter(r["kind"] for r in records)),
            "history_episodes": len(rows),
            "history_undelivered": sum(r["delivered_at"] is None for r in rows),
        }

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.receiver.httpd.shutdown()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long traffic flows")
    parser.add_argument("--rate", type=float, default=200.0, help="messages per second")
    parser.add_argument("--hostile", type=float, default=0.01, help="share of hostile records")
    parser.add_argument("--kill-every-s", type=float, default=300.0, help="kill -9 the worker this often")
    parser.add_argument("--burst-every-s", type=float, default=240.0, help="a negative minute for one entity")
    parser.add_argument("--report-s", type=float, default=30.0, help="print a progress line this often")
    parser.add_argument("--drain-s", type=float, default=180.0, help="longest wait for the backlog at the end")
    parser.add_argument("--settle-s", type=float, default=20.0, help="then wait for taken-over alerts")
    parser.add_argument("--model", default="vader", help="model name or bundle path")
    args = parser.parse_args(argv)

    base = load_settings()
    tmp = Path(tempfile.mkdtemp(prefix="sentimon-soak-", dir="/tmp"))
    own = not (base.stack.kafka_bootstrap and base.stack.redis_url and base.stack.database_url)
    settings = base
    if own:
        # Its own top-level dir: as root, PostgreSQL runs as 'postgres', who must be able to enter it.
        stack_dir = Path(tempfile.mkdtemp(prefix="sentimon-soak-stack-", dir="/tmp"))
        settings = load_settings(state_dir=stack_dir, kafka_port=free_port(), kafka_controller_port=free_port(),
                                 redis_port=free_port(), postgres_port=free_port(), startup_timeout_s=120)  # fmt: skip
    stack = Stack(settings)
    soak = Soak(settings, tmp, args)
    try:
        if own:
            stack.up(lambda name, what: print(f"{name}: {what}", file=sys.stderr))
        result = soak.run()
    finally:
        soak.close()
        if own:
            stack.down()
            shutil.rmtree(settings.stack.state_dir, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:>{width}}  {value}")
    return result


if __name__ == "__main__":
    main()
