"""docker-compose.yml cannot run here (no Docker engine): check its structure against the project instead."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sentimon.core.settings import FLAT_NAMES, PARTS, MetricsSettings, StackSettings, env_names

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_present(compose: dict) -> None:
    assert {"kafka", "redis", "postgres", "prometheus", "grafana", "worker"} <= set(compose["services"])


def test_kafka_version_matches_the_local_launcher(compose: dict) -> None:
    image = compose["services"]["kafka"]["image"]
    assert image == f"apache/kafka:{StackSettings.model_fields['kafka_version'].default}"
    pom = (ROOT / "infra" / "kafka" / "pom.xml").read_text()
    assert f"<kafka.version>{StackSettings.model_fields['kafka_version'].default}</kafka.version>" in pom
    env = compose["services"]["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


@pytest.mark.parametrize("service", ["kafka", "redis", "postgres", "worker", "prometheus", "grafana"])
def test_long_running_services_have_healthchecks(compose: dict, service: str) -> None:
    check = compose["services"][service]["healthcheck"]
    assert check["test"] and check["interval"] and check["retries"] >= 3


def test_published_ports_bind_loopback_only(compose: dict) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_stateful_services_use_named_volumes(compose: dict) -> None:
    declared = set(compose["volumes"])
    for name in ("kafka", "redis", "postgres", "prometheus", "grafana", "worker"):
        mounts = compose["services"][name]["volumes"]
        named = {m.split(":")[0] for m in mounts if not m.startswith(".")}
        assert named and named <= declared, name


def test_worker_waits_for_healthy_dependencies_and_topics(compose: dict) -> None:
    depends = compose["services"]["worker"]["depends_on"]
    for dep in ("kafka", "redis", "postgres"):
        assert depends[dep]["condition"] == "service_healthy"
    assert depends["topics"]["condition"] == "service_completed_successfully"
    assert (ROOT / compose["services"]["worker"]["build"] / "Dockerfile").is_file()


def test_sentimon_env_vars_are_real_settings(compose: dict) -> None:
    known = {env for part, cls in PARTS.items() for field in cls.model_fields for env in env_names(part, field)}
    assert len(known) == 2 * len(FLAT_NAMES)  # no nested name collides with a flat one
    for name, service in compose["services"].items():
        for key in service.get("environment", {}) or {}:
            if key.startswith("SENTIMON_"):
                assert key in known, f"{name}: {key} is not a setting"


def test_prometheus_scrapes_the_worker_metrics_port(compose: dict) -> None:
    config = yaml.safe_load((ROOT / "infra" / "prometheus" / "prometheus.yml").read_text())
    targets = [t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    assert f"worker:{MetricsSettings.model_fields['port'].default}" in targets
    assert str(MetricsSettings.model_fields["port"].default) in compose["services"]["worker"]["expose"]
