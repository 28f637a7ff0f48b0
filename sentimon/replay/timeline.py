"""A synthetic but realistic history to replay: labelled texts from real corpora, synthetic timestamps and
entities, and planted episodes with known start/end, so alert precision, recall and detection delay can be
measured. Pure and seeded: the same spec and pool give the same messages.
"""

from __future__ import annotations

import random
import time
import zoneinfo
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal

LABELS = ("negative", "neutral", "positive")
MINUTE_MS = 60_000
DAY_MIN = 24 * 60
SESSION_MIN = 390  # NYSE regular session, 09:30-16:00 New York time
EXCHANGE_TZ = zoneinfo.ZoneInfo("America/New_York")

EpisodeKind = Literal["negative_shift", "volume_spike"]
MARKET_SOURCE = "demo/market"  # tickers' messages: the demo sends them to the market topic


@dataclass(frozen=True)
class EntityProfile:
    name: str  # the entity id windows and alerts use, e.g. "AAPL" or "acme air"
    kind: Literal["stock", "opinion"]
    rate_per_min: float  # mean mentions per minute outside episodes
    mention: str  # how texts mention it, e.g. "$AAPL" or "Acme Air"
    source: str = "demo/social"


@dataclass(frozen=True)
class Episode:
    entity: str
    kind: EpisodeKind
    start_ms: int
    end_ms: int

    def as_dict(self) -> dict:
        return {"entity": self.entity, "kind": self.kind, "start_ms": self.start_ms, "end_ms": self.end_ms}


@dataclass(frozen=True)
class TimelineSpec:
    start_ms: int
    duration_min: int
    entities: tuple[EntityProfile, ...]
    episodes: tuple[Episode, ...] = ()
    base_mix: dict[str, float] = field(default_factory=lambda: {"negative": 0.2, "neutral": 0.5, "positive": 0.3})
    shift_mix: dict[str, float] = field(default_factory=lambda: {"negative": 0.75, "neutral": 0.2, "positive": 0.05})
    spike_factor: float = 6.0
    seed: int = 7
    session_start_ms: int | None = None  # the played day's open: what comes before it is history
    # Trading sessions [start, end): outside them, tickers' chatter is scaled by quiet_factor (nights). Brands
    # and topics are talked about round the clock, so opinion entities keep their rate.
    sessions: tuple[tuple[int, int], ...] = ()
    quiet_factor: float = 0.2

    def __post_init__(self) -> None:
        names = {e.name for e in self.entities}
        for ep in self.episodes:
            if ep.entity not in names:
                raise ValueError(f"episode for unknown entity {ep.entity!r}")
            if not self.start_ms <= ep.start_ms < ep.end_ms <= self.end_ms:
                raise ValueError(f"episode {ep} lies outside the timeline")
        for mix in (self.base_mix, self.shift_mix):
            if set(mix) != set(LABELS) or abs(sum(mix.values()) - 1) > 1e-6:
                raise ValueError(f"a label mix needs {LABELS} summing to 1, got {mix}")

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.duration_min * MINUTE_MS


def last_session_date(now_ms: int | None = None, minutes: int = SESSION_MIN) -> date:
    """The most recent Tuesday-Friday whose session (of ``minutes``) has ended by ``now_ms`` (default: now).

    Recent, so its records sit well inside the raw topics' one-week retention (a fixed date is deleted by
    Kafka as soon as it is a week old) and a replay finds them; ended, because the worker rejects events from
    the future. Mondays are skipped so that the day before, the history, is a trading day too.
    """
    now = datetime.fromtimestamp((now_ms if now_ms is not None else time.time() * 1000) / 1000, UTC)
    day = now.astimezone(EXCHANGE_TZ).date()
    while True:
        if day.weekday() in (1, 2, 3, 4) and _open_ms(day) + minutes * MINUTE_MS <= now.timestamp() * 1000:
            return day
        day -= timedelta(days=1)


def _open_ms(day: date) -> int:
    local = datetime(day.year, day.month, day.day, 9, 30, tzinfo=EXCHANGE_TZ)
    return int(local.timestamp() * 1000)


