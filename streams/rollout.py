"""The pure core of a model rollout: routing, shadow comparison, step statistics and the analysis decision.

No Redis, Kafka or threads here: ``streams.follow`` (the worker side) and ``streams.rollout_control`` (the loop
``sentimon rollout start`` runs) only move these values around, so every rule can be tested with plain lists.

- **Routing** is sticky by entity: ``routes_to_candidate(salt, entity, percent)`` hashes salt + entity, so an
  entity's window is scored by one model for a whole step, and raising the percent only moves entities from the
  champion to the candidate (never back). A message is routed by its first entity (as the producer listed them,
  else as the extractor found them); a message with no entity goes to the champion.
- **Step statistics** (``StepStats``) are what each worker accumulates and publishes per rollout step: messages
  and scoring errors per model, batch latencies, and the shadow comparison (champion label vs candidate label
  for the same text). They merge by addition, so the analysis sums every worker's.
- **Analysis** (``analyse``) checks a step against ``AnalysisConfig`` (Argo Rollouts' successCondition, Flagger's
  thresholds): agreement with the champion, scoring error rate, batch p99 latency relative to the champion's.
  ``decide`` turns the verdict into the next move: wait, advance, promote or abort.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from sentimon.inference.drift import js_distance
from sentimon.streams.errors import StreamsError
from sentimon.streams.windows import LABELS

RUNNING, PROMOTED, ROLLED_BACK = "running", "promoted", "rolled_back"
DEFAULT_STEPS = (5, 25, 50, 100)
LATENCY_SAMPLES = 1000  # batch / shadow latencies a worker keeps per model and step (the most recent ones)


class RolloutError(StreamsError):
    """A rollout setting, file or state that cannot be used; the message names it and the fix."""


# -- routing ----------------------------------------------------------------------------------------------------


def bucket_of(salt: str, entity: str) -> int:
    """The entity's slot 0..99 for this salt: stable across processes and releases (blake2b, not ``hash()``),
    independent of Kafka's partitioning (the salt is per rollout)."""
    digest = hashlib.blake2b(f"{salt}\0{entity}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 100


def routes_to_candidate(salt: str, entity: str | None, percent: int) -> bool:
    """Whether a message whose primary entity is ``entity`` is scored by the candidate at ``percent``."""
    if entity is None or percent <= 0:
        return False
    return percent >= 100 or bucket_of(salt, entity) < percent


def primary_entity(entities: Sequence[str]) -> str | None:
    """The entity a message is routed by: its first one; None (champion) when it names none."""
    return entities[0] if entities else None


# -- the rollout state (Redis, written by the CLI, read by workers) ---------------------------------------------


@dataclass
class RolloutState:
    """One rollout of ``candidate`` against ``champion`` (versions of model ``name``).

    ``percent``: share of entities the candidate scores (0 in a shadow rollout); ``shadow``: the candidate also
    scores a copy of the champion's traffic. ``step`` indexes ``steps``; statistics are kept per step."""

    name: str
    champion: str
    candidate: str
    id: str = field(default_factory=lambda: secrets.token_hex(6))
    salt: str = field(default_factory=lambda: secrets.token_hex(8))
    mode: Literal["canary", "shadow"] = "canary"
    steps: list[int] = field(default_factory=lambda: list(DEFAULT_STEPS))
    step: int = 0
    percent: int = 0
    state: str = RUNNING
    failures: int = 0
    started_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    reason: str = ""
    analyses: list[dict[str, Any]] = field(default_factory=list)  # the most recent ones, newest last
    baseline_p99_s: float | None = None  # the champion's last measured batch p99 (it scores nothing at 100 %)

    @property
    def shadow(self) -> bool:
        return self.mode == "shadow"

    @property
    def active(self) -> bool:
        return self.state == RUNNING

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> RolloutState:
        raw = json.loads(text)
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(**known)


# -- statistics ------------------------------------------------------------------------------------------------


@dataclass
class ModelStats:
    """One model's scoring in one step: messages, failed messages, and recent batch latencies (seconds)."""

    messages: int = 0
    errors: int = 0
    batch_s: list[float] = field(default_factory=list)

    def add_batch(self, messages: int, errors: int, seconds: float) -> None:
        self.messages += messages
        self.errors += errors
        self.batch_s.append(seconds)
        del self.batch_s[:-LATENCY_SAMPLES]

    def merge(self, other: ModelStats) -> None:
        self.messages += other.messages
        self.errors += other.errors
        self.batch_s += other.batch_s


@dataclass
class ShadowStats:
    """The same texts labelled by the champion and by the candidate: ``confusion[champion][candidate]`` counts."""

    confusion: dict[str, dict[str, int]] = field(default_factory=lambda: {a: dict.fromkeys(LABELS, 0) for a in LABELS})
    champion_s: list[float] = field(default_factory=list)  # per scored copy-batch, seconds
    candidate_s: list[float] = field(default_factory=list)
    dropped: int = 0  # copies not scored: the shadow queue was full

    def add(self, champion_labels: Sequence[str], candidate_labels: Sequence[str]) -> None:
        for a, b in zip(champion_labels, candidate_labels, strict=True):
            self.confusion[a][b] += 1

    def add_latency(self, champion_s: float | None, candidate_s: float | None) -> None:
        for samples, value in ((self.champion_s, champion_s), (self.candidate_s, candidate_s)):
            if value is not None:
                samples.append(value)
                del samples[:-LATENCY_SAMPLES]

    def merge(self, other: ShadowStats) -> None:
        for a in LABELS:
            for b in LABELS:
                self.confusion[a][b] += other.confusion.get(a, {}).get(b, 0)
        self.champion_s += other.champion_s
        self.candidate_s += other.candidate_s
        self.dropped += other.dropped

    @property
    def compared(self) -> int:
        return sum(sum(row.values()) for row in self.confusion.values())

    def report(self) -> ShadowReport:
        return compare(self.confusion, self.champion_s, self.candidate_s, self.dropped)


@dataclass
class StepStats:
    """Everything one worker (or, merged, every worker) saw during one step of one rollout."""

    rollout: str = ""
    step: int = 0
    models: dict[str, ModelStats] = field(default_factory=dict)  # "champion" / "candidate"
    shadow: ShadowStats = field(default_factory=ShadowStats)
    load_failures: int = 0  # tries to load the candidate that failed (it scores nothing then)

    def model(self, role: str) -> ModelStats:
        return self.models.setdefault(role, ModelStats())

    def merge(self, other: StepStats) -> None:
        for role, stats in other.models.items():
            self.model(role).merge(stats)
        self.shadow.merge(other.shadow)
        self.load_failures += other.load_failures

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> StepStats:
        models = {role: ModelStats(**m) for role, m in raw.get("models", {}).items()}
        shadow = ShadowStats(**raw.get("shadow", {}))
        return cls(raw.get("rollout", ""), int(raw.get("step", 0)), models, shadow, int(raw.get("load_failures", 0)))


def merge_stats(parts: Iterable[StepStats]) -> StepStats:
    total = StepStats()
    for part in parts:
        total.merge(part)
    return total


# -- the comparator -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShadowReport:
    compared: int
    agreement: float | None  # share of texts both models gave the same label; None before any
    confusion: dict[str, dict[str, int]]  # champion label -> candidate label -> count
    champion_mix: dict[str, float]
    candidate_mix: dict[str, float]
    label_mix_distance: float | None  # Jensen-Shannon distance (base 2, 0..1) of the two label mixes
    champion_latency_s: dict[str, float | None]  # p50 / p95 / p99 of a scored copy-batch
    candidate_latency_s: dict[str, float | None]
    dropped: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(samples: Sequence[float], q: float) -> float | None:
    """The ``q`` (0..100) percentile by nearest rank; None without samples."""
    if not samples:
        return None
    ordered = sorted(samples)
    rank = max(math.ceil(q / 100 * len(ordered)), 1)
    return ordered[rank - 1]


def latency_summary(samples: Sequence[float]) -> dict[str, float | None]:
    return {f"p{q}": percentile(samples, q) for q in (50, 95, 99)}


def _mix(counts: Sequence[int]) -> list[float]:
    total = sum(counts)
    return [c / total for c in counts] if total else [0.0] * len(counts)


def compare(
    confusion: dict[str, dict[str, int]],
    champion_s: Sequence[float] = (),
    candidate_s: Sequence[float] = (),
    dropped: int = 0,
) -> ShadowReport:
    """Agreement, per-class confusion, label-mix distance and latency percentiles of a shadow comparison."""
    full = {a: {b: int(confusion.get(a, {}).get(b, 0)) for b in LABELS} for a in LABELS}
    n = sum(sum(row.values()) for row in full.values())
    champion = [sum(full[a].values()) for a in LABELS]
    candidate = [sum(full[a][b] for a in LABELS) for b in LABELS]
    cm, km = _mix(champion), _mix(candidate)
    return ShadowReport(
        compared=n,
        agreement=sum(full[a][a] for a in LABELS) / n if n else None,
        confusion=full,
        champion_mix=dict(zip(LABELS, cm, strict=True)),
        candidate_mix=dict(zip(LABELS, km, strict=True)),
        label_mix_distance=(
            js_distance(dict(zip(LABELS, champion, strict=True)), dict(zip(LABELS, candidate, strict=True)))
            if n
            else None
        ),
        champion_latency_s=latency_summary(champion_s),
        candidate_latency_s=latency_summary(candidate_s),
        dropped=dropped,
    )


# -- analysis --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnalysisConfig:
    """When a step passes (Argo Rollouts' analysis template, in numbers). A YAML analysis file sets any field::

    interval: 1m            # one analysis per interval; a passing one moves to the next step
    failure_limit: 3        # failed analyses (in the whole rollout) before it is aborted
    min_agreement: 0.85     # candidate vs champion on the same texts (shadow-scored)
    max_error_rate: 0.01    # candidate messages that failed to score
    max_latency_ratio: 2.0  # candidate batch p99 / champion batch p99
    min_samples: 50         # compared texts (and candidate messages) before a verdict; fewer: inconclusive
    steps: [5, 25, 50, 100]
    """

    interval_s: float = 60.0
    failure_limit: int = 3
    min_agreement: float = 0.85
    max_error_rate: float = 0.01
    max_latency_ratio: float = 2.0
    min_samples: int = 50
    steps: tuple[int, ...] = DEFAULT_STEPS

    def __post_init__(self) -> None:
        problems = []
        if not self.interval_s > 0:
            problems.append(f"interval must be longer than zero, not {self.interval_s} s")
        if self.failure_limit < 1:
            problems.append(f"failure_limit must be at least 1, not {self.failure_limit}")
        if not 0 <= self.min_agreement <= 1:
            problems.append(f"min_agreement must be within 0..1, not {self.min_agreement}")
        if not 0 <= self.max_error_rate <= 1:
            problems.append(f"max_error_rate must be within 0..1, not {self.max_error_rate}")
        if not self.max_latency_ratio > 0:
            problems.append(f"max_latency_ratio must be above 0, not {self.max_latency_ratio}")
        if self.min_samples < 1:
            problems.append(f"min_samples must be at least 1, not {self.min_samples}")
        if not self.steps or any(not 0 < s <= 100 for s in self.steps) or list(self.steps) != sorted(set(self.steps)):
            problems.append(f"steps must rise strictly within 1..100, e.g. 5,25,50,100, not {list(self.steps)}")
        if problems:
            raise RolloutError("analysis: " + "; ".join(problems))

    @classmethod
    def from_mapping(cls, raw: Any, where: str = "analysis file") -> AnalysisConfig:
        from sentimon.core.durations import DurationError, parse_duration_ms

        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise RolloutError(f"{where}: expected a mapping of settings (interval, failure_limit, ...)")
        unknown = sorted(set(raw) - {"interval", "steps", *cls.__dataclass_fields__} - {"interval_s"})
        if unknown:
            fields = ", ".join(["interval", *(f for f in cls.__dataclass_fields__ if f != "interval_s")])
            raise RolloutError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {fields}")
        values = {k: v for k, v in raw.items() if k != "interval"}
        if "interval" in raw:
            try:
                values["interval_s"] = parse_duration_ms(str(raw["interval"])) / 1000
            except DurationError as exc:
                raise RolloutError(f"{where}: interval {exc}") from None
        if "steps" in values:
            values["steps"] = tuple(parse_steps(values["steps"]))
        try:
            return cls(**values)
        except TypeError as exc:
            raise RolloutError(f"{where}: {exc}") from None

    @classmethod
    def from_file(cls, path: Path | str) -> AnalysisConfig:
        from sentimon.core.yamlfile import YamlFileError, load_yaml

        try:
            raw = load_yaml(path, "analysis file")
        except YamlFileError as exc:
            raise RolloutError(str(exc)) from None
        return cls.from_mapping(raw, f"analysis file {path}")


def parse_steps(value: Any) -> list[int]:
    """``"5,25,50,100"`` or ``[5, 25, 50, 100]`` -> percents; RolloutError naming the form."""
    items = value.split(",") if isinstance(value, str) else value
    try:
        return [int(str(item).strip()) for item in items]
    except (TypeError, ValueError):
        raise RolloutError(f"steps {value!r}: give whole percents, e.g. 5,25,50,100") from None


Verdict = Literal["pass", "fail", "inconclusive"]


@dataclass(frozen=True)
class Check:
    name: str
    value: float | None
    limit: float
    ok: bool | None  # None: not enough data to tell


@dataclass(frozen=True)
class Analysis:
    verdict: Verdict
    checks: list[Check]
    shadow: ShadowReport
    candidate_messages: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "checks": [asdict(c) for c in self.checks],
            "candidate_messages": self.candidate_messages,
            "shadow": self.shadow.to_dict(),
        }


