"""The launcher's error paths and bookkeeping, with real (trivial) processes and no Kafka/Redis/PostgreSQL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sentimon.core.settings import load_settings
from sentimon.infra import (
    InfraError,
    MissingDependency,
    ServiceStartError,
    Stack,
    ensure_topics,
    pipeline_topics,
    postgres_service,
    procs,
)
from sentimon.infra.kafka_service import server_properties
from sentimon.infra.service import Service


@pytest.fixture
def settings(tmp_path: Path):
    return load_settings(state_dir=tmp_path / "state", cache_dir=tmp_path / "cache", startup_timeout_s=3)


class ScriptService(Service):
    """A Service whose process is a small Python script: exercises the shared lifecycle for real."""

    name = "script"
    port_setting = "redis_port"
    external_setting = "redis_url"

    def __init__(self, settings, script: str, ready_file: str | None = None, port: int = 1):
        super().__init__(settings)
        self.script, self.ready_file, self._port = script, ready_file, port

    url = property(lambda self: "script://")
    managed = property(lambda self: True)
    port = property(lambda self: self._port)

    def command(self) -> list[str]:
        return [sys.executable, "-c", self.script]

    def probe(self) -> bool:
        return self.ready_file is not None and Path(self.ready_file).exists()


def test_missing_binary_names_the_package(settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    monkeypatch.setattr(postgres_service, "PG_BIN_DIRS", [])
    stack = Stack(settings)
    with pytest.raises(MissingDependency, match=r"apt-get install -y (openjdk|redis-server|postgresql)"):
        stack.up()
    # Checked before anything starts: no process, no pid file left behind.
    assert not (settings.stack.state_dir / "run").exists() or not any((settings.stack.state_dir / "run").iterdir())


@pytest.mark.parametrize("service", ["redis", "database"])
def test_each_missing_server_binary_is_reported(settings, monkeypatch, tmp_path, service) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(postgres_service, "PG_BIN_DIRS", [])
    package = {"redis": "redis-server", "database": "postgresql"}[service]
    with pytest.raises(MissingDependency, match=f"install -y {package}"):
        Stack(settings, only=(service,)).up()


def test_unknown_service_name_is_rejected(settings) -> None:
    with pytest.raises(InfraError, match="unknown service"):
        Stack(settings, only=("zookeeper",))


def test_external_urls_launch_nothing(tmp_path: Path) -> None:
    settings = load_settings(
        state_dir=tmp_path,
        kafka_bootstrap="127.0.0.1:1",
        redis_url="redis://127.0.0.1:1/0",
        database_url="sqlite:///" + str(tmp_path / "x.db"),
    )
    events: list[tuple[str, str]] = []
    Stack(settings).up(lambda name, what: events.append((name, what)))
    assert [name for name, _ in events] == ["kafka", "redis", "database"]
    assert all("not launched" in what for _, what in events)
    assert not (tmp_path / "run").exists()
    status = Stack(settings).status()
    assert status["kafka"].as_dict()["bootstrap"] == "127.0.0.1:1"
    assert status["kafka"].up is False and status["redis"].up is False
    assert status["database"].up is True  # the SQLite file is a working database


def test_start_waits_for_ready_and_stop_kills_only_ours(settings, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    script = f"import pathlib, time; pathlib.Path({str(ready)!r}).touch(); time.sleep(60)"
    service = ScriptService(settings, script, ready_file=str(ready))
    assert service.start() is True
    pid = service.pid()
    assert pid is not None and procs.alive(pid)
    assert service.start() is False  # idempotent: already running
    assert service.stop() is True
    assert not procs.alive(pid)
    assert service.stop() is False


def test_process_that_exits_during_startup_reports_its_log(settings) -> None:
    service = ScriptService(settings, "import sys; print('bad config line 3', flush=True); sys.exit(3)")
    with pytest.raises(ServiceStartError, match=r"exited during start-up(.|\n)*bad config line 3"):
        service.start()


def test_readiness_timeout_is_reported(settings) -> None:
    service = ScriptService(settings, "import time; time.sleep(30)", ready_file="/nonexistent/never")
    with pytest.raises(ServiceStartError, match=r"not ready within 3 s \(stack\.startup_timeout_s "):
        service.start()
    service.stop()


def test_port_taken_by_a_foreign_process(settings) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        service = ScriptService(settings, "pass", port=s.getsockname()[1])
        taken = r"taken by a process sentimon did not start.*stack\.redis_port \(SENTIMON_STACK__REDIS_PORT or "
        with pytest.raises(InfraError, match=taken + r"SENTIMON_REDIS_PORT\).*stack\.redis_url"):
            service.start()


def test_recycled_pid_of_a_foreign_process_is_never_stopped(settings, tmp_path: Path) -> None:
    # A pid file pointing at someone else's process (here: one working outside the state dir).
    foreign = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], cwd=tmp_path)
    try:
        service = ScriptService(settings, "pass")
        service.pid_file.parent.mkdir(parents=True)
        service.pid_file.write_text(f"{foreign.pid}\n")
        assert service.pid() is None
        assert service.stop() is False
        assert foreign.poll() is None
        assert not service.pid_file.exists()  # the stale file is cleaned up
    finally:
        foreign.kill()
        foreign.wait()


def test_garbage_pid_file_is_ignored(settings) -> None:
    service = ScriptService(settings, "pass")
    service.pid_file.parent.mkdir(parents=True)
    service.pid_file.write_text("not a pid")
    assert service.pid() is None


def test_kafka_config_binds_loopback_and_disables_auto_create(tmp_path: Path) -> None:
    props = dict(
        line.split("=", 1) for line in server_properties(tmp_path, 19092, 19093, 4).splitlines() if line
    )
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["auto.create.topics.enable"] == "false"
    assert props["log.dirs"] == str(tmp_path)


def test_pipeline_topics_follow_settings(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path, topic_partitions=3, topic_dlq="my.dlq")
    specs = {t.name: t for t in pipeline_topics(settings)}
    assert set(specs) == set(settings.topics.names.values())
    assert specs[settings.topics.social].partitions == 3
    assert specs["my.dlq"].retention_ms == settings.topics.dlq_retention_ms


@pytest.mark.skipif(os.geteuid() != 0, reason="the postgres-account path only applies when running as root")
def test_root_state_dir_unreachable_by_postgres_is_explained(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    settings = load_settings(state_dir=private / "state")
    service = postgres_service.PostgresService(settings)
    service.check_binaries()
    service.dir.mkdir(parents=True)
    with pytest.raises(InfraError, match="cannot enter .*SENTIMON_STATE_DIR"):
        service.prepare()


def test_unreachable_kafka_is_one_error_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    import kafka
    from kafka.errors import KafkaTimeoutError

    def refuse(**kwargs):
        raise KafkaTimeoutError("Unable to bootstrap from 127.0.0.1:1")

    monkeypatch.setattr(kafka, "KafkaAdminClient", refuse)
    with pytest.raises(InfraError, match=r"Kafka at 127\.0\.0\.1:1 is unreachable .*stack\.kafka_bootstrap"):
        ensure_topics(load_settings(kafka_bootstrap="127.0.0.1:1"), [])
