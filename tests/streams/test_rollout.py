"""The pure rollout core: sticky routing, the shadow comparator, step statistics and the analysis decisions."""

from __future__ import annotations

import math

import pytest

from sentimon.streams.rollout import (
    AnalysisConfig,
    RolloutError,
    RolloutState,
    ShadowStats,
    StepStats,
    analyse,
    bucket_of,
    compare,
    decide,
    merge_stats,
    percentile,
    primary_entity,
    routes_to_candidate,
)
from sentimon.streams.rollout_control import canary_steps

ENTITIES = [f"E{i}" for i in range(20_000)]


def test_routing_is_sticky_and_only_grows_with_the_percent():
    salt = "s1"
    at = {p: {e for e in ENTITIES if routes_to_candidate(salt, e, p)} for p in (5, 25, 50, 100)}
    # The same answer every time, and raising the percent never moves an entity back to the champion.
    assert at[5] == {e for e in ENTITIES if routes_to_candidate(salt, e, 5)}
    assert at[5] <= at[25] <= at[50] <= at[100] == set(ENTITIES)
    assert not any(routes_to_candidate(salt, e, 0) for e in ENTITIES[:1000])


@pytest.mark.parametrize("percent", [5, 25, 50])
def test_split_accuracy_is_within_a_percent(percent):
    share = sum(routes_to_candidate("salty", e, percent) for e in ENTITIES) / len(ENTITIES)
    assert abs(share - percent / 100) < 0.01


def test_salt_makes_an_independent_split_and_no_entity_goes_to_the_champion():
    a = {e for e in ENTITIES if routes_to_candidate("a", e, 25)}
    b = {e for e in ENTITIES if routes_to_candidate("b", e, 25)}
    overlap = len(a & b) / len(a)
    assert 0.2 < overlap < 0.3  # independent: about a quarter of one quarter is in the other
    assert not routes_to_candidate("a", None, 100)
    assert primary_entity(("AAPL", "MSFT")) == "AAPL" and primary_entity(()) is None
    assert 0 <= bucket_of("a", "AAPL") < 100


def test_comparator_agreement_confusion_mix_distance_and_latency():
    stats = ShadowStats()
    stats.add(["positive", "negative", "neutral", "positive"], ["negative", "positive", "neutral", "positive"])
    stats.add_latency(0.010, 0.020)
    stats.add_latency(0.030, 0.040)
    report = stats.report()
    assert report.compared == 4
    assert report.agreement == 0.5
    assert report.confusion["positive"]["negative"] == 1 and report.confusion["negative"]["positive"] == 1
    assert report.confusion["positive"]["positive"] == 1 and report.confusion["neutral"]["neutral"] == 1
    assert report.label_mix_distance == pytest.approx(0.0)  # same mix, different texts: the mix hides swaps
    assert report.champion_latency_s["p50"] == 0.010 and report.candidate_latency_s["p99"] == 0.040
    skewed = compare({"positive": {"negative": 10}})
    assert skewed.agreement == 0 and skewed.label_mix_distance == pytest.approx(1.0)
    assert compare({}).agreement is None and compare({}).label_mix_distance is None


def test_percentile():
    assert percentile([], 99) is None
    assert percentile(list(range(1, 101)), 99) == 99 and percentile([3.0], 50) == 3.0


def _stats(agree: int, disagree: int, cand_msgs: int = 100, errors: int = 0, cand_s: float = 0.01,
           champ_s: float = 0.01) -> StepStats:  # fmt: skip
    s = StepStats("r", 0)
    s.shadow.add(["positive"] * agree + ["positive"] * disagree, ["positive"] * agree + ["negative"] * disagree)
    s.model("candidate").add_batch(cand_msgs, errors, cand_s)
    s.model("champion").add_batch(300, 0, champ_s)
    return s


CONFIG = AnalysisConfig(min_samples=20, failure_limit=2)


def test_analysis_passes_fails_each_condition_and_waits_for_samples():
    assert analyse(_stats(95, 5), CONFIG).verdict == "pass"
    low = analyse(_stats(50, 50), CONFIG)
    assert low.verdict == "fail" and [c.name for c in low.checks if c.ok is False] == ["agreement"]
    errors = analyse(_stats(95, 5, errors=2), CONFIG)
    assert [c.name for c in errors.checks if c.ok is False] == ["error_rate"]
    slow = analyse(_stats(95, 5, cand_s=0.05), CONFIG)
    assert [c.name for c in slow.checks if c.ok is False] == ["latency_p99_ratio"]
    assert analyse(_stats(5, 0), CONFIG).verdict == "inconclusive"  # 5 compared < min_samples


