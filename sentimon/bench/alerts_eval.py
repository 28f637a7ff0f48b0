"""Cost of evaluating the shipped alert rules against real Redis windows: what each batch's hook pays.

Starts its own Redis (free port, temp dir), fills 8 days of one-minute buckets for a few tickers and brands,
then times ``AlertEngine.evaluate`` for one entity (all rules of the rule sets that select it) and each rule
kind alone, with the shared Redis state store, reading the WindowStore directly (the baseline) and through
``alerts.cache.CachedWindows`` (what the stream hook uses; warmed by one call). Prints a Markdown table.

    .venv/bin/python -m sentimon.bench.alerts_eval [--entities 4] [--repeats 30]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sentimon.alerts.cache import CachedWindows
from sentimon.alerts.engine import AlertEngine
from sentimon.alerts.schema import load_rulesets
from sentimon.alerts.store import RedisStates
from sentimon.core.host import free_port
from sentimon.core.settings import load_settings
from sentimon.infra import Stack
from sentimon.infra.redis_client import connect
from sentimon.streams.windows import WindowStore

MIN = 60_000
DAY = 1440 * MIN


@dataclass(frozen=True)
class Ev:
    message_id: str
    ts_ms: int
    entities: tuple[str, ...]
    label: str
    score: float


def fill(store: WindowStore, entities: list[str], end_ms: int, days: int) -> int:
    events, n = [], 0
    labels = ("negative", "neutral", "positive")
    for e in entities:
        for m in range(days * 1440):
            ts = end_ms - (days * 1440 - m) * MIN
            events.append(Ev(f"{e}-{m}", ts, (e,), labels[m % 3], (m % 3 - 1) * 0.5))
            if len(events) >= 5000:
                n += store.apply(events)
                events = []
    return n + store.apply(events)


def timings_ms(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def measure(rulesets, client, reader, entity: str, now: int, kinds, repeats: int) -> list[float]:
    engine = AlertEngine(rulesets, RedisStates(client, "bench:alerts"), lambda n, p: None)
    clock = iter(range(now, now + 10**9, 1000))  # a new event time per call: every call evaluates
    engine.evaluate(reader, [entity], next(clock), kinds)  # warm-up (fills the cache)
    return timings_ms(lambda: engine.evaluate(reader, [entity], next(clock), kinds), repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="sentimon-bench-alerts-", dir="/tmp"))
    settings = load_settings(state_dir=state, redis_port=free_port())
    stack = Stack(settings, ("redis",))
    stack.up()
    try:
        client = connect(settings.stack)
        # Filled entity after entity, so the filler accepts 9-day-late events; readers use the default lateness.
        filler = WindowStore(client, prefix="bench", retention_ms=9 * DAY, allowed_lateness_ms=9 * DAY)
        store = WindowStore(client, prefix="bench", retention_ms=9 * DAY)
        now = (int(time.time() * 1000) // MIN) * MIN
        half = max(args.entities // 2, 1)
        entities = [f"TK{chr(65 + i)}" for i in range(half)] + [f"brand-{i}" for i in range(half)]
        t = time.perf_counter()
        applied = fill(filler, entities, now, 8)
        fill_s = time.perf_counter() - t
        rulesets = load_rulesets()
        rows: list[list[Any]] = []
        for label, kinds in [
            ("all rules", None),
            *[(k, frozenset({k})) for k in ("level", "spike", "ratio", "silence")],
        ]:
            for group, names in (("ticker", entities[:half]), ("brand", entities[half:])):
                n_rules = sum(1 for rs in rulesets for r in rs.rules_for(names[0]) if kinds is None or r.kind in kinds)
                row = [label, group, n_rules]
                for reader in (store, CachedWindows(store)):
                    samples = sorted(measure(rulesets, client, reader, names[0], now, kinds, args.repeats))
                    row += [statistics.median(samples), samples[int(0.95 * len(samples)) - 1]]
                rows.append(row)
        client.close()
    finally:
        stack.down()
        shutil.rmtree(state, ignore_errors=True)
    print(
        f"Alert evaluation on {platform.processor() or platform.machine()}, Redis on loopback, {applied:,} events "
        f"in 8 days of 1-minute buckets ({fill_s:.1f} s to fill), {args.repeats} repeats\n"
    )
    print("| rules | entity | rules evaluated | store median ms | store p95 ms | cached median ms | cached p95 ms |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for label, group, n, med, p95, cmed, cp95 in rows:
        print(f"| {label} | {group} | {n} | {med:.1f} | {p95:.1f} | {cmed:.1f} | {cp95:.1f} |")


if __name__ == "__main__":
    main()
