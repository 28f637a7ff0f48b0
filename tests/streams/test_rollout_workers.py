"""Rollouts with real workers on real Kafka, Redis and PostgreSQL: a broken candidate rolled back by the analysis, a
good one promoted through every step, `models rollback` followed by running workers, and the shadow's cost.

Each test counts every message it produced: the windows (exact per entity) and the scored topic (every id) show
that the swaps lost nothing and counted nothing twice."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from sentimon.core.host import free_port
from sentimon.inference.registry import Registry
from sentimon.streams.model_counts import model_counts
from sentimon.streams.rollout import routes_to_candidate
from sentimon.streams.rollout_control import RolloutControl
from tests.streams.conftest import hour_count, read_topic, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "assets" / "tiny-bundle"
DEFAULT = ROOT / "models" / "default"  # the shipped model: the broken and good candidates are copies of it
ENTITIES = [f"ENT{i}" for i in range(40)]
TEXTS = ["i love this great phone", "terrible awful news today", "what a wonderful amazing day",
         "the worst horrible service"]  # fmt: skip
ANALYSIS = "min_samples: 20\nmax_latency_ratio: 20\n"  # latency on a shared 2-core box is noise: not judged here


class Traffic:
    """Messages at a steady rate (one entity each) until stopped; remembers what it sent."""

    def __init__(self, bootstrap: str, topic: str, rate: float = 120.0):
        self.bootstrap, self.topic, self.rate = bootstrap, topic, rate
        self.sent: dict[str, str] = {}  # id -> entity
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Traffic:
        self._thread.start()
        return self

    def _run(self) -> None:
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5)
        i = 0
        started = time.monotonic()
        while not self._stop.is_set():
            entity = ENTITIES[i % len(ENTITIES)]
            mid = f"r{i}"
            body = {"id": mid, "ts": int(time.time() * 1000), "source": "test", "text": TEXTS[i % len(TEXTS)],
                    "entities": [entity]}  # fmt: skip
            producer.send(self.topic, json.dumps(body).encode())
            self.sent[mid] = entity
            i += 1
            delay = started + i / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        producer.flush()
        producer.close()

    def stop(self) -> dict[str, str]:
        self._stop.set()
        self._thread.join(30)
        return self.sent


class RolloutEnv:
    """A registry (its own model name and Redis prefix) shared by the test, its workers and its CLI calls."""

    def __init__(self, stream_env, stack_settings, make_topic):
        self.stream_env, self.settings = stream_env, stack_settings
        self.name = f"m{uuid.uuid4().hex[:8]}"
        self.prefix = f"{stream_env.name}:registry"
        self.dir = stream_env.tmp / "registry"
        self.redis = redis.Redis.from_url(stack_settings.stack.redis)
        self.registry = Registry(self.dir, stack_settings.stack.database, self.redis, self.prefix)
        self.control = RolloutControl(self.registry, self.redis, self.prefix)
        make_topic(f"{stream_env.topics['scored']}.shadow")
        stream_env.extra_env.update({
            "SENTIMON_MODEL": f"{self.name}@champion",
            "SENTIMON_STACK__DATABASE_URL": stack_settings.stack.database,
            "SENTIMON_INFERENCE__REGISTRY_DIR": str(self.dir),
            "SENTIMON_INFERENCE__REGISTRY_PREFIX": self.prefix,
            "SENTIMON_INFERENCE__FOLLOW_POLL_S": "1",
            "SENTIMON_INFERENCE__ROLLOUT_STATS_S": "0.5",
            "SENTIMON_INFERENCE__CANARY_SHADOW_SAMPLE": "1.0",
            "SENTIMON_INFERENCE__LANGUAGES": "[]",
            "SENTIMON_DRIFT__ENABLED": "false",
        })  # fmt: skip

    def register(self, path: Path, promote: bool = False) -> str:
        ref = self.registry.register(path, self.name).ref
        if promote:
            self.registry.promote(ref)
        assert ref.version is not None
        return ref.version

    def cli(self, *args: str, timeout_s: float = 180) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "sentimon", *args], env=self.stream_env.env(free_port()),
                              cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)  # fmt: skip

    def close(self) -> None:
        self.registry.close()
        self.redis.close()


@pytest.fixture
def rollout_env(stream_env, stack_settings, make_topic):
    env = RolloutEnv(stream_env, stack_settings, make_topic)
    yield env
    env.close()


def copy_bundle(tmp: Path, name: str, reverse_labels: bool = False, source: Path = TINY) -> Path:
    dest = tmp / name
    shutil.copytree(source, dest)
    manifest = json.loads((dest / "manifest.json").read_text())
    if reverse_labels:  # the mistake a new build can ship: the logits are read in the wrong order
        manifest["labels"] = list(reversed(manifest["labels"]))
    else:
        manifest["build"] = {**manifest.get("build", {}), "note": f"rebuilt as {name}"}
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return dest


def scored(env: RolloutEnv, expected: int) -> list[dict]:
    records = read_topic(env.settings.stack.kafka_servers, env.stream_env.topics["scored"], expected, timeout_s=90)
    return [json.loads(r.value) for r in records]


def assert_exact(env: RolloutEnv, store, sent: dict[str, str], events: list[dict]) -> None:
    """Every message scored, every one counted once in its entity's window."""
    assert {e["id"] for e in events} == set(sent)
    per_entity: dict[str, int] = {}
    for entity in sent.values():
        per_entity[entity] = per_entity.get(entity, 0) + 1
    wait_for(lambda: all(hour_count(store, e) >= n for e, n in per_entity.items()), 60, "every window count")
    assert {e: hour_count(store, e) for e in per_entity} == per_entity


