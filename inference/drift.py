"""Drift of the traffic a model scores, per (model, source topic): pure statistics, no Kafka, Redis or metrics.

Events are grouped in fixed windows of ``window_events`` scored events (count windows: a replay and the live
worker cut the same windows whatever the pace). Each closed window is compared with a reference
(``DriftReference``, set from a quiet period or a replay, stored as a small JSON) on four signals:

- ``label_mix``: Jensen–Shannon distance (base 2, in [0, 1]) between the window's label mix and the reference's;
  drift at ``js_threshold`` (0.1, Evidently's default for categorical drift).
- ``confidence``: the window's mean top-class probability as a z-score against the reference windows, fed to a
  two-sided Page–Hinkley test (its running mean seeded with the reference windows at z = 0); drift while its
  statistic is at or above ``ph_threshold`` (in reference sigmas).
- ``unknown_tokens``: share of the window's (sampled) tokens that are the tokenizer's unknown token, z-scored.
- ``text_length``: mean text length in characters, z-scored.
The two z-score signals are past their threshold at ``|z| >= sigma_threshold`` (3, NannyML's mean +- 3 sigma).
A level signal (label mix, unknown tokens, length) drifts once ``confirm_windows`` windows in a row are past its
threshold: one window beyond 3 sigma happens by chance every ~370 windows, two in a row every ~140,000.
Every sigma is that of the reference *window* means over at least ``min_reference_windows`` (6) windows,
floored at the per-event sigma / sqrt(window size): six windows can underestimate a spread, never below what
sampling alone gives.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sentimon.inference.bundle import LABELS
from sentimon.inference.options import InferenceError

SIGNALS = ("label_mix", "confidence", "unknown_tokens", "text_length")
REFERENCE_FORMAT = 1


class DriftError(InferenceError):
    """A reference that cannot be built or read; the message names the file or the data and the fix."""


def js_distance(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Jensen–Shannon distance, base 2, between two label distributions (counts or shares; normalised here):
    0 for the same mix, 1 for mixes with no label in common."""
    keys = sorted(set(p) | set(q))
    sp, sq = sum(p.values()), sum(q.values())
    if sp <= 0 or sq <= 0:
        raise ValueError("a label mix needs at least one event")
    pn = [p.get(k, 0.0) / sp for k in keys]
    qn = [q.get(k, 0.0) / sq for k in keys]
    m = [(a + b) / 2 for a, b in zip(pn, qn, strict=True)]

    def kl(x: list[float]) -> float:
        return sum(a * math.log2(a / c) for a, c in zip(x, m, strict=True) if a > 0)

    divergence = (kl(pn) + kl(qn)) / 2
    return math.sqrt(min(max(divergence, 0.0), 1.0))


@dataclass
class PageHinkley:
    """Two-sided Page–Hinkley test (river's ``PageHinkley``, without forgetting): ``up`` is the cumulative sum of
    (x - mean - delta) minus its running minimum, ``down`` the mirror for a fall; ``mean`` is the running mean of
    the values, seeded with ``count`` values at ``mean`` (here the reference windows' z-scores: 0, weight = their
    number), so a reference mean estimated from a few windows does not bias the test for long. ``delta`` is the
    change too small to matter, ``threshold`` the alarm level; each statistic is capped at ``cap`` x threshold so
    that an alarm clears in bounded time once the running mean has taken in the new level."""

    delta: float = 0.5
    threshold: float = 8.0
    mean: float = 0.0
    count: int = 0
    cap: float = 1.5
    up: float = 0.0
    down: float = 0.0

    def update(self, x: float) -> float:
        """Add one value; returns the statistic (the larger of ``up`` and ``down``)."""
        self.count += 1
        self.mean += (x - self.mean) / self.count
        limit = self.cap * self.threshold
        self.up = min(max(0.0, self.up + x - self.mean - self.delta), limit)
        self.down = min(max(0.0, self.down - (x - self.mean) - self.delta), limit)
        return self.statistic

    @property
    def statistic(self) -> float:
        return max(self.up, self.down)

    @property
    def alarm(self) -> bool:
        return self.statistic >= self.threshold

    def reset(self) -> None:
        self.up = self.down = 0.0


