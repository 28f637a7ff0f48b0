"""Pure rule evaluation on event time: (rule, window reader, entity, now_ms) -> Observation.

No Redis here: the reader is anything with ``stats`` -- the stream's window store, ``alerts.cache.CachedWindows``
over it, or an in-memory fake in tests. The current window evaluated at event time
``now_ms`` holds the buckets starting in ``(now_ms - window_ms, now_ms]``, so the event at ``now_ms`` itself
counts; the baseline is the ``baseline_ms`` right before the current window.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from sentimon.alerts.schema import LevelRule, MarketCalendar, RatioRule, RuleBase, SilenceRule, SpikeRule

# breach: the rule's condition holds; clear: it no longer holds past the clear threshold (or there is too
# little data to say it holds); hold: between the thresholds (hysteresis band) or outside market hours.
Condition = Literal["breach", "hold", "clear"]

# A steady series has a near-zero spread; a Poisson floor (sqrt of the mean) keeps a one-message wobble
# from counting as a spike.
_MIN_BASELINE_CHUNKS = 2
# Volume baselines need history from their oldest 1/_COVERAGE_PART on; a younger entity is not judged yet.
_COVERAGE_PART = 4


class WindowStatsLike(Protocol):
    # Read-only members, so frozen dataclasses (``sentimon.core.windows.WindowStats``) qualify.
    @property
    def count(self) -> int: ...

    @property
    def negative(self) -> int: ...

    @property
    def sum_score(self) -> float: ...

    @property
    def mean_score(self) -> float | None: ...


class WindowReader(Protocol):
    """The read side of the stream's windows: ranges are ``[end_ms - window_ms, end_ms)`` by bucket start."""

    def stats(self, entity: str, window_ms: int, end_ms: int) -> WindowStatsLike: ...


class WindowCatalog(WindowReader, Protocol):
    """A reader that also knows its entities and its watermark (highest event time applied): what the silence
    timer needs."""

    def entities(self, since_ms: int | None = None) -> list[str]: ...

    def watermark(self) -> int | None: ...


@dataclass(frozen=True)
class Observation:
    """One evaluation of one rule for one entity at event time ``at_ms``."""

    entity: str
    at_ms: int
    condition: Condition
    value: float | None
    baseline: float | None
    count: int
    detail: dict[str, float] = field(default_factory=dict)


def evaluate(
    rule: RuleBase, reader: WindowReader, entity: str, now_ms: int, calendar: MarketCalendar | None = None
) -> Observation:
    """Evaluate ``rule`` (overrides already applied) for ``entity`` over the windows ending at ``now_ms``."""
    if rule.market_hours_only and calendar is not None and not calendar.is_open(now_ms):
        return Observation(entity, now_ms, "hold", None, None, 0, {"market_closed": 1.0})
    evaluator = _EVALUATORS.get(type(rule))
    if evaluator is None:
        raise TypeError(f"no evaluator for rule kind {type(rule).__name__}")
    obs = evaluator(rule, reader, entity, now_ms + 1)
    return replace(obs, at_ms=now_ms)


def _negative_share(stats: WindowStatsLike) -> float:
    return stats.negative / stats.count if stats.count else 0.0


def _against(value: float, op: str, threshold: float, clear: float) -> Condition:
    if op in ("above", "up"):
        return "breach" if value >= threshold else ("clear" if value < clear else "hold")
    return "breach" if value <= threshold else ("clear" if value > clear else "hold")


# Below, ``now_ms`` is the exclusive end of the current window (event time + 1 ms).


def _level(rule: LevelRule, reader: WindowReader, entity: str, now_ms: int) -> Observation:
    cur = reader.stats(entity, rule.window_ms, now_ms)
    if cur.count < rule.min_volume:
        return Observation(entity, now_ms, "clear", None, None, cur.count, {"min_volume": rule.min_volume})
    value = cur.mean_score if rule.metric == "mean_score" else _negative_share(cur)
    assert value is not None, "min_volume >= 1, so the window has mentions"
    baseline = None
    if rule.baseline_ms:
        base = reader.stats(entity, rule.baseline_ms, now_ms - rule.window_ms)
        if base.count:
            baseline = base.mean_score if rule.metric == "mean_score" else _negative_share(base)
    clear = rule.threshold if rule.clear is None else rule.clear
    return Observation(entity, now_ms, _against(value, rule.op, rule.threshold, clear), value, baseline, cur.count)


