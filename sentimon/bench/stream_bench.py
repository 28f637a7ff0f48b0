"""Streaming benchmark: a real `sentimon worker` fed through Kafka at fixed rates, then flat out.

For each model and rate it creates fresh topics, a consumer group and a Redis prefix, starts one worker
subprocess, produces ``rate x duration`` messages at that rate (``max``: a backlog produced before the worker
starts), and reads the scored topic back. Per message the worker records ``ingest_to_window_ms`` (window update
done minus the record's Kafka timestamp); the bench reports sustained throughput, p50/p99 of that latency and
the worker's peak RSS, prints a table and rewrites the "## Streaming" section of BENCHMARKS.md.

Kafka and Redis: a private stack on free ports (infra.Stack) unless SENTIMON_KAFKA_BOOTSTRAP and
SENTIMON_REDIS_URL name running ones. SENTIMON_STREAM_* / SENTIMON_WORKER_THREADS in the environment reach the
worker (e.g. SENTIMON_STREAM_MAX_BATCH=512).

    python -m sentimon.bench.stream_bench [--models vader,default] [--rates 500,1000,2000,max] [--duration-s 20]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sentimon.core.host import free_port
from sentimon.core.host import machine_description as machine
from sentimon.core.pacing import Pacer
from sentimon.core.settings import Settings, load_settings
from sentimon.infra import Stack, TopicSpec, ensure_topics, kafka_clients

SECTION = "## Streaming"
PARTITIONS = 4

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


@dataclass
class RunResult:
    model: str
    rate: str
    sent: int
    scored: int
    throughput: float
    p50_ms: float | None
    p99_ms: float | None
    rss_mb: float
    cpu_ms_per_msg: float  # worker user+system CPU per scored message: load-independent cost
    load: float  # the box's 1-minute load average when the run ended (other work shares the cores)
    queue_p50_ms: float | None  # record timestamp -> batch start: Kafka, the Faust consumer and batching
    batch_p50: float | None


def make_messages(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [
        {"id": f"b{seed}-{i}", "source": "bench",
         "text": rng.choice(_TEMPLATES).format(s=rng.choice(_SUBJECTS)) + f" ({i})"}
        for i in range(n)
    ]  # fmt: skip


def produce(settings: Settings, topic: str, messages: list[dict], rate: float) -> None:
    producer = kafka_clients.producer(settings, acks=1, linger_ms=2)
    pacer = Pacer()
    for i, msg in enumerate(messages):
        pacer.at_rate(i, rate)
        msg["ts"] = int(time.time() * 1000)
        producer.send(topic, key=msg["id"].encode(), value=json.dumps(msg).encode())
    producer.flush()
    producer.close()


def read_scored(settings: Settings, topic: str, expected: int, timeout_s: float) -> list[dict]:
    consumer = kafka_clients.consumer(
        settings, topic, auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=1000,
        max_poll_records=5000,
    )  # fmt: skip
    seen: dict[str, dict] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and len(seen) < expected:
        for record in consumer:
            event = json.loads(record.value)
            seen.setdefault(event["id"], event)  # the first delivery is the one that updated the window
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


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


class Bench:
    def __init__(self, settings, tmp: Path):
        self.settings = settings
        self.tmp = tmp

    def worker_env(self, model: str, name: str) -> dict[str, str]:
        s = self.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith("SENTIMON_")}
        passthrough = {
            k: v
            for k, v in os.environ.items()
            if k.startswith(("SENTIMON_STREAM_", "SENTIMON_WORKER_", "SENTIMON_INFERENCE_"))
        }
        env.update(
            {
                **kafka_clients.child_env(s),
                "SENTIMON_REDIS_URL": s.stack.redis,
                "SENTIMON_STATE_DIR": str(self.tmp / "state"),
                "SENTIMON_MODEL": model,
                "SENTIMON_WORKER_ID": f"{name}-group",
                "SENTIMON_WINDOW_PREFIX": name,
                "SENTIMON_METRICS_PORT": str(free_port()),
                "SENTIMON_WEB_PORT": str(free_port()),
                "SENTIMON_WORKER_SESSION_TIMEOUT_S": "10",
                "SENTIMON_WORKER_HEARTBEAT_S": "1",
                **{f"SENTIMON_TOPIC_{k.upper()}": f"{name}.{k}" for k in ("social", "market", "scored", "dlq")},
                **passthrough,
            }
        )
        return env

    def run(self, model: str, rate: str, duration_s: float, max_messages: int) -> RunResult:
        name = f"bench-{uuid.uuid4().hex[:8]}"
        ensure_topics(
            self.settings,
            [TopicSpec(f"{name}.{k}", PARTITIONS if k in ("social", "market") else 1, 3_600_000)
             for k in ("social", "market", "scored", "dlq")],
        )  # fmt: skip
        flat_out = rate == "max"
        n = max_messages if flat_out else int(float(rate) * duration_s)
        messages = make_messages(n, seed=hash((model, rate)) & 0xFFFF)
        if flat_out:  # a backlog, so the worker runs as fast as it can
            produce(self.settings, f"{name}.social", messages, 0)
        log_path, ready_path = self.tmp / f"{name}.log", self.tmp / f"{name}.ready"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "sentimon", "worker", "--loglevel", "info", "--ready-file", str(ready_path)],
                env=self.worker_env(model, name), stdout=log, stderr=subprocess.STDOUT, cwd=Path.cwd(),
            )  # fmt: skip
        peak = [0.0]
        stop = threading.Event()

        def sample_rss() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], rss_mb(proc.pid))
                time.sleep(0.25)

        sampler = threading.Thread(target=sample_rss, daemon=True)
        sampler.start()
        try:
            deadline = time.monotonic() + 90
            while not ready_path.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker did not start:\n{log_path.read_text()[-2000:]}")
                time.sleep(0.2)
            cpu_at_ready = cpu_s(proc.pid)
            if not flat_out:
                produce(self.settings, f"{name}.social", messages, float(rate))
            events = read_scored(self.settings, f"{name}.scored", n, timeout_s=max(60.0, n / 200))
            cpu_used = cpu_s(proc.pid) - cpu_at_ready
        finally:
            stop.set()
            sampler.join()
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        done = [e["timings"]["window_done_ms"] for e in events]
        if flat_out:
            # From the first window update to the last: the worker's own pace, startup excluded.
            span_s = (max(done) - min(done)) / 1000 if len(done) > 1 else 0
            throughput = (len(events) - 1) / span_s if span_s else 0.0
            p50 = p99 = queue_p50 = None
        else:
            starts = [e["origin"]["timestamp_ms"] for e in events]
            span_s = (max(done) - min(starts)) / 1000 if events else 0
            throughput = len(events) / span_s if span_s else 0.0
            latencies = [e["timings"]["ingest_to_window_ms"] for e in events]
            p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
            queue_p50 = percentile([e["timings"]["queue_ms"] for e in events], 50)
        cpu_per_msg = cpu_used * 1000 / len(events) if events else 0.0
        batch_p50 = percentile([e["timings"]["batch_size"] for e in events], 50)
        return RunResult(
            model, rate, n, len(events), throughput, p50, p99, peak[0], cpu_per_msg, os.getloadavg()[0],
            queue_p50, batch_p50,
        )  # fmt: skip


def fmt(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def render(results: list[RunResult], args, scorers: dict[str, str], kafka_version: str) -> str:
    env_knobs = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(("SENTIMON_STREAM_", "SENTIMON_WORKER_", "SENTIMON_INFERENCE_"))
    }
    command = "python -m sentimon.bench.stream_bench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if env_knobs:
        command = " ".join(f"{k}={v}" for k, v in env_knobs.items()) + " " + command
    lines = [
        SECTION,
        "",
        f"One `sentimon worker` (one process, {PARTITIONS} partitions) with Kafka {kafka_version} and Redis on the "
        "same box, all sharing its cores; messages produced by the bench process itself.",
        "",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {machine()}",
        f"- command: `{command}`",
        f"- scorers: {', '.join(f'{m} = {v}' for m, v in scorers.items())}",
        "- latency = window update done minus the record's Kafka timestamp (ingest -> window), per message; "
        "throughput at a fixed rate = messages / (last window update - first record); `max` = a backlog drained "
        "flat out (latency not meaningful there); queue part = record timestamp to the start of its batch in the "
        "worker (Kafka, the Faust consumer thread, waiting for the previous batch and for batch-mates); "
        "RSS = worker peak resident memory; worker CPU = its user+system "
        "CPU seconds per message (capacity = 1000 / that, for one core: a worker is one process, GIL-bound); "
        "box load = 1-minute load average at the end of the run (the box is shared: above 2, the worker waited "
        "for CPU and the latency columns show it).",
        "",
        "| model | offered rate (msg/s) | messages | scored | sustained (msg/s) | p50 latency (ms) | p99 latency (ms) "
        "| p50 queue part (ms) | p50 batch size "
        "| worker RSS (MB) | worker CPU (ms/msg) | CPU-bound capacity (msg/s/core) | box load (1 min) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.model} | {r.rate} | {r.sent:,} | {r.scored:,} | {fmt(r.throughput)} | {fmt(r.p50_ms)} "
            f"| {fmt(r.p99_ms)} | {fmt(r.queue_p50_ms)} | {fmt(r.batch_p50)} | {fmt(r.rss_mb)} "
            f"| {fmt(r.cpu_ms_per_msg, 3)} "
            f"| {fmt(1000 / r.cpu_ms_per_msg if r.cpu_ms_per_msg else None)} | {r.load:.1f} |"
        )
    lines += ["", "Targets (issue 5): >= 2,000 msg/s per worker; p99 <= 50 ms at 1,000 msg/s; RSS <= 500 MB.", ""]
    return "\n".join(lines)


def write_section(path: Path, section: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmarks\n\nMeasured by the scripts in `bench/`.\n\n"
    start = text.find(SECTION + "\n")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        nxt = text.find("\n## ", start + len(SECTION))
        text = text[:start] + section + ("\n" + text[nxt + 1 :] if nxt != -1 else "")
    path.write_text(text.rstrip("\n") + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="vader", help="Comma-separated model names or bundle paths.")
    parser.add_argument("--rates", default="500,1000,2000,max", help="Comma-separated msg/s, or 'max'.")
    parser.add_argument("--duration-s", type=float, default=20.0, help="Seconds per fixed-rate run.")
    parser.add_argument("--max-messages", type=int, default=40_000, help="Backlog size for the 'max' run.")
    parser.add_argument("--output", type=Path, default=Path("BENCHMARKS.md"), help="File to update ('-': none).")
    args = parser.parse_args()

    from sentimon import inference

    base = load_settings()
    scorers = {}
    for model in args.models.split(","):
        scorer = inference.load(model, base.inference)
        scorers[model] = f"{scorer.name} {scorer.version}"
    tmp = Path(tempfile.mkdtemp(prefix="sentimon-bench-", dir="/tmp"))
    own_stack = not (base.stack.kafka_bootstrap and base.stack.redis_url)
    settings = base
    if own_stack:
        settings = load_settings(
            state_dir=tmp / "stack", kafka_port=free_port(), kafka_controller_port=free_port(),
            redis_port=free_port(), postgres_port=free_port(),
        )  # fmt: skip
    stack = Stack(settings, only=("kafka", "redis"))
    results: list[RunResult] = []
    try:
        if own_stack:
            stack.up(lambda name, what: print(f"{name}: {what}", file=sys.stderr))
        bench = Bench(settings, tmp)
        for model in args.models.split(","):
            for rate in args.rates.split(","):
                result = bench.run(model, rate.strip(), args.duration_s, args.max_messages)
                results.append(result)
                print(
                    f"{model:>10} {rate:>6}: {result.scored}/{result.sent} scored, {result.throughput:,.0f} msg/s, "
                    f"p50 {fmt(result.p50_ms)} ms, p99 {fmt(result.p99_ms)} ms, RSS {result.rss_mb:.0f} MB, "
                    f"CPU {result.cpu_ms_per_msg:.3f} ms/msg, load {result.load:.1f}",
                    file=sys.stderr,
                )
    finally:
        if own_stack:
            stack.down()
        shutil.rmtree(tmp, ignore_errors=True)
    section = render(results, args, scorers, settings.stack.kafka_version)
    print(section)
    if str(args.output) != "-":
        write_section(args.output, section)
        print(f"updated {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