@dataclass
class Window:
    """One closed window's raw figures."""

    events: int
    labels: dict[str, int]
    confidence: float  # mean top-class probability
    length: float  # mean text length, characters
    unk_tokens: int = 0  # unknown tokens among the sampled texts' tokens
    tokens: int = 0  # tokens of the sampled texts (0: no tokenizer, or nothing sampled)
    unk_moments: tuple[float, float, float] = (0.0, 0.0, 0.0)  # sums of unk^2, unk*tokens, tokens^2 per text

    @property
    def unk_rate(self) -> float | None:
        return self.unk_tokens / self.tokens if self.tokens else None

    @property
    def unk_var(self) -> float:
        """Sampling variance of ``unk_rate`` as a ratio estimator over the sampled texts (unknown tokens cluster
        in texts: a binomial over tokens would understate it)."""
        if not self.tokens:
            return 0.0
        p = self.unk_tokens / self.tokens
        uu, ut, tt = self.unk_moments
        return max(uu - 2 * p * ut + p * p * tt, 0.0) / self.tokens**2


class WindowBuilder:
    """Accumulates events until ``size``; ``add`` returns the closed Window then, else None."""

    def __init__(self, size: int):
        if size < 1:
            raise ValueError("a drift window needs at least one event")
        self.size = size
        self._clear()

    def _clear(self) -> None:
        self.n = 0
        self.labels: dict[str, int] = {}
        self.conf_sum = 0.0
        self.len_sum = 0.0
        self.unk = 0
        self.tokens = 0
        self.uu = self.ut = self.tt = 0.0

    def add(self, label: str, confidence: float, length: int, unk: int = 0, tokens: int = 0) -> Window | None:
        self.n += 1
        self.labels[label] = self.labels.get(label, 0) + 1
        self.conf_sum += confidence
        self.len_sum += length
        if tokens:
            self.unk += unk
            self.tokens += tokens
            self.uu += unk * unk
            self.ut += unk * tokens
            self.tt += tokens * tokens
        if self.n < self.size:
            return None
        done = Window(self.n, dict(self.labels), self.conf_sum / self.n, self.len_sum / self.n, self.unk, self.tokens,
                      (self.uu, self.ut, self.tt))  # fmt: skip
        self._clear()
        return done


@dataclass(frozen=True)
class Moments:
    """A figure's reference: mean over the reference events and sigma of the reference window means."""

    mean: float
    sigma: float

    def z(self, value: float) -> float:
        return (value - self.mean) / self.sigma if self.sigma > 0 else 0.0


@dataclass(frozen=True)
class TopicReference:
    """The reference of one (model, topic): label mix, and the moments of confidence, length and unknown tokens."""

    model: str
    topic: str
    windows: int
    events: int
    label_mix: dict[str, float]
    confidence: Moments
    length: Moments
    unk_rate: Moments | None = None
    model_version: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TopicReference:
        unk = d.get("unk_rate")
        return cls(
            model=str(d["model"]),
            topic=str(d["topic"]),
            windows=int(d["windows"]),
            events=int(d["events"]),
            label_mix={str(k): float(v) for k, v in d["label_mix"].items()},
            confidence=Moments(**d["confidence"]),
            length=Moments(**d["length"]),
            unk_rate=Moments(**unk) if unk else None,
            model_version=d.get("model_version"),
        )


