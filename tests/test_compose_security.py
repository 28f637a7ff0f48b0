"""docker-compose.yml keeps no secret: passwords come from the environment (.env), Grafana has no anonymous
access, Redis and PostgreSQL require a password, and Prometheus can reach the worker's metrics."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from sentimon.core.settings import MetricsSettings

ROOT = Path(__file__).resolve().parent.parent
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|_KEY\b", re.I)
# Compose interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}; $$ is a literal $.
INTERPOLATION = re.compile(r"\$\{(?P<var>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
URL_PASSWORD = re.compile(r"://[^/@\s:]*:(?P<password>(?:\$\{[^}]*\}|[^@\s])+)@")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _strings(node: object) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def _is_one_interpolation(value: str) -> bool:
    match = INTERPOLATION.fullmatch(value)
    return match is not None


def test_secret_variables_are_required_never_defaulted(compose: dict) -> None:
    found = set()
    for text in _strings(compose):
        for match in INTERPOLATION.finditer(text):
            if SECRET_NAME.search(match["var"]) and match["var"] != "SENTIMON_CONSOLE_TOKEN":
                found.add(match["var"])
                assert match["op"] in (":?", "?"), f"{match.group(0)}: a secret needs ':?', never a default"
    assert {"POSTGRES_PASSWORD", "REDIS_PASSWORD", "GRAFANA_ADMIN_PASSWORD"} <= found


def test_no_password_is_written_in_the_file(compose: dict) -> None:
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                assert value in ("", None) or _is_one_interpolation(str(value)), f"{name}: {key} is hard-coded"
    for text in _strings(compose):
        for match in URL_PASSWORD.finditer(text):
            assert _is_one_interpolation(match["password"]), f"a URL carries a literal password: {text}"
        assert not re.search(r"--requirepass\s+\S", text), f"a password on a command line: {text}"


def test_grafana_admin_password_from_env_and_no_anonymous_access(compose: dict) -> None:
    env = compose["services"]["grafana"]["environment"]
    assert INTERPOLATION.fullmatch(env["GF_SECURITY_ADMIN_PASSWORD"])["var"] == "GRAFANA_ADMIN_PASSWORD"
    assert str(env.get("GF_AUTH_ANONYMOUS_ENABLED", "false")).lower() == "false"
    assert "GF_AUTH_ANONYMOUS_ORG_ROLE" not in env


def test_postgres_and_redis_require_the_password_the_clients_use(compose: dict) -> None:
    services = compose["services"]
    pg = services["postgres"]["environment"]
    assert INTERPOLATION.fullmatch(pg["POSTGRES_PASSWORD"])["var"] == "POSTGRES_PASSWORD"
    assert "trust" not in str(pg.get("POSTGRES_HOST_AUTH_METHOD", "")) + str(pg.get("POSTGRES_INITDB_ARGS", ""))
    redis = services["redis"]
    assert "requirepass" in " ".join(redis["command"]) and "$$REDIS_PASSWORD" in " ".join(redis["command"])
    assert "REDISCLI_AUTH" in " ".join(redis["healthcheck"]["test"])  # an unauthenticated ping proves nothing
    env = compose["x-sentimon-env"]
    for key, var in (("SENTIMON_DATABASE_URL", "POSTGRES_PASSWORD"), ("SENTIMON_REDIS_URL", "REDIS_PASSWORD")):
        assert INTERPOLATION.fullmatch(URL_PASSWORD.search(env[key])["password"])["var"] == var


def test_prometheus_can_scrape_the_worker(compose: dict) -> None:
    worker = compose["services"]["worker"]
    assert worker["environment"]["SENTIMON_METRICS_HOST"] == "0.0.0.0"  # reachable from the prometheus container
    port = str(MetricsSettings.model_fields["port"].default)
    assert port in [str(p) for p in worker["expose"]] and "ports" not in worker  # the compose network only
    config = yaml.safe_load((ROOT / "infra" / "prometheus" / "prometheus.yml").read_text())
    targets = [t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    assert f"worker:{port}" in targets