def trading_day(
    date: str | None = None, minutes: int = SESSION_MIN, seed: int = 7, history_min: int = DAY_MIN
) -> TimelineSpec:
    """A US trading session (09:30 New York time) for five tickers plus a brand crisis, after ``history_min``
    minutes of history.

    Planted: a sustained negative shift on TSLA, a volume spike on NVDA, and a brand crisis (volume spike with a
    negative shift) for 'acme air'. AAPL, MSFT and AMZN are controls. ``date`` (ISO) defaults to the most
    recent session that has ended. ``minutes`` shortens the day: episodes keep their relative positions.

    The history is the day before, shaped like it: the previous session at the usual rates, a quiet night.
    Rules judge volume against a one-day baseline; without the history there is no baseline (a spike cannot be
    judged), and with only the night before the open, the open itself looks like a spike.
    """
    day = datetime.fromisoformat(date).date() if date else last_session_date(minutes=minutes)
    open_ms = _open_ms(day)
    start = open_ms - history_min * MINUTE_MS
    sessions = tuple(
        (open_ms - d * DAY_MIN * MINUTE_MS, open_ms - d * DAY_MIN * MINUTE_MS + minutes * MINUTE_MS)
        for d in range(history_min // DAY_MIN + 1)
    )
    at = lambda fraction: open_ms + int(minutes * fraction) * MINUTE_MS  # noqa: E731
    tickers = [("AAPL", 3.0), ("TSLA", 3.0), ("NVDA", 2.5), ("MSFT", 2.0), ("AMZN", 2.0)]
    entities = tuple(EntityProfile(t, "stock", r, f"${t}", MARKET_SOURCE) for t, r in tickers) + (
        EntityProfile("acme air", "opinion", 2.0, "Acme Air", "demo/social"),
    )
    episodes = (
        Episode("TSLA", "negative_shift", at(0.30), at(0.50)),
        Episode("NVDA", "volume_spike", at(0.55), at(0.62)),
        Episode("acme air", "negative_shift", at(0.70), at(0.85)),
        Episode("acme air", "volume_spike", at(0.70), at(0.85)),
    )
    return TimelineSpec(start, history_min + minutes, entities, episodes, seed=seed, session_start_ms=open_ms,
                        sessions=sessions)  # fmt: skip


def generate(
    spec: TimelineSpec, pool: dict[str, list[str]], market_pool: dict[str, list[str]] | None = None
) -> list[dict]:
    """Messages (the raw-topic schema plus a gold ``label``), sorted by event time. Texts come from ``pool`` (by
    label), a ticker's from ``market_pool`` when given."""
    for texts in (pool, market_pool or pool):
        missing = [label for label in LABELS if not texts.get(label)]
        if missing:
            raise ValueError(f"the text pool has no {', '.join(missing)} texts")
    rng = random.Random(spec.seed)
    messages: list[dict] = []
    for entity in spec.entities:
        texts = market_pool if market_pool and entity.kind == "stock" else pool
        episodes = [ep for ep in spec.episodes if ep.entity == entity.name]
        for minute in range(spec.duration_min):
            t0 = spec.start_ms + minute * MINUTE_MS
            active = {ep.kind for ep in episodes if ep.start_ms <= t0 < ep.end_ms}
            rate = entity.rate_per_min * (spec.spike_factor if "volume_spike" in active else 1.0)
            if entity.kind == "stock" and spec.sessions and not any(a <= t0 < b for a, b in spec.sessions):
                rate *= spec.quiet_factor
            mix = spec.shift_mix if "negative_shift" in active else spec.base_mix
            for _ in range(_poisson(rng, rate)):
                label = rng.choices(LABELS, weights=[mix[k] for k in LABELS])[0]
                text = rng.choice(texts[label])
                messages.append(
                    {
                        "ts": t0 + rng.randrange(MINUTE_MS),
                        "source": entity.source,
                        "text": f"{entity.mention} {text}",
                        "entities": [entity.name],
                        "label": label,
                        "meta": {"episode": sorted(active)} if active else {},
                    }
                )
    messages.sort(key=lambda m: (m["ts"], m["entities"][0]))
    for i, message in enumerate(messages):
        message["id"] = f"demo-{spec.seed}-{i:07d}"
    return messages


def _poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method: rates here are small (a few per minute), so this is exact and cheap.
    limit, k, p = pow(2.718281828459045, -lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


@dataclass(frozen=True)
class DetectionReport:
    precision: float | None  # matched firing alerts / all firing alerts (None when nothing fired)
    recall: float  # episodes detected / episodes planted
    delays_s: dict[str, float]  # "entity/kind@start" -> seconds from episode start to first matching alert
    false_alerts: list[dict]
    missed: list[dict]


def score_detection(alerts: list[dict], episodes: list[Episode], grace_ms: int = 15 * MINUTE_MS) -> DetectionReport:
    """Match firing alerts (dicts with ``entity`` and ``started_at_ms``) to planted episodes.

    An alert matches an episode of its entity when it starts inside [start, end + grace]. Overlapping episodes
    of one entity (a crisis is both a spike and a shift) are one incident: one alert detects all of them.
    """
    matched_alerts: set[int] = set()
    delays: dict[str, float] = {}
    missed: list[dict] = []
    for ep in episodes:
        hits = [
            (a["started_at_ms"], i)
            for i, a in enumerate(alerts)
            if a["entity"] == ep.entity and ep.start_ms <= a["started_at_ms"] <= ep.end_ms + grace_ms
        ]
        if hits:
            first_ms, _ = min(hits)
            delays[f"{ep.entity}/{ep.kind}@{ep.start_ms}"] = (first_ms - ep.start_ms) / 1000
            matched_alerts.update(i for _, i in hits)
        else:
            missed.append(ep.as_dict())
    false_alerts = [a for i, a in enumerate(alerts) if i not in matched_alerts]
    precision = len(matched_alerts) / len(alerts) if alerts else None
    recall = (len(episodes) - len(missed)) / len(episodes) if episodes else 1.0
    return DetectionReport(precision, recall, delays, false_alerts, missed)