@dataclass(frozen=True)
class DriftReference:
    """Every (model, topic) reference, all cut in windows of ``window_events``."""

    window_events: int
    created_at_ms: int
    source: str  # where the reference came from, e.g. "replay ns1" or "topic sentimon.raw.social 2026-12-01.."
    topics: dict[tuple[str, str], TopicReference] = field(default_factory=dict)

    def get(self, model: str, topic: str) -> TopicReference | None:
        return self.topics.get((model, topic))

    def to_json(self) -> str:
        body = {
            "format": REFERENCE_FORMAT,
            "window_events": self.window_events,
            "created_at_ms": self.created_at_ms,
            "source": self.source,
            "references": [r.as_dict() for _, r in sorted(self.topics.items())],
        }
        return json.dumps(body, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str = "drift reference") -> DriftReference:
        try:
            body = json.loads(text)
            if body.get("format") != REFERENCE_FORMAT:
                raise ValueError(f"format {body.get('format')!r}, expected {REFERENCE_FORMAT}")
            refs = [TopicReference.from_dict(r) for r in body["references"]]
            return cls(int(body["window_events"]), int(body["created_at_ms"]), str(body["source"]),
                       {(r.model, r.topic): r for r in refs})  # fmt: skip
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DriftError(
                f"{where} is not a drift reference ({exc}); set it again with `sentimon drift reference`"
            ) from None

    def save(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_json())
        tmp.replace(path)  # a worker reloading it never reads half a file

    @classmethod
    def load(cls, path: Path) -> DriftReference:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise DriftError(
                f"drift reference {path} cannot be read ({exc.strerror}); set one with `sentimon drift reference`"
            ) from None
        return cls.from_json(text, str(path))


@dataclass(frozen=True)
class Observation:
    """What the reference builder and the monitor read of one scored event."""

    model: str
    topic: str
    label: str
    confidence: float
    length: int
    unk: int = 0
    tokens: int = 0
    model_version: str | None = None


def observation(event: Any, unk: int = 0, tokens: int = 0) -> Observation:
    """An Observation of a scored event (``streams.ScoredEvent`` or its scored-topic JSON as a dict)."""
    if isinstance(event, Mapping):
        model = event.get("model") or {}
        return Observation(str(model.get("name")), str((event.get("origin") or {}).get("topic")), str(event["label"]),
                           max(event["probs"].values()), len(event.get("text") or ""), unk, tokens,
                           model.get("version"))  # fmt: skip
    return Observation(event.model, event.topic, event.label, max(event.probs.values()), len(event.text), unk, tokens,
                       event.model_version)  # fmt: skip


def _moments(values: list[float], event_sigma: float, window_events: int) -> Moments:
    mean = sum(values) / len(values)
    spread = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return Moments(mean, max(spread, event_sigma / math.sqrt(window_events)))


def build_reference(
    observations: Iterable[Observation], window_events: int, min_windows: int = 6, source: str = "", now_ms: int = 0
) -> DriftReference:
    """A reference from the observations of a quiet period: every (model, topic) with at least ``min_windows``
    full windows gets one (a partial last window is left out); DriftError when none has enough."""
    builders: dict[tuple[str, str], WindowBuilder] = {}
    windows: dict[tuple[str, str], list[Window]] = {}
    sums: dict[tuple[str, str], list[float]] = {}
    versions: dict[tuple[str, str], str | None] = {}
    for o in observations:
        key = (o.model, o.topic)
        builder = builders.setdefault(key, WindowBuilder(window_events))
        versions[key] = o.model_version
        done = builder.add(o.label, o.confidence, o.length, o.unk, o.tokens)
        s = sums.setdefault(key, [0.0, 0.0, 0.0, 0.0, 0.0])  # n, confidence, its square, length, its square
        s[0] += 1
        s[1] += o.confidence
        s[2] += o.confidence**2
        s[3] += o.length
        s[4] += o.length**2
        if done is not None:
            windows.setdefault(key, []).append(done)
    refs: dict[tuple[str, str], TopicReference] = {}
    for key, ws in windows.items():
        if len(ws) < min_windows:
            continue
        n, c1, c2, l1, l2 = sums[key]
        conf_sd = math.sqrt(max(c2 / n - (c1 / n) ** 2, 0.0))
        len_sd = math.sqrt(max(l2 / n - (l1 / n) ** 2, 0.0))
        total = sum(w.events for w in ws)
        mix: dict[str, float] = {label: 0.0 for label in LABELS}
        for w in ws:
            for label, n in w.labels.items():
                mix[label] = mix.get(label, 0.0) + n / total
        unk = None
        rates = [w.unk_rate for w in ws]
        if all(r is not None for r in rates):
            known = [r for r in rates if r is not None]
            mean = sum(w.unk_tokens for w in ws) / sum(w.tokens for w in ws)
            spread = math.sqrt(sum((r - mean) ** 2 for r in known) / (len(known) - 1))
            # Never below the windows' own sampling spread.
            unk = Moments(mean, max(spread, math.sqrt(sum(w.unk_var for w in ws) / len(ws))))
        refs[key] = TopicReference(
            model=key[0], topic=key[1], windows=len(ws), events=total, label_mix=mix,
            confidence=_moments([w.confidence for w in ws], conf_sd, window_events),
            length=_moments([w.length for w in ws], len_sd, window_events),
            unk_rate=unk, model_version=versions[key],
        )  # fmt: skip
    if not refs:
        counts = ", ".join(f"{m} on {t}: {len(windows.get((m, t), []))}" for m, t in sorted(builders)) or "no events"
        raise DriftError(
            f"no (model, topic) has {min_windows} full windows of {window_events} events for a reference "
            f"(windows found: {counts}); take a longer period or lower drift.window_events"
        )
    return DriftReference(window_events, now_ms, source, refs)