def test_a_candidate_no_worker_can_load_fails_the_step_instead_of_waiting():
    never_scored = StepStats("r", 0, load_failures=1)  # the candidate scored nothing: every other check is unknown
    result = analyse(never_scored, CONFIG)
    assert result.verdict == "fail" and [c.name for c in result.checks if c.ok is False] == ["candidate_loads"]
    assert analyse(StepStats("r", 0), CONFIG).verdict == "inconclusive"
    # Workers publish their counts as JSON; the analysis merges them.
    one, two = StepStats("r", 0, load_failures=2), StepStats.from_dict(never_scored.to_dict())
    assert two.load_failures == 1 and merge_stats([one, two]).load_failures == 3


def test_at_100_percent_the_champions_last_p99_is_the_baseline():
    s = StepStats("r", 3)
    s.shadow.add(["neutral"] * 30, ["neutral"] * 30)
    s.model("candidate").add_batch(100, 0, 0.03)
    assert analyse(s, CONFIG).verdict == "inconclusive"  # no champion batches this step
    assert analyse(s, CONFIG, baseline_p99_s=0.02).verdict == "pass"
    assert analyse(s, CONFIG, baseline_p99_s=0.01).verdict == "fail"


def test_decisions_advance_promote_wait_and_abort_at_the_failure_limit():
    state = RolloutState("m", "a" * 12, "b" * 12, steps=[25, 50, 100])
    ok, bad, unknown = analyse(_stats(95, 5), CONFIG), analyse(_stats(10, 90), CONFIG), analyse(_stats(1, 0), CONFIG)
    assert decide(state, ok, CONFIG) == "advance"
    assert decide(state, bad, CONFIG) == "wait"  # first failure of two allowed
    assert decide(state, unknown, CONFIG) == "wait"
    state.failures = 1
    assert decide(state, bad, CONFIG) == "abort"
    state.step = 2
    assert decide(state, ok, CONFIG) == "promote"
    shadow = RolloutState("m", "a" * 12, "b" * 12, mode="shadow", steps=[0])
    assert decide(shadow, ok, CONFIG) == "wait"  # a shadow only observes


def test_shadow_analysis_compares_shadow_latencies_and_ignores_errors():
    s = StepStats("r", 0)
    s.shadow.add(["neutral"] * 30, ["neutral"] * 30)
    for _ in range(10):
        s.shadow.add_latency(0.01, 0.05)
    s.model("candidate").add_batch(0, 5, 0.0)
    result = analyse(s, CONFIG, shadow_only=True)
    assert [c.name for c in result.checks] == ["candidate_loads", "agreement", "latency_p99_ratio"]
    assert result.verdict == "fail" and result.checks[2].value == pytest.approx(5.0)


def test_step_stats_round_trip_and_merge():
    a, b = _stats(10, 0), _stats(0, 10, errors=3)
    again = StepStats.from_dict(a.to_dict())
    assert again == a
    total = merge_stats([a, b])
    assert total.shadow.compared == 20 and total.model("candidate").errors == 3
    assert total.model("candidate").messages == 200
    state = RolloutState("m", "a" * 12, "b" * 12)
    assert RolloutState.from_json(state.to_json()) == state


def test_analysis_config_from_yaml_and_its_errors(tmp_path):
    path = tmp_path / "analysis.yaml"
    path.write_text("interval: 90s\nfailure_limit: 2\nmin_agreement: 0.9\nsteps: [10, 100]\n")
    config = AnalysisConfig.from_file(path)
    assert (config.interval_s, config.failure_limit, config.min_agreement, config.steps) == (90, 2, 0.9, (10, 100))
    path.write_text("min_agrement: 0.9\n")
    with pytest.raises(RolloutError, match="unknown key.*min_agrement"):
        AnalysisConfig.from_file(path)
    path.write_text("steps: [50, 25]\n")
    with pytest.raises(RolloutError, match="steps must rise"):
        AnalysisConfig.from_file(path)
    path.write_text("interval: soon\n")
    with pytest.raises(RolloutError, match="interval"):
        AnalysisConfig.from_file(path)
    path.write_text("a: [\n")
    with pytest.raises(RolloutError, match=r"analysis.yaml:\d+:\d+"):
        AnalysisConfig.from_file(path)
    assert canary_steps(25, (5, 25, 50, 100)) == [25, 50, 100]
    with pytest.raises(RolloutError):
        canary_steps(0, (5,))
    assert math.isclose(AnalysisConfig().min_agreement, 0.85)


