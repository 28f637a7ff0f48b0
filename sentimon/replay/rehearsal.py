"""The demo's day without Kafka or a worker: the planted timeline through the replay loop (the worker's pipeline,
Redis windows and the shipped alert rules), scored by models or by the gold labels, with the alerts measured
against the planted episodes. The ``gold`` run shows what the rules and the timeline achieve with a perfect
model, so each miss or false alarm of a real model can be put down to the rules or to the model.

    .venv/bin/python -m sentimon.replay.rehearsal [--models gold,vader,default,default+finance] [--seeds 7,8,9]
        [--minutes 390] [--history 1440] [--date YYYY-MM-DD]

``SOCIAL+MARKET`` scores tickers' messages (the market topic in the demo) with MARKET and the rest with SOCIAL,
as a worker does with inference.market_model; a plain name scores everything.

Starts its own Redis (free port, temporary state dir) unless ``--redis URL`` is given. Prints Markdown.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sentimon.inference import Prediction
from sentimon.replay.corpus import demo_pool, market_pool
from sentimon.replay.demo_run import session_alerts
from sentimon.replay.report import firing_alerts
from sentimon.replay.run import build_run, replay
from sentimon.replay.timeline import (
    DAY_MIN,
    MARKET_SOURCE,
    SESSION_MIN,
    DetectionReport,
    generate,
    score_detection,
    trading_day,
)
from sentimon.streams.pipeline import RawRecord

GOLD = "gold"
MARKET = "rehearsal.market"  # the topic tickers' records carry
_GOLD_SCORES = {"negative": -1.0, "neutral": 0.0, "positive": 1.0}


class GoldScorer:
    """Scores each timeline text with the label it was drawn with: a perfect model, for blaming misses."""

    name, version, kind = GOLD, "timeline labels", "oracle"

    def __init__(self, messages: list[dict]):
        self.labels = {m["text"]: m["label"] for m in messages}

    def score(self, texts: list[str]) -> list[Prediction]:
        out = []
        for text in texts:
            label = self.labels[text]
            out.append(Prediction(label, _GOLD_SCORES[label], {k: float(k == label) for k in _GOLD_SCORES}))
        return out


@dataclass(frozen=True)
class Rehearsal:
    model: str
    seed: int
    messages: int
    alerts: list[dict]  # all firing alerts, history included
    session_alerts: int  # those the detection scores
    detection: DetectionReport
    scored_by: dict[str, int]  # model name -> messages it scored


def rehearse(settings, models: list[str], seed: int, minutes: int, history_min: int, date: str | None,
             out_dir: Path) -> list[Rehearsal]:  # fmt: skip
    """Play one planted day (``trading_day`` with these arguments) through each model; ``settings.stack.redis``
    must answer. Every run writes under its own fresh namespace."""
    from sentimon import inference

    spec = trading_day(date=date, minutes=minutes, seed=seed, history_min=history_min)
    messages = generate(spec, demo_pool(settings.stack.cache_dir), market_pool(settings.stack.cache_dir))
    records = [RawRecord(json.dumps(m).encode(), MARKET if m["source"] == MARKET_SOURCE else "rehearsal", 0, i,
                         m["ts"]) for i, m in enumerate(messages)]  # fmt: skip
    results = []
    for model in models:
        social, _, market = model.partition("+")
        scorer = GoldScorer(messages) if social == GOLD else inference.load(social, settings.inference)
        topic_scorers = {MARKET: inference.load(market, settings.inference)} if market else None
        run = build_run(settings, model, scorer, f"rehearsal-{uuid.uuid4().hex[:8]}", out_dir,
                        topic_scorers=topic_scorers)  # fmt: skip
        try:
            replay(records, [run])
        finally:
            run.close()
        alerts = firing_alerts(run)
        in_session = session_alerts(alerts, spec)
        scored = score_detection(in_session, list(spec.episodes))
        scored_by = dict(Counter(ev.model for ev in run.events.values()))
        results.append(Rehearsal(model, seed, len(messages), alerts, len(in_session), scored, scored_by))
    return results


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%H:%M")


def markdown(results: list[Rehearsal]) -> str:
    pct = lambda x: "-" if x is None else f"{x:.2f}"  # noqa: E731
    lines = [
        "| model | seed | messages | alerts (history) | precision | recall | missed | not planted (session) |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        d = r.detection
        missed = ", ".join(f"{m['entity']}/{m['kind']}" for m in d.missed) or "-"
        false = ", ".join(f"{a['rule']} {a['entity']} {_when(a['started_at_ms'])}" for a in d.false_alerts) or "-"
        history = len(r.alerts) - r.session_alerts
        lines.append(f"| {r.model} | {r.seed} | {r.messages:,} | {r.session_alerts} ({history}) | {pct(d.precision)} | "
                     f"{pct(d.recall)} | {missed} | {false} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    from sentimon.core.host import free_port
    from sentimon.core.settings import load_settings
    from sentimon.infra import Stack

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=f"{GOLD},vader,default", help="comma-separated; 'gold' = the labels")
    parser.add_argument("--seeds", default="7", help="comma-separated timeline seeds (the demo's is 7)")
    parser.add_argument("--minutes", type=int, default=SESSION_MIN)
    parser.add_argument("--history", type=int, default=DAY_MIN, help="minutes of history before the open")
    parser.add_argument("--date", default=None, help="session date (default: the most recent one that ended)")
    parser.add_argument("--redis", default=None, help="a running Redis (default: start one)")
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="sentimon-rehearsal-", dir="/tmp"))
    settings = load_settings(state_dir=state, redis_port=free_port())
    if args.redis:
        settings = settings.replace(stack={"redis_url": args.redis})
    stack = None if args.redis else Stack(settings, ("redis",))
    try:
        if stack:
            stack.up()
        results = []
        for seed in (int(s) for s in args.seeds.split(",")):
            results += rehearse(settings, args.models.split(","), seed, args.minutes, args.history, args.date, state)
    finally:
        if stack:
            stack.down()
        shutil.rmtree(state, ignore_errors=True)
    print(f"Demo day ({args.minutes} min session after {args.history} min of history) through the replay loop "
          f"and the shipped rules; alerts vs planted episodes\n")  # fmt: skip
    print(markdown(results))


if __name__ == "__main__":
    main()