def reference_path(settings: Any) -> Path:
    """Where the reference lives: setting ``drift.reference``, else ``<stack.state_dir>/drift/reference.json``."""
    return settings.drift.reference or settings.stack.state_dir / "drift" / "reference.json"


@dataclass(frozen=True)
class Thresholds:
    js: float = 0.1
    sigma: float = 3.0
    ph_delta: float = 0.5
    ph_threshold: float = 8.0
    confirm_windows: int = 2

    @classmethod
    def from_settings(cls, drift: Any) -> Thresholds:
        """From the settings' ``drift`` part."""
        return cls(drift.js_threshold, drift.sigma_threshold, drift.ph_delta, drift.ph_threshold,
                   drift.confirm_windows)  # fmt: skip


@dataclass(frozen=True)
class WindowReport:
    """One closed window against the reference: each signal's figure and whether it drifted."""

    model: str
    topic: str
    index: int  # 0-based count of windows closed for this (model, topic) since the monitor started
    events_seen: int  # events observed for this (model, topic) when the window closed
    window: Window
    label_js: float
    confidence_z: float
    confidence_ph: float
    length_z: float
    unk_z: float | None
    detected: dict[str, bool]

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "topic": self.topic, "window": self.index, "events_seen": self.events_seen,
            "events": self.window.events, "label_mix": self.window.labels, "label_js": round(self.label_js, 4),
            "confidence": round(self.window.confidence, 4), "confidence_z": round(self.confidence_z, 3),
            "confidence_ph": round(self.confidence_ph, 3), "length": round(self.window.length, 2),
            "length_z": round(self.length_z, 3),
            "unk_rate": None if self.window.unk_rate is None else round(self.window.unk_rate, 5),
            "unk_z": None if self.unk_z is None else round(self.unk_z, 3), "detected": self.detected,
        }  # fmt: skip


@dataclass
class _Track:
    builder: WindowBuilder
    ph: PageHinkley
    windows: int = 0
    events: int = 0
    last: WindowReport | None = None
    since: dict[str, int] = field(default_factory=dict)  # signal -> events_seen when it was first detected
    streak: dict[str, int] = field(default_factory=dict)  # level signal -> windows in a row past its threshold