class _Pred:
    def __init__(self, label: str):
        self.label, self.score, self.probs = label, 0.0, {"negative": 0.0, "neutral": 1.0, "positive": 0.0}


class _Scorer:
    def __init__(self, version: str, label: str, fail_on: str = ""):
        self.name, self.version, self.label, self.fail_on = "m", version, label, fail_on

    def score(self, texts):
        if any(self.fail_on and self.fail_on in t for t in texts):
            raise ValueError("cannot score")
        return [_Pred(self.label) for _ in texts]


def test_pipeline_scores_each_message_with_its_routed_model_and_records_step_stats():
    import json

    from sentimon.streams.entities import EntityExtractor
    from sentimon.streams.follow import Follower, Routing
    from sentimon.streams.pipeline import Pipeline, RawRecord
    from tests.streams.test_pipeline import MemoryStore

    champion, candidate = _Scorer("a" * 12, "neutral"), _Scorer("b" * 12, "neutral", fail_on="boom")
    state = RolloutState("m", champion.version, candidate.version, steps=[50], percent=50)
    follower = Follower("m", None, lambda v: None, lambda: champion.version, shadow_sample=0.0)
    follower._routing = Routing(champion, candidate, state)
    follower._stats = StepStats(state.id, 0)
    pipeline = Pipeline(champion, MemoryStore(), EntityExtractor({}), router=follower)
    ents = [f"E{i}" for i in range(200)]
    failing = next(e for e in ents if routes_to_candidate(state.salt, e, 50))  # the candidate cannot score its text

    def raw(i: int, entities: list[str], text: str) -> RawRecord:
        body = {"id": f"x{i}", "ts": 1_700_000_000_000, "text": text, "entities": entities}
        return RawRecord(json.dumps(body).encode(), "raw", 0, i)

    records = [raw(i, [e, "OTHER"], "boom" if e == failing else "ok") for i, e in enumerate(ents)]
    result = pipeline.process([*records, raw(999, [], "ok")])
    by_id = {ev.message_id: ev.model_version for ev in result.events}
    for i, e in enumerate(ents):
        if e != failing:
            want = candidate.version if routes_to_candidate(state.salt, e, 50) else champion.version
            assert by_id[f"x{i}"] == want
    assert by_id["x999"] == champion.version  # no entity: the champion
    stats = follower._stats
    to_candidate = sum(routes_to_candidate(state.salt, e, 50) for e in ents)
    assert stats.model("candidate").messages == to_candidate and stats.model("champion").messages == 201 - to_candidate
    assert stats.model("candidate").errors == 1 and [d.reason for d in result.dead_letters] == ["scoring_failed"]


def test_shadow_runner_drops_instead_of_waiting_when_full():
    import threading

    from sentimon.streams.shadow import ShadowJob, ShadowRunner

    release, started = threading.Event(), threading.Event()

    class Slow:
        def score(self, texts):
            started.set()
            release.wait(10)
            return [_Pred("neutral") for _ in texts]

    done: list[tuple[list[str], float]] = []
    runner = ShadowRunner(1, lambda job, labels, s: done.append((labels, s))).start()

    def job(i: int) -> ShadowJob:
        return ShadowJob(None, Slow(), "champion", [f"id{i}"], ["t"], ["neutral"], 0.01, "r", 0)

    try:
        assert runner.offer(job(1))
        assert started.wait(10)  # the thread holds job 1
        assert runner.offer(job(2))  # queued
        assert not runner.offer(job(3))  # full: dropped at once, no waiting
    finally:
        release.set()
        runner.close()
    assert [labels for labels, _ in done] == [["neutral"], ["neutral"]]
