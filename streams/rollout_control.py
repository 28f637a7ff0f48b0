"""The analysis loop of a rollout: what `sentimon rollout start` runs in the foreground until it promotes or rolls
back, and what `rollout status` / `rollout abort` read and write.

Design: the one process that started a rollout owns its schedule (Argo Rollouts' controller, for one rollout).
Workers never decide anything: they follow the state in Redis (``<registry_prefix>:NAME:rollout``), route and
shadow-score, and publish their step statistics (``<registry_prefix>:NAME:rollout:stats``, one hash field per
worker). Every ``interval`` the loop sums those statistics for the current step, runs ``rollout.analyse`` and acts
on ``rollout.decide``: wait, move to the next step, promote (``Registry.promote``: the candidate becomes champion)
or abort (percent back to 0 first, then ``Registry.clear`` of the candidate, a history row, and an alert record on
the alerts topic). If the loop's process dies, the rollout stays at its current percent -- a safe state, since
the candidate only scores its share -- and `rollout abort` (or a new `rollout start` after it) ends it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from sentimon.streams.follow import rollout_key, stats_key
from sentimon.streams.rollout import (
    PROMOTED,
    ROLLED_BACK,
    Analysis,
    AnalysisConfig,
    RolloutError,
    RolloutState,
    StepStats,
    analyse,
    decide,
    merge_stats,
    percentile,
)

log = logging.getLogger(__name__)

KEEP_ANALYSES = 10  # the most recent analyses kept in the state (`rollout status`)
ALERT_KIND = "model_rollout"


def canary_steps(start_percent: int, steps: tuple[int, ...]) -> list[int]:
    """The percents a canary goes through: ``start_percent``, then the steps above it."""
    if not 0 < start_percent <= 100:
        raise RolloutError(f"--canary {start_percent}: give a percent within 1..100")
    return [start_percent, *(s for s in steps if s > start_percent)]


class RolloutControl:
    """Start, run, abort and read rollouts of the registry ``registry`` (an ``inference.registry.Registry`` with
    its Redis mirror), with state and statistics in ``redis`` under ``prefix``."""

    def __init__(
        self,
        registry: Any,
        redis: Any,
        prefix: str,
        alert: Callable[[dict[str, Any]], None] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.registry, self.redis, self.prefix, self.alert = registry, redis, prefix, alert
        self.clock, self.sleep = clock, sleep

    # -- state ---------------------------------------------------------------------------------------------------

    def read(self, name: str) -> RolloutState | None:
        raw = self.redis.get(rollout_key(self.prefix, name))
        return RolloutState.from_json(raw) if raw else None

    def write(self, state: RolloutState) -> None:
        """Store the state and tell the workers (the same channel as alias changes)."""
        state.updated_at = self.clock()
        pipe = self.redis.pipeline()
        pipe.set(rollout_key(self.prefix, state.name), state.to_json())
        note = {"name": state.name, "rollout": state.id, "state": state.state, "percent": state.percent}
        pipe.publish(f"{self.prefix}:changes", json.dumps(note))
        pipe.execute()

    def names(self) -> list[str]:
        """Models with a rollout state (running or finished)."""
        found = []
        for key in self.redis.scan_iter(match=f"{self.prefix}:*:rollout", count=500):
            text = key.decode() if isinstance(key, bytes) else key
            found.append(text[len(self.prefix) + 1 : -len(":rollout")])
        return sorted(found)

    def stats(self, state: RolloutState) -> StepStats:
        """Every worker's statistics of the state's current step, summed."""
        rows = self.redis.hgetall(stats_key(self.prefix, state.name))
        parts = []
        for value in rows.values():
            stats = StepStats.from_dict(json.loads(value))
            if (stats.rollout, stats.step) == (state.id, state.step):
                parts.append(stats)
        return merge_stats(parts)

    # -- commands ------------------------------------------------------------------------------------------------

    def start(self, ref: str, config: AnalysisConfig, canary: int | None = None, shadow: bool = False,
              why: str = "") -> RolloutState:  # fmt: skip
        """Make ``ref`` (NAME@VERSION) the candidate and start routing: a canary at ``canary`` percent (then the
        steps above it), or a shadow (the candidate scores a copy of the champion's traffic)."""
        from sentimon.inference.registry import parse_ref

        if (canary is None) == (not shadow):
            raise RolloutError("give one of --canary PCT or --shadow")
        target = parse_ref(ref)
        if target.version is None:
            raise RolloutError(f"{ref}: name a version (NAME@VERSION, as `sentimon models register` prints it)")
        name = target.name
        current = self.read(name)
        if current is not None and current.active:
            raise RolloutError(
                f"a rollout of {name}@{current.candidate} is running ({current.mode}, {current.percent}%); end it "
                f"first: `sentimon rollout abort {name}`"
            )
        champion = self.registry.aliases(name).get("champion")
        if champion is None:
            raise RolloutError(f"{name} has no champion to compare with; promote one: `sentimon models promote REF`")
        if champion == target.version:
            raise RolloutError(f"{ref} already is the champion of {name}; register and roll out another version")
        self.registry.promote(ref, "candidate", why=why or f"rollout start ({'shadow' if shadow else 'canary'})")
        steps = [0] if shadow else canary_steps(int(canary or 0), config.steps)
        state = RolloutState(name, champion, target.version, mode="shadow" if shadow else "canary",
                             steps=steps, percent=steps[0], started_at=self.clock())  # fmt: skip
        self.redis.delete(stats_key(self.prefix, name))
        self.write(state)
        return state

    def run(self, name: str, config: AnalysisConfig, say: Callable[[RolloutState, Analysis], None]) -> RolloutState:
        """Analyse every ``config.interval_s`` until the rollout ends (promoted, rolled back, or aborted by
        another command); ``say`` gets each analysis."""
        while True:
            self.sleep(config.interval_s)
            state = self.read(name)
            if state is None or not state.active:
                return state or RolloutState(name, "", "", state=ROLLED_BACK, reason="the rollout state is gone")
            state, analysis = self.tick(state, config)
            say(state, analysis)
            if not state.active:
                return state

    def tick(self, state: RolloutState, config: AnalysisConfig) -> tuple[RolloutState, Analysis]:
        """One analysis of the current step, and the move it leads to."""
        stats = self.stats(state)
        champion_p99 = percentile(stats.model("champion").batch_s, 99)
        if champion_p99 is not None:
            state.baseline_p99_s = champion_p99  # at 100 % the champion scores nothing: keep its last p99
        analysis = analyse(stats, config, shadow_only=state.shadow, baseline_p99_s=state.baseline_p99_s)
        action = decide(state, analysis, config)
        entry = {"at": self.clock(), "step": state.step, "percent": state.percent, "action": action,
                 **analysis.to_dict()}  # fmt: skip
        state.analyses = [*state.analyses, entry][-KEEP_ANALYSES:]
        if analysis.verdict == "fail":
            state.failures += 1
        if action == "abort":
            failed = ", ".join(c.name for c in analysis.checks if c.ok is False)
            return self.abort(state, f"analysis failed {state.failures} time(s) (limit {config.failure_limit}): "
                              f"{failed}"), analysis  # fmt: skip
        if action == "advance":
            state.step += 1
            state.percent = state.steps[state.step]
        elif action == "promote":
            self.registry.promote(f"{state.name}@{state.candidate}", "champion",
                                  why=f"rollout {state.id}: passed every step {state.steps}")  # fmt: skip
            state.state, state.percent, state.reason = PROMOTED, 100, "passed every step"
        self.write(state)
        return state, analysis

    def abort(self, state: RolloutState, reason: str, by: str | None = None) -> RolloutState:
        """Traffic back to the champion (first, so no worker routes to the candidate any more), candidate alias
        cleared (a history row), and an alert."""
        state.state, state.percent, state.reason = ROLLED_BACK, 0, reason
        self.write(state)
        current = self.registry.aliases(state.name).get("candidate")
        if current == state.candidate:
            self.registry.clear(state.name, "candidate", why=f"rollout {state.id} rolled back: {reason}", by=by)
        if self.alert is not None:
            self.alert(self.alert_payload(state))
        return state

    def alert_payload(self, state: RolloutState) -> dict[str, Any]:
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC).isoformat().replace("+00:00", "Z")
        last = state.analyses[-1] if state.analyses else {}
        return {
            "kind": ALERT_KIND, "rule": "rollout_rolled_back", "severity": "warning", "state": state.state,
            "model": state.name, "champion": state.champion, "candidate": state.candidate, "rollout": state.id,
            "mode": state.mode, "step": state.step, "reason": state.reason, "at": now,
            "summary": f"rollout of {state.name}@{state.candidate} rolled back: {state.reason}",
            "checks": last.get("checks", []),
        }  # fmt: skip