class DriftMonitor:
    """Per (model, topic) windows compared with a reference. ``observe`` is cheap (a few additions per event);
    the comparison runs once per closed window. Not thread-safe: one monitor per worker thread or a lock."""

    def __init__(self, reference: DriftReference, thresholds: Thresholds | None = None):
        self.thresholds = thresholds or Thresholds()
        self.tracks: dict[tuple[str, str], _Track] = {}
        self.reference = reference

    def set_reference(self, reference: DriftReference) -> None:
        """A new reference: every track starts over (windows of the old size are not comparable)."""
        self.reference = reference
        self.tracks.clear()

    def observe(self, o: Observation) -> WindowReport | None:
        """Count one event; returns the window report when the event closes a window of a (model, topic) that
        has a reference (events of others are ignored)."""
        ref = self.reference.get(o.model, o.topic)
        if ref is None:
            return None
        key = (o.model, o.topic)
        track = self.tracks.get(key)
        if track is None:
            t = self.thresholds
            ph = PageHinkley(delta=t.ph_delta, threshold=t.ph_threshold, count=ref.windows)
            track = self.tracks[key] = _Track(WindowBuilder(self.reference.window_events), ph)
        track.events += 1
        window = track.builder.add(o.label, o.confidence, o.length, o.unk, o.tokens)
        if window is None:
            return None
        report = self._compare(ref, track, window)
        track.windows += 1
        track.last = report
        for signal, on in report.detected.items():
            if not on:
                track.since.pop(signal, None)
            else:
                track.since.setdefault(signal, report.events_seen)
        return report

    def _compare(self, ref: TopicReference, track: _Track, window: Window) -> WindowReport:
        t = self.thresholds
        js = js_distance(window.labels, ref.label_mix)
        conf_z = ref.confidence.z(window.confidence)
        ph = track.ph.update(conf_z)
        length_z = ref.length.z(window.length)
        rate = window.unk_rate
        unk_z = None
        if ref.unk_rate is not None and rate is not None:
            # The live window samples a few texts per batch: its own sampling spread adds to the reference's.
            sigma = math.sqrt(ref.unk_rate.sigma**2 + window.unk_var)
            unk_z = (rate - ref.unk_rate.mean) / sigma if sigma > 0 else 0.0
        past = {
            "label_mix": js >= t.js,
            "unknown_tokens": unk_z is not None and abs(unk_z) >= t.sigma,
            "text_length": abs(length_z) >= t.sigma,
        }
        for signal, over in past.items():
            track.streak[signal] = track.streak.get(signal, 0) + 1 if over else 0
        detected = {signal: track.streak[signal] >= t.confirm_windows for signal in past}
        detected["confidence"] = track.ph.alarm
        return WindowReport(ref.model, ref.topic, track.windows, track.events, window, js, conf_z, ph, length_z, unk_z,
                            detected)  # fmt: skip

    def status(self) -> list[dict[str, Any]]:
        """Each tracked (model, topic): its last window report, and since which event count each signal drifts."""
        rows = []
        for (model, topic), track in sorted(self.tracks.items()):
            last = track.last.as_dict() if track.last else None
            rows.append({"model": model, "topic": topic, "windows": track.windows, "events_seen": track.events,
                         "last": last, "drifting_since_events": dict(track.since)})  # fmt: skip
        return rows


def replay_figures(observations: Iterable[Observation], reference: DriftReference | None,
                   thresholds: Thresholds | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Drift figures of a replayed stream against ``reference``, per (model, topic) it holds: windows compared,
    the largest JS distance and |z|s, the Page–Hinkley peak, and the first window each signal drifted at."""
    if reference is None:
        return []
    monitor = DriftMonitor(reference, thresholds)
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for o in observations:
        r = monitor.observe(o)
        if r is None:
            continue
        row = out.setdefault((r.model, r.topic), {
            "model": r.model, "topic": r.topic, "windows": 0, "max_label_js": 0.0, "max_abs_confidence_z": 0.0,
            "max_confidence_ph": 0.0, "max_abs_length_z": 0.0, "max_abs_unk_z": None, "first_detected": {},
        })  # fmt: skip
        row["windows"] += 1
        row["max_label_js"] = round(max(row["max_label_js"], r.label_js), 4)
        row["max_abs_confidence_z"] = round(max(row["max_abs_confidence_z"], abs(r.confidence_z)), 3)
        row["max_confidence_ph"] = round(max(row["max_confidence_ph"], r.confidence_ph), 3)
        row["max_abs_length_z"] = round(max(row["max_abs_length_z"], abs(r.length_z)), 3)
        if r.unk_z is not None:
            row["max_abs_unk_z"] = round(max(row["max_abs_unk_z"] or 0.0, abs(r.unk_z)), 3)
        for signal, on in r.detected.items():
            if on and signal not in row["first_detected"]:
                row["first_detected"][signal] = {"window": r.index, "events_seen": r.events_seen}
    return list(out.values())