def analyse(
    stats: StepStats, config: AnalysisConfig, shadow_only: bool = False, baseline_p99_s: float | None = None
) -> Analysis:
    """Check one step's statistics. In a shadow rollout the candidate's latency is that of its shadow batches
    (compared with the champion's batches on the same texts) and its errors are not counted (it serves no
    traffic). ``baseline_p99_s``: the champion's batch p99 when this step has none (the candidate scores all)."""
    report = stats.shadow.report()
    cand, champ = stats.model("candidate"), stats.model("champion")
    # A candidate no worker can load never scores: a failed check, not an analysis that waits forever.
    checks = [Check("candidate_loads", stats.load_failures, 0, stats.load_failures == 0)]

    enough = report.compared >= config.min_samples
    agreement = report.agreement
    checks.append(Check("agreement", agreement, config.min_agreement,
                        (agreement >= config.min_agreement) if enough and agreement is not None else None))  # fmt: skip

    if not shadow_only:
        rate = cand.errors / cand.messages if cand.messages else None
        ok = None if cand.messages < config.min_samples or rate is None else rate <= config.max_error_rate
        checks.append(Check("error_rate", rate, config.max_error_rate, ok))

    cand_s = stats.shadow.candidate_s if shadow_only else cand.batch_s
    champ_s = stats.shadow.champion_s if shadow_only else champ.batch_s
    p_cand, p_champ = percentile(cand_s, 99), percentile(champ_s, 99)
    if p_champ is None and not shadow_only:
        p_champ = baseline_p99_s
    ratio = p_cand / p_champ if p_cand is not None and p_champ else None
    checks.append(Check("latency_p99_ratio", ratio, config.max_latency_ratio,
                        None if ratio is None else ratio <= config.max_latency_ratio))  # fmt: skip

    if any(c.ok is False for c in checks):
        verdict: Verdict = "fail"
    elif all(c.ok for c in checks):
        verdict = "pass"
    else:
        verdict = "inconclusive"
    return Analysis(verdict, checks, report, cand.messages)


Action = Literal["wait", "advance", "promote", "abort"]


def decide(state: RolloutState, analysis: Analysis, config: AnalysisConfig) -> Action:
    """The move after an analysis: a failure that reaches ``failure_limit`` aborts; a pass advances to the next
    step, or promotes after the last; anything else waits for the next interval. A shadow rollout only
    observes: it waits until aborted, or fails like a canary."""
    if analysis.verdict == "fail":
        return "abort" if state.failures + 1 >= config.failure_limit else "wait"
    if analysis.verdict == "pass" and not state.shadow:
        return "promote" if state.step >= len(state.steps) - 1 else "advance"
    return "wait"