def _spike(rule: SpikeRule, reader: WindowReader, entity: str, now_ms: int) -> Observation:
    cur = reader.stats(entity, rule.window_ms, now_ms)
    base_end = now_ms - rule.window_ms
    if rule.metric == "negative_share":
        base = reader.stats(entity, rule.baseline_ms, base_end)
        if cur.count < rule.min_volume or base.count < rule.min_baseline:
            return Observation(entity, now_ms, "clear", None, None, cur.count, {"baseline_count": base.count})
        p = _negative_share(cur)
        # Laplace-smoothed baseline share: a baseline with no negatives must not make one negative infinite.
        p0 = (base.negative + 1) / (base.count + 2)
        z = (p - p0) / math.sqrt(p0 * (1 - p0) / cur.count)
        detail = {"z": z, "current": p, "baseline_count": base.count}
        return Observation(entity, now_ms, _z_condition(rule, z), z, p0, cur.count, detail)
    # Baseline chunks are whole windows on the window grid (epoch-aligned), so their stats never move once
    # older than the lateness horizon and a cache can keep them.
    chunks = max(rule.baseline_ms // rule.window_ms, _MIN_BASELINE_CHUNKS)
    grid_end = base_end - base_end % rule.window_ms
    counts = [reader.stats(entity, rule.window_ms, grid_end - i * rule.window_ms).count for i in range(chunks)]
    total = sum(counts)
    young = not any(counts[-max(chunks // _COVERAGE_PART, 1) :])
    if total < rule.min_baseline or young or (rule.direction == "up" and cur.count < rule.min_volume):
        # Without history every new entity would "spike" on its first mentions (e.g. right after start-up).
        return Observation(entity, now_ms, "clear", None, None, cur.count, {"baseline_count": total})
    mean = total / chunks
    std = math.sqrt(sum((c - mean) ** 2 for c in counts) / (chunks - 1))
    z = (cur.count - mean) / max(std, math.sqrt(max(mean, 1.0)))
    detail = {"z": z, "current": float(cur.count), "baseline_std": std, "baseline_count": float(total)}
    return Observation(entity, now_ms, _z_condition(rule, z), z, mean, cur.count, detail)


def _z_condition(rule: SpikeRule, z: float) -> Condition:
    clear = rule.effective_clear_k
    if rule.direction == "both":
        z = abs(z)
    elif rule.direction == "down":
        z = -z
    return "breach" if z >= rule.k else ("clear" if z < clear else "hold")


def _baseline_rate(reader: WindowReader, entity: str, window_ms: int, baseline_ms: int, now_ms: int):
    base = reader.stats(entity, baseline_ms, now_ms - window_ms)
    return base, base.count * window_ms / baseline_ms, base.negative * window_ms / baseline_ms


def _young(reader: WindowReader, entity: str, baseline_ms: int, base_end_ms: int) -> bool:
    """No mentions in the oldest part of the baseline: the entity is newer than the baseline, whose mean per
    window would be diluted by the time before it existed (a steady new entity would look like a surge)."""
    part = baseline_ms // _COVERAGE_PART
    return reader.stats(entity, part, base_end_ms - baseline_ms + part).count == 0


def _ratio(rule: RatioRule, reader: WindowReader, entity: str, now_ms: int) -> Observation:
    cur = reader.stats(entity, rule.window_ms, now_ms)
    base, rate, neg_rate = _baseline_rate(reader, entity, rule.window_ms, rule.baseline_ms, now_ms)
    expected = rate if rule.metric == "volume" else neg_rate
    current = cur.count if rule.metric == "volume" else cur.negative
    if (
        base.count < rule.min_baseline
        or expected <= 0
        or _young(reader, entity, rule.baseline_ms, now_ms - rule.window_ms)
    ):
        return Observation(entity, now_ms, "clear", None, None, cur.count, {"baseline_count": base.count})
    ratio = current / expected
    clear = rule.threshold if rule.clear is None else rule.clear
    detail = {"current": float(current), "baseline_count": float(base.count)}
    return Observation(entity, now_ms, _against(ratio, rule.direction, rule.threshold, clear), ratio, expected,
                       cur.count, detail)  # fmt: skip


def _silence(rule: SilenceRule, reader: WindowReader, entity: str, now_ms: int) -> Observation:
    cur = reader.stats(entity, rule.window_ms, now_ms)
    _, rate, _ = _baseline_rate(reader, entity, rule.window_ms, rule.baseline_ms, now_ms)
    if rate < rule.min_rate and cur.count <= rule.max_count:
        # Not an entity that normally has mentions: quiet is normal, nothing to report.
        return Observation(entity, now_ms, "clear", float(cur.count), rate, cur.count)
    condition: Condition = "breach" if cur.count <= rule.max_count else "clear"
    return Observation(entity, now_ms, condition, float(cur.count), rate, cur.count)


_EVALUATORS: dict[type, Callable[[Any, WindowReader, str, int], Observation]] = {
    LevelRule: _level, SpikeRule: _spike, RatioRule: _ratio, SilenceRule: _silence,
}
