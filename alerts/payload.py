"""The alert payload users expect: direction, magnitude vs baseline, top terms, example texts, sources.

Pure: built from a Notification, its rule and a few recent example texts (dicts with text/source/ts_ms).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from sentimon.alerts.schema import LevelRule, RatioRule, Rule, SilenceRule, SpikeRule
from sentimon.alerts.state import Notification

_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]{2,}")
# Short English stop list: top terms should be content words, not glue.
_STOP = frozenset(
    """the and for are but not you all any can had her was one our out has have him his how its may new now old see
    two way who did get got let say she too use that with this from they will what when were been than them then
    just into over also some more most very much only your about after would could should there their which while
    being where these those here does doing because really today still even like want need going http https www com
    amp rt via""".split()
)


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def episode_key(note: Notification) -> str:
    """rule|entity|episode start (ms): the same for the firing, repeats and resolve of one episode."""
    return f"{note.rule_id}|{note.entity}|{note.started_ms}"


def top_terms(texts: Iterable[str], exclude: Iterable[str] = (), limit: int = 5) -> list[str]:
    """Most frequent content words across ``texts`` (each text counted once per word)."""
    skip = _STOP | {e.lower().lstrip("$#@") for e in exclude}
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update({w.lower().strip("'-") for w in _WORD.findall(text)} - skip)
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


def direction(rule: Rule, note: Notification) -> str:
    obs = note.observation
    if isinstance(rule, SilenceRule):
        return "down"
    if isinstance(rule, RatioRule):
        return rule.direction
    if isinstance(rule, SpikeRule):
        return "up" if (obs.value or 0.0) >= 0 else "down"
    if isinstance(rule, LevelRule):
        if obs.value is not None and obs.baseline is not None and obs.value != obs.baseline:
            return "up" if obs.value > obs.baseline else "down"
        return "up" if rule.op == "above" else "down"
    return "up"


def _metric(rule: Rule) -> str:
    if isinstance(rule, SilenceRule):
        return "volume"
    return getattr(rule, "metric", "volume")


def _summary(rule_id: str, rule: Rule, note: Notification, way: str) -> str:
    obs = note.observation
    what = f"{_metric(rule)} {way}"
    if note.kind == "resolved":
        return f"{note.entity}: {rule_id} resolved"
    value = "n/a" if obs.value is None else f"{obs.value:.3g}"
    base = "" if obs.baseline is None else f" (baseline {obs.baseline:.3g})"
    return f"{note.entity}: {what}, {rule.kind} value {value}{base}"


def build_payload(rule: Rule, note: Notification, examples: Sequence[dict[str, Any]] = (), terms: int = 5) -> dict:
    """The JSON document every sink receives for one notification."""
    obs = note.observation
    way = direction(rule, note)
    magnitude: dict[str, float | None] = {"value": obs.value, "baseline": obs.baseline, "delta": None, "ratio": None}
    if obs.value is not None and obs.baseline is not None:
        magnitude["delta"] = obs.value - obs.baseline
        if isinstance(rule, SpikeRule):
            magnitude["z"] = obs.value  # a spike's value is its z-score; baseline is the baseline level
            magnitude["delta"] = obs.detail.get("current", obs.value) - obs.baseline
        if obs.baseline:
            current = obs.detail.get("current", obs.value) if isinstance(rule, SpikeRule) else obs.value
            magnitude["ratio"] = current / obs.baseline
    texts = [e["text"] for e in examples if e.get("text")]
    sources = Counter(str(e["source"]) for e in examples if e.get("source"))
    ruleset, _, name = note.rule_id.partition("/")
    return {
        # Delivery is at least once: receivers dedupe by notification_id (one per firing/resolved/repeat of an
        # episode) or group by episode (rule|entity|start).
        "notification_id": note.dedup_key,
        "episode": episode_key(note),
        "kind": note.kind,
        "state": "resolved" if note.kind == "resolved" else "firing",
        "rule": note.rule_id,
        "ruleset": ruleset,
        "rule_name": name,
        "rule_kind": rule.kind,
        "metric": _metric(rule),
        "entity": note.entity,
        "severity": note.severity,
        "summary": _summary(note.rule_id, rule, note, way),
        "description": rule.description,
        "at": iso(note.at_ms),
        "started_at": iso(note.started_ms),
        "pending_since": iso(note.pending_since_ms),
        "resolved_at": iso(note.resolved_ms),
        "value": obs.value,
        "baseline": obs.baseline,
        "count": obs.count,
        "direction": way,
        "magnitude": magnitude,
        "detail": dict(obs.detail),
        "top_terms": top_terms(texts, exclude=[note.entity], limit=terms),
        "examples": texts,
        "sources": [s for s, _ in sources.most_common()],
        "dedup_key": note.dedup_key,
    }
