"""Streaming benchmark: the model's own offline speed, then real `sentimon worker` processes fed through Kafka.

Per model, in one run: (1) offline texts/s of ``inference.load(model).score`` on the same texts, in calls of the
worker's micro-batch size, with the worker's ORT threads and with one thread per core; (2) for each rate, fresh
topics, a consumer group and a Redis prefix, ``--workers`` worker subprocesses, ``rate x duration`` messages
produced at that rate after 500 warm-up messages, and the scored topic read back. ``max`` sends flat out and
measures the deployment's maximum; ``25%`` etc. are fractions of that maximum (so ``max`` must come first). Per
message the worker records ``ingest_to_window_ms`` (window update done minus the record's Kafka timestamp); the
bench reports
sustained msg/s, end-to-end / offline ratios, p50/p95/p99 of that latency, worker RSS and CPU, prints a table and
rewrites the "## Streaming" section of BENCHMARKS.md. ``--profile FILE`` samples the first worker with py-spy
during each run and adds where its CPU went.

Kafka and Redis: a private stack on free ports (infra.Stack) unless SENTIMON_KAFKA_BOOTSTRAP and
SENTIMON_REDIS_URL name running ones. SENTIMON_STREAM_* / SENTIMON_WORKER_* / SENTIMON_INFERENCE_* in the
environment reach the workers (e.g. SENTIMON_WORKER_INFERENCE_THREADS=2).

    python -m sentimon.bench.stream_bench [--models default] [--rates max,25%,50%,90%] [--duration-s 20]
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sentimon.bench.stream_runs import Offline, RunResult, Runs, bench_texts, offline_rate, percentile, rss_mb
from sentimon.core.errors import UserError
from sentimon.core.host import free_port
from sentimon.core.host import machine_description as machine
from sentimon.core.settings import load_settings
from sentimon.infra import Stack

SECTION = "## Streaming"
QUICK = {"rates": "max,50%", "duration_s": 3.0, "max_messages": 600, "offline_texts": 300}


class StreamBenchError(UserError):
    """Bench arguments the user can fix."""


def parse_rates(spec: str) -> list[str]:
    """``max``, msg/s numbers and ``N%`` of the measured max; a percentage needs ``max`` before it."""
    rates = [r.strip() for r in spec.split(",") if r.strip()]
    seen_max = False
    for rate in rates:
        if rate == "max":
            seen_max = True
            continue
        number = rate[:-1] if rate.endswith("%") else rate
        try:
            ok = float(number) > 0
        except ValueError:
            ok = False
        if not ok:
            raise StreamBenchError(f"--rates: {rate!r} is not 'max', a positive msg/s or a percentage like 50%")
        if rate.endswith("%") and not seen_max:
            raise StreamBenchError(f"--rates: {rate} is a share of the measured max: list 'max' before it")
    if not rates:
        raise StreamBenchError("--rates: give at least one rate")
    return rates


@dataclass
class ModelReport:
    model: str
    scorer: str
    offline: list[Offline]
    runs: list[RunResult]
    profiles: dict[str, list[tuple[str, float]]] = field(default_factory=dict)  # rate -> (stage, share)

    @property
    def max_rate(self) -> float | None:
        return next((r.throughput for r in self.runs if r.rate == "max"), None)


def fmt(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def render(
    reports: list[ModelReport], workers: int, kafka_version: str, texts: str, load_at_start: tuple[float, ...]
) -> str:
    env_knobs = {k: v for k, v in os.environ.items()
                 if k.startswith(("SENTIMON_STREAM_", "SENTIMON_WORKER_", "SENTIMON_INFERENCE_"))}  # fmt: skip
    command = "python -m sentimon.bench.stream_bench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if env_knobs:
        command = " ".join(f"{k}={v}" for k, v in env_knobs.items()) + " " + command
    lines = [
        SECTION,
        "",
        f"{workers} `sentimon worker` process(es) in one consumer group ({Runs.PARTITIONS} partitions) with Kafka "
        f"{kafka_version} and Redis on the same box, all sharing its cores with the bench's own producer.",
        "",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {machine()}; load average (1/5/15 min) at the start: "
        + " / ".join(f"{x:.2f}" for x in load_at_start),
        f"- command: `{command}`",
        f"- texts: {texts}",
        "- offline = `inference.load(model).score` on the same texts in calls of `stream.max_batch`, in the bench "
        "process before any worker runs; end to end = window updated and scored event acknowledged by Kafka, "
        "from the first window update to the last (`max`: messages sent flat out, after 500 warm-up messages that "
        "every run sends and waits for first); latency = window update "
        "done minus the record's Kafka timestamp, per message; queue part = record timestamp to the start of its "
        "batch (Kafka, the consumer, batching); worker CPU = user+system CPU seconds of all workers per message; "
        "load = the box's 1-minute load average at the end of the run.",
        "",
        "| model | offline, worker's ORT threads (texts/s) | offline, one thread per core (texts/s) "
        "| end to end max (msg/s) | ratio per worker to offline, same threads | ratio to offline, all cores |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for rep in reports:
        same, cores = (rep.offline + rep.offline)[:2] if len(rep.offline) == 1 else rep.offline[:2]
        top = rep.max_rate
        lines.append(
            f"| {rep.model} ({rep.scorer}) | {fmt(same.texts_per_s)} ({same.threads}) | {fmt(cores.texts_per_s)} "
            f"({cores.threads}) | {fmt(top)} | {fmt(top / workers / same.texts_per_s if top else None, 2)} "
            f"| {fmt(top / cores.texts_per_s if top else None, 2)} |"
        )
    lines += [
        "",
        "| model | rate | offered (msg/s) | messages | scored | sustained (msg/s) | p50 (ms) | p95 (ms) | p99 (ms) "
        "| p50 queue part (ms) | p50 batch | RSS (MB) | worker CPU (ms/msg) | load |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for rep in reports:
        for r in rep.runs:
            lines.append(
                f"| {rep.model} | {r.rate} | {fmt(r.offered)} | {r.sent:,} | {r.scored:,} | {fmt(r.throughput)} "
                f"| {fmt(r.p50_ms)} | {fmt(r.p95_ms)} | {fmt(r.p99_ms)} | {fmt(r.queue_p50_ms)} | {fmt(r.batch_p50)} "
                f"| {fmt(r.rss_mb)} | {fmt(r.cpu_ms_per_msg, 3)} | {r.load:.1f} |"
            )
    for rep in reports:
        if rep.profiles:
            rates = list(rep.profiles)
            shares = {rate: dict(stages) for rate, stages in rep.profiles.items()}
            stages = list(dict.fromkeys(stage for rate in rates for stage, _ in rep.profiles[rate]))
            lines += ["", f"Where the first worker's CPU went, {rep.model} (py-spy samples of its running threads, "
                      "each given to the first matching stage; collapsed stacks under `--profile`):", "",
                      "| stage | " + " | ".join(f"rate {r}" for r in rates) + " |",
                      "|---|" + "---:|" * len(rates)]  # fmt: skip
            lines += [f"| {stage} | " + " | ".join(f"{shares[r].get(stage, 0):.1%}" for r in rates) + " |"
                      for stage in stages]  # fmt: skip
    lines += [
        "",
        "Targets (issue 16): end to end >= 0.8x the model's offline throughput; p99 <= 50 ms at half the max rate.",
        "",
    ]
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


def bench_model(runs: Runs, model: str, args, texts: list[str], base, log) -> ModelReport:
    from sentimon import inference

    worker_threads = base.worker.inference_threads or base.inference.threads
    offline = [offline_rate(model, base, t, texts[: args.offline_texts], base.stream.max_batch)
               for t in dict.fromkeys([worker_threads, base.inference.threads])]  # fmt: skip
    for o in offline:
        log(f"{model:>10} offline, {o.threads} thread(s): {o.texts_per_s:,.0f} texts/s over {o.n:,} texts")
    scorer = inference.load(model, base.inference)
    report = ModelReport(model, f"{scorer.name} {scorer.version}", offline, [])
    for rate in parse_rates(args.rates):
        if rate == "max":
            offered = None
        elif rate.endswith("%"):
            offered = float(rate[:-1]) / 100 * (report.max_rate or 0)
        else:
            offered = float(rate)
        if offered is not None and offered <= 0:
            raise StreamBenchError(f"{model}: the max run scored nothing, so {rate} of it is no rate")
        profile_to = None
        if args.profile:
            tag = f"{Path(model).name}-{rate.replace('%', 'pct')}"
            profile_to = args.profile.with_name(f"{args.profile.stem}-{tag}{args.profile.suffix}")
        result, profile = runs.run(model, rate, offered, texts, args.duration_s, args.max_messages, profile_to)
        report.runs.append(result)
        if profile is not None:
            report.profiles[rate] = profile
        log(
            f"{model:>10} {rate:>6}: {result.scored}/{result.sent} scored, {result.throughput:,.0f} msg/s, "
            f"p50/p95/p99 {fmt(result.p50_ms)}/{fmt(result.p95_ms)}/{fmt(result.p99_ms)} ms, "
            f"RSS {result.rss_mb:.0f} MB, CPU {result.cpu_ms_per_msg:.3f} ms/msg, load {result.load:.1f}"
        )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="default", help="Comma-separated model names or bundle paths.")
    parser.add_argument("--rates", default="max,25%,50%,90%", help="Comma-separated 'max', msg/s or N%% of max.")
    parser.add_argument("--duration-s", type=float, default=20.0, help="Seconds per fixed-rate run.")
    parser.add_argument("--max-messages", type=int, default=10_000, help="Backlog size for the 'max' run.")
    parser.add_argument("--offline-texts", type=int, default=4_000, help="Texts timed offline.")
    parser.add_argument("--workers", type=int, default=1, help="Worker processes in the group.")
    parser.add_argument("--texts", choices=("corpus", "templates"), default="corpus",
                        help="corpus: offline tweets and headlines; templates: built-in lines.")  # fmt: skip
    parser.add_argument("--profile", type=Path, help="py-spy the first worker of each run (collapsed stacks).")
    quick = ", ".join(f"{k}={v}" for k, v in QUICK.items()).replace("%", "%%")  # argparse formats help with %
    parser.add_argument("--quick", action="store_true", help=f"A smoke test: {quick}.")
    parser.add_argument("--output", type=Path, default=Path("BENCHMARKS.md"), help="File to update ('-': none).")
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    if args.workers < 1 or args.max_messages < 2 or args.duration_s <= 0 or args.offline_texts < 1:
        raise StreamBenchError("--workers, --offline-texts >= 1, --max-messages >= 2 and --duration-s > 0")
    parse_rates(args.rates)
    if args.profile and shutil.which("py-spy") is None and not (Path(sys.executable).parent / "py-spy").exists():
        raise StreamBenchError("--profile needs py-spy: pip install 'sentimon[bench]'")

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    load_at_start = os.getloadavg()
    base = load_settings()
    n_texts = max(args.max_messages, args.offline_texts, int(args.duration_s * 5000))
    texts, described = bench_texts(args.texts, base.stack.cache_dir, n_texts)
    tmp = Path(tempfile.mkdtemp(prefix="sentimon-bench-", dir="/tmp"))
    own_stack = not (base.stack.kafka_bootstrap and base.stack.redis_url)
    settings = base
    if own_stack:
        settings = load_settings(
            state_dir=tmp / "stack", kafka_port=free_port(), kafka_controller_port=free_port(),
            redis_port=free_port(), postgres_port=free_port(),
        )  # fmt: skip
    stack = Stack(settings, only=("kafka", "redis"))
    reports: list[ModelReport] = []
    started = time.monotonic()
    try:
        if own_stack:
            stack.up(lambda name, what: log(f"{name}: {what}"))
        runs = Runs(settings, tmp, args.workers)
        for model in args.models.split(","):
            reports.append(bench_model(runs, model.strip(), args, texts, base, log))
    finally:
        if own_stack:
            stack.down()
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"bench took {time.monotonic() - started:.0f} s")
    section = render(reports, args.workers, settings.stack.kafka_version, described, load_at_start)
    print(section)
    if str(args.output) != "-":
        write_section(args.output, section)
        log(f"updated {args.output}")
    return 0


__all__ = ["main", "parse_rates", "percentile", "render", "rss_mb", "write_section"]  # rss_mb: bench/soak.py

if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
