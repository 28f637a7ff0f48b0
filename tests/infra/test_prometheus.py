"""Alert rules (promtool check + the promtool unit tests), their runbook links, and the worker's metric names
and lag series against the Prometheus conventions (base units, _total, bounded labels)."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from prometheus_client import CollectorRegistry

from sentimon.alerts.metrics import AlertMetrics
from sentimon.streams.metrics import INGEST_BUCKETS, SCORER_BUCKETS, StreamMetrics, lag_seconds

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "infra" / "prometheus"
RULE_FILES = sorted((PROM / "rules").glob("*.yml"))


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: install the Debian package prometheus (infra/bootstrap.sh does)")
    return path


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=60)


def rules() -> list[dict]:
    return [r for f in RULE_FILES for g in yaml.safe_load(f.read_text())["groups"] for r in g["rules"]]


def test_rule_files_pass_promtool_check() -> None:
    assert RULE_FILES
    done = run("check", "rules", *map(str, RULE_FILES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_rule_unit_tests_pass() -> None:
    tests = sorted((PROM / "tests").glob("*.yml"))
    assert tests
    done = run("test", "rules", *map(str, tests))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_is_unit_tested() -> None:
    tested = set(re.findall(r"alertname: (\w+)", "".join(p.read_text() for p in (PROM / "tests").glob("*.yml"))))
    assert {r["alert"] for r in rules()} <= tested


def test_prometheus_config_passes_promtool_check(tmp_path: Path) -> None:
    # The compose file mounts the rules at /etc/prometheus/rules: point the copy at the repository's.
    config = (PROM / "prometheus.yml").read_text().replace("/etc/prometheus/rules", str(PROM / "rules"))
    (tmp_path / "prometheus.yml").write_text(config)
    done = run("check", "config", str(tmp_path / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_rules_have_for_severity_summary_and_a_runbook_in_the_readme() -> None:
    headings = {_anchor(h) for h in re.findall(r"^#+ (.+)$", (ROOT / "README.md").read_text(), flags=re.M)}
    for rule in rules():
        assert rule.get("for"), rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        page, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert page == "README.md" and anchor in headings, f"{rule['alert']}: no README heading #{anchor}"


def _anchor(heading: str) -> str:
    # GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens.
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_metric_names_follow_the_conventions() -> None:
    registry = CollectorRegistry()
    StreamMetrics(registry)
    AlertMetrics.create(registry)
    for family in registry.collect():
        assert family.name.startswith("sentimon_"), family.name
        if family.type == "counter":
            assert any(s.name.endswith("_total") for s in family.samples) or not family.samples, family.name
        if family.type == "histogram":
            assert re.search(r"_(seconds|messages)$", family.name), family.name
        for sample in family.samples:
            assert "entity" not in sample.labels and "id" not in sample.labels


def test_buckets_cover_the_measured_latencies() -> None:
    # BENCHMARKS.md: static tier 0.15 ms per text, the student ~2 s for 256; ingest-to-window 30 ms .. ~70 s.
    assert SCORER_BUCKETS[0] <= 0.00015 * 4 and SCORER_BUCKETS[-1] >= 2.5
    assert INGEST_BUCKETS[0] <= 0.03 and INGEST_BUCKETS[-1] >= 72


def test_model_info_carries_the_tier() -> None:
    registry = CollectorRegistry()
    m = StreamMetrics(registry)
    m.set_scorer(SimpleNamespace(name="default", version="1.0.0", kind="transformer"))
    assert registry.get_sample_value("sentimon_model_info", {"name": "default", "version": "1.0.0",
                                                             "tier": "transformer"}) == 1  # fmt: skip
    m.set_model("vader", "3.3.2")  # the two-argument call keeps working; the tier follows from the name
    assert registry.get_sample_value("sentimon_model_info", {"name": "vader", "version": "3.3.2", "tier": "lexicon"})
    assert registry.get_sample_value("sentimon_model_info", {"name": "default", "version": "1.0.0",
                                                             "tier": "transformer"}) is None  # fmt: skip


def rec(topic: str, partition: int, offset: int, ts_ms: int) -> SimpleNamespace:
    return SimpleNamespace(topic=topic, partition=partition, offset=offset, timestamp_ms=ts_ms)


def test_lag_per_partition_in_messages_and_seconds_grows_while_stalled() -> None:
    now = [1000.0]
    registry = CollectorRegistry()
    m = StreamMetrics(registry, clock=lambda: now[0])
    highs = {("raw", 0): 100, ("raw", 1): 8}
    m.observe_positions([rec("raw", 0, 49, 990_000), rec("raw", 0, 39, 980_000), rec("raw", 1, 7, 999_000)],
                        lambda t, p: highs[(t, p)])  # fmt: skip

    def get(name: str, partition: str) -> float | None:
        return registry.get_sample_value(name, {"topic": "raw", "partition": partition})

    assert get("sentimon_consumer_lag_messages", "0") == 50  # offsets 50..99 wait
    assert get("sentimon_consumer_lag_seconds", "0") == 10.0  # the last consumed record is 10 s old
    assert get("sentimon_consumer_lag_messages", "1") == 0 and get("sentimon_consumer_lag_seconds", "1") == 0
    now[0] = 1030.0  # nothing consumed for 30 s: the time lag grows at scrape time
    assert get("sentimon_consumer_lag_seconds", "0") == 40.0
    # A rebalance revokes partition 1; a highwater that fails mid-rebalance keeps the previous value.
    m.observe_positions([rec("raw", 0, 60, 1_029_000)], lambda t, p: 1 / 0, assigned={("raw", 0)})
    assert get("sentimon_consumer_lag_messages", "0") == 50 and get("sentimon_consumer_lag_messages", "1") is None


def test_per_topic_lag_calls_still_export() -> None:
    registry = CollectorRegistry()
    m = StreamMetrics(registry)
    m.consumer_lag.labels(topic="raw").set(0)
    m.consumer_lag.labels(topic="market").set(7)
    get = registry.get_sample_value
    assert get("sentimon_consumer_lag_messages", {"topic": "raw", "partition": "all"}) == 0
    assert get("sentimon_consumer_lag_seconds", {"topic": "raw", "partition": "all"}) == 0
    assert math.isnan(get("sentimon_consumer_lag_seconds", {"topic": "market", "partition": "all"}) or 0.0)


def test_lag_seconds_is_zero_when_caught_up_or_without_timestamps() -> None:
    assert lag_seconds(0, 1000, 5000) == 0.0
    assert lag_seconds(3, None, 5000) == 0.0
    assert lag_seconds(3, 1000, 5000) == 4.0