def start_scoring(env: RolloutEnv, store) -> tuple[Any, Traffic]:
    """A ready worker and steady traffic, once the first messages reached the windows."""
    worker = env.stream_env.start_worker()
    worker.wait_ready()
    traffic = Traffic(env.settings.stack.kafka_servers, env.stream_env.topics["social"]).start()
    wait_for(lambda: hour_count(store, ENTITIES[0]) > 0, 60, "the first scored messages")
    return worker, traffic


def start_rollout(env: RolloutEnv, *args: str) -> subprocess.Popen:
    analysis = env.stream_env.tmp / "analysis.yaml"
    analysis.write_text(ANALYSIS)
    cmd = [sys.executable, "-m", "sentimon", "rollout", "start", *args, "--interval", "2s", "--analysis", str(analysis)]
    return subprocess.Popen(cmd, env=env.stream_env.env(free_port()), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def test_a_broken_candidate_under_a_25_percent_canary_is_rolled_back(rollout_env, store, tmp_path):
    env = rollout_env
    champion = env.register(DEFAULT, promote=True)
    broken = env.register(copy_bundle(tmp_path, "reversed", reverse_labels=True, source=DEFAULT))
    worker, traffic = start_scoring(env, store)

    proc = start_rollout(env, f"{env.name}@{broken}", "--canary", "25", "--failure-limit", "2")
    out, err = proc.communicate(timeout=180)
    state = env.control.read(env.name)
    time.sleep(2)  # traffic after the rollback: scored by the champion only
    sent = traffic.stop()

    assert proc.returncode == 1, out + err
    assert out.strip().splitlines()[-1].startswith(f"rolled_back {env.name}@{broken}"), out
    assert "agreement" in out and "FAIL" in out
    assert state is not None and state.state == "rolled_back" and state.percent == 0 and state.failures == 2
    assert env.registry.aliases(env.name) == {"champion": champion}  # champion unchanged, candidate cleared
    clear = [e for e in env.registry.history(env.name) if e["action"] == "clear"]
    assert clear and clear[-1]["alias"] == "candidate" and "rolled back" in clear[-1]["why"]
    alerts = read_topic(env.settings.stack.kafka_servers, env.stream_env.topics["alerts"], 1)
    payloads = [json.loads(r.value) for r in alerts]
    assert any(p["kind"] == "model_rollout" and p["candidate"] == broken for p in payloads)

    events = scored(env, len(sent))
    assert_exact(env, store, sent, events)
    by_candidate = {e["entities"][0] for e in events if e["model"]["version"] == broken}
    assert by_candidate, "the canary scored nothing"
    # Sticky: only entities the salt routes at 25 % were ever scored by the candidate.
    assert all(routes_to_candidate(state.salt, e, 25) for e in by_candidate)
    assert {e["model"]["name"] for e in events} == {env.name}
    last = max(events, key=lambda e: e["ts"])
    assert last["model"]["version"] == champion
    # Per-model counts beside the windows, while the canary split an entity's traffic.
    entity = next(iter(by_candidate))
    now = int(time.time() * 1000)
    buckets = range(now - now % 60_000 - 10 * 60_000, now + 60_000, 60_000)
    counts = model_counts(env.redis, env.stream_env.name, entity, buckets)
    assert sum(counts.get(f"{env.name}@{broken}", {}).values()) > 0


def test_a_candidate_the_workers_cannot_load_is_rolled_back(rollout_env, store, tmp_path):
    env = rollout_env
    champion = env.register(TINY, promote=True)
    damaged = copy_bundle(tmp_path, "damaged")
    # A build that wrote a broken graph and hashed it: the registry takes it (the manifest matches), ORT refuses it.
    (damaged / "model.onnx").write_bytes(b"not an ONNX graph")
    manifest = json.loads((damaged / "manifest.json").read_text())
    manifest["files"]["model.onnx"] = hashlib.sha256(b"not an ONNX graph").hexdigest()
    (damaged / "manifest.json").write_text(json.dumps(manifest, indent=2))
    candidate = env.register(damaged)
    worker, traffic = start_scoring(env, store)

    proc = start_rollout(env, f"{env.name}@{candidate}", "--canary", "25", "--failure-limit", "2")
    out, err = proc.communicate(timeout=180)
    sent = traffic.stop()

    assert proc.returncode == 1, out + err
    assert out.strip().splitlines()[-1].startswith(f"rolled_back {env.name}@{candidate}"), out
    assert "candidate_loads" in out
    assert env.registry.aliases(env.name) == {"champion": champion}
    events = scored(env, len(sent))
    assert_exact(env, store, sent, events)  # the champion scored everything meanwhile
    assert {e["model"]["version"] for e in events} == {champion}


def test_a_good_copy_is_promoted_through_every_step(rollout_env, store, tmp_path):
    env = rollout_env
    champion = env.register(DEFAULT, promote=True)
    copy = env.register(copy_bundle(tmp_path, "same", source=DEFAULT))
    worker, traffic = start_scoring(env, store)

    proc = start_rollout(env, f"{env.name}@{copy}", "--canary", "25", "--steps", "25,50,100")
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, out + err
    assert out.strip().splitlines()[-1] == f"promoted {env.name}@{copy}: passed every step"
    steps = [line for line in out.splitlines() if line.startswith("step ")]
    assert [s.split(":")[0] for s in steps if "-> advance" in s or "-> promote" in s] == [
        "step 1/3 at 25%", "step 2/3 at 50%", "step 3/3 at 100%"]  # fmt: skip
    assert env.registry.aliases(env.name) == {"champion": copy}
    assert env.control.read(env.name).state == "promoted"
    promoted_at = time.time()
    wait_for(lambda: worker.sample("sentimon_model_swap_seconds_count") >= 1, 30, "the swap to the promoted copy")
    time.sleep(2)
    sent = traffic.stop()

    events = scored(env, len(sent))
    assert_exact(env, store, sent, events)
    versions = {e["model"]["version"] for e in events}
    assert versions == {champion, copy}
    after = [e for e in events if e["timings"]["batch_start_ms"] > (promoted_at + 1) * 1000]
    assert after and all(e["model"]["version"] == copy for e in after)
    swap_s = worker.sample("sentimon_model_swap_seconds_sum") / worker.sample("sentimon_model_swap_seconds_count")
    print(f"\nswap latency after promotion (notification -> first batch): {swap_s * 1000:.0f} ms")
    history = [(e["action"], e["alias"], e["version"]) for e in env.registry.history(env.name)]
    assert ("promote", "candidate", copy) in history and ("promote", "champion", copy) in history


def test_models_rollback_reaches_running_workers_at_the_next_batch(rollout_env, store, tmp_path):
    env = rollout_env
    first = env.register(DEFAULT, promote=True)
    second = env.register(copy_bundle(tmp_path, "second", source=DEFAULT))
    worker, traffic = start_scoring(env, store)

    env.registry.promote(f"{env.name}@{second}")
    wait_for(lambda: worker.sample("sentimon_model_swap_seconds_count") >= 1, 30, "the swap to the second version")
    done = env.cli("models", "rollback", env.name, "--why", "test")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{env.name}@{first}"
    rolled_back_at = time.time()
    wait_for(lambda: worker.sample("sentimon_model_swap_seconds_count") >= 2, 30, "the swap back")
    time.sleep(1)
    sent = traffic.stop()

    events = scored(env, len(sent))
    assert_exact(env, store, sent, events)
    # Per partition, in offset order: first ... second ... first, each swap between two batches, never back.
    by_partition: dict[int, list[str]] = {}
    for e in sorted(events, key=lambda e: (e["origin"]["partition"], e["origin"]["offset"])):
        runs = by_partition.setdefault(e["origin"]["partition"], [])
        if not runs or runs[-1] != e["model"]["version"]:
            runs.append(e["model"]["version"])
    order = f" {first} {second} {first} "
    assert all(f" {' '.join(runs)} " in order for runs in by_partition.values()), by_partition
    assert any(runs == [first, second, first] for runs in by_partition.values())
    latest = [e for e in events if e["timings"]["batch_start_ms"] > rolled_back_at * 1000 + 1000]
    assert latest and all(e["model"]["version"] == first for e in latest)
    swaps = worker.sample("sentimon_model_swap_seconds_count")
    mean = worker.sample("sentimon_model_swap_seconds_sum") / swaps
    # A swap is the next batch after the note: the tiny model loads in well under a second even here.
    assert mean < 5, mean
    print(f"\nswap latency (notification -> first batch by the new version), mean of {swaps:.0f}: {mean * 1000:.0f} ms")
    info = [line for line in worker.metrics().splitlines() if line.startswith("sentimon_model_info{")]
    assert len(info) == 1 and info[0].endswith(" 1.0"), info  # the champion in use, and only it
    assert all(f in info[0] for f in (f'name="{env.name}"', f'version="{first}"', 'tier="transformer"')), info


def test_shadow_from_the_cli_reports_on_the_side_topic_and_aborts(rollout_env, store, tmp_path):
    env = rollout_env
    champion = env.register(TINY, promote=True)
    candidate = env.register(copy_bundle(tmp_path, "shadow"))
    worker, traffic = start_scoring(env, store)

    proc = start_rollout(env, f"{env.name}@{candidate}", "--shadow")

    def analysed() -> bool:
        status = env.cli("rollout", "status", env.name, "--json")
        body = json.loads(status.stdout or "null")
        return bool(body and body["last_analysis"] and body["last_analysis"]["shadow"]["compared"] >= 20)

    wait_for(analysed, 60, "a shadow analysis with compared texts", interval_s=1)
    status = json.loads(env.cli("rollout", "status", env.name, "--json").stdout)
    assert (status["state"], status["mode"], status["percent"]) == ("running", "shadow", 0)
    assert (status["champion"], status["candidate"]) == (champion, candidate)
    report = status["last_analysis"]["shadow"]
    assert report["agreement"] == 1.0 and report["label_mix_distance"] == pytest.approx(0.0, abs=1e-9)
    assert report["confusion"]["positive"]["positive"] > 0 and report["confusion"]["negative"]["negative"] > 0
    assert report["candidate_latency_s"]["p99"] is not None

    done = env.cli("rollout", "abort", env.name, "--why", "enough seen")
    assert done.returncode == 0 and done.stdout.startswith(f"rolled_back {env.name}@{candidate}"), done.stderr
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and out.strip().splitlines()[-1].startswith("rolled_back"), out + err
    assert env.registry.aliases(env.name) == {"champion": champion}
    again = env.cli("rollout", "abort", env.name)
    assert again.returncode == 2 and "no rollout of" in again.stderr and "Traceback" not in again.stderr
    sent = traffic.stop()

    events = scored(env, len(sent))
    assert_exact(env, store, sent, events)
    assert {e["model"]["version"] for e in events} == {champion}  # a shadow serves nothing
    side = read_topic(env.settings.stack.kafka_servers, f"{env.stream_env.topics['scored']}.shadow", 1)
    records = [json.loads(r.value) for r in side]
    assert records and all(r["candidate"] == candidate and r["champion"] == champion for r in records)
    results = [x for r in records for x in r["results"]]
    assert results and all(x["champion"] == x["candidate"] for x in results)
    assert {x["id"] for x in results} <= set(sent)


def test_shadow_overhead_on_pipeline_throughput(rollout_env, tmp_path):
    """Champion alone vs champion with a shadow candidate, in one process on the same batches (real Redis for the
    rollout state; an in-memory window store, which takes no part in scoring). Prints the numbers."""
    from sentimon import inference
    from sentimon.core.parts import InferenceSettings
    from sentimon.streams.entities import EntityExtractor
    from sentimon.streams.follow import Follower, VersionedScorer
    from sentimon.streams.pipeline import Pipeline, RawRecord
    from sentimon.streams.rollout import RolloutState
    from tests.streams.test_pipeline import MemoryStore

    env = rollout_env
    champion = env.register(TINY, promote=True)
    candidate = env.register(copy_bundle(tmp_path, "overhead"))
    opts = InferenceSettings(registry_dir=env.dir, languages=[], threads=1)

    def load(version: str):
        return VersionedScorer(inference.load(f"{env.name}@{version}", settings=opts), env.name, version)

    follower = Follower(env.name, env.redis, load, lambda: champion, prefix=env.prefix, shadow_queue=8).start()
    now = int(time.time() * 1000)

    def batches(tag: str, n: int = 30, size: int = 128) -> list[list[RawRecord]]:
        return [[RawRecord(json.dumps({"id": f"{tag}{b}-{i}", "ts": now, "text": TEXTS[i % 4],
                                       "entities": [ENTITIES[i % 40]]}).encode(), "raw", 0, b * size + i)
                 for i in range(size)] for b in range(n)]  # fmt: skip

    def run(tag: str) -> float:
        pipeline = Pipeline(follower.champion, MemoryStore(), EntityExtractor({}), router=follower)
        work = batches(tag)
        started = time.perf_counter()
        for batch in work:
            assert len(pipeline.process(batch).events) == len(batch)
        return sum(map(len, work)) / (time.perf_counter() - started)

    try:
        run("warm")
        alone = run("a")
        state = RolloutState(env.name, champion, candidate, mode="shadow", steps=[0], percent=0)
        env.redis.set(f"{env.prefix}:{env.name}:rollout", state.to_json())
        follower._refresh()
        assert follower.routing().shadow
        shadowed = run("s")
        wait_for(lambda: follower.shadow.idle(), 60, "the shadow queue to drain")
        time.sleep(0.5)
        stats = follower._stats  # this step's (the next refresh starts new ones)
        alone_again = run_without_rollout(env, follower, run)
    finally:
        follower.close()
    messages = stats.model("champion").messages
    assert messages == 30 * 128
    assert stats.shadow.compared + stats.shadow.dropped == messages  # every copy scored or counted as dropped
    assert stats.shadow.report().agreement == 1.0
    base = (alone + alone_again) / 2
    print(f"\nshadow overhead: champion alone {base:,.0f} msg/s, with a shadow candidate {shadowed:,.0f} msg/s "
          f"({(1 - shadowed / base) * 100:+.0f}% cost), {stats.shadow.compared} copies scored, "
          f"{stats.shadow.dropped} dropped (queue full)")  # fmt: skip


def run_without_rollout(env: RolloutEnv, follower, run) -> float:
    env.redis.delete(f"{env.prefix}:{env.name}:rollout")
    follower._refresh()
    assert follower.routing().state is None
    return run("b")
