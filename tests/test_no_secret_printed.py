"""No secret is ever printed or logged: every CLI command that shows a URL or may fail on a connection runs with
known secrets (a Redis that requires a password, a PostgreSQL role with a password, a webhook URL with a token),
on the working paths and the failing ones (wrong password, unreachable host), and its stdout, stderr and the
files under its state dir are searched for them."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from sentimon.core.host import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
RULES = sorted((ROOT / "alerts" / "rules").glob("*.y*ml"))


def _secret(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def secrets() -> dict[str, str]:
    return {"redis": _secret("redispw"), "database": _secret("dbpw"), "webhook": _secret("hooktoken")}


@pytest.fixture(scope="module")
def redis_with_password(secrets: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server requiring ``secrets['redis']`` (given on stdin, as docker-compose.yml does), on a free port."""
    import redis

    port = free_port()
    workdir = tmp_path_factory.mktemp("redis-auth")
    proc = subprocess.Popen(
        ["redis-server", "-", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(workdir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdin is not None
    proc.stdin.write(f"requirepass {secrets['redis']}\n")
    proc.stdin.close()
    url = f"redis://:{secrets['redis']}@127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if redis.Redis.from_url(url, socket_connect_timeout=1).ping():
                    break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        with pytest.raises(redis.AuthenticationError):  # it really requires the password
            redis.Redis(host="127.0.0.1", port=port).ping()
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def database_with_password(stack_settings, secrets: dict[str, str]) -> Iterator[str]:
    """A role with a password that owns a database of its own, on the session's real PostgreSQL."""
    import psycopg
    from psycopg import sql

    admin_url = stack_settings.stack.database.replace("postgresql+psycopg://", "postgresql://", 1)
    role = f"sec_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(secrets["database"]))
        )
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(role), sql.Identifier(role)))
    host, port = "127.0.0.1", stack_settings.stack.postgres_port
    url = f"postgresql+psycopg://{role}:{secrets['database']}@{host}:{port}/{role}"
    try:
        with psycopg.connect(url.replace("+psycopg", ""), connect_timeout=5) as conn:  # the password works
            conn.execute("SELECT 1")
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def _with_wrong_password(url: str, secret: str) -> str:
    # Still a secret to hide: a user's typo of their password is as sensitive as the password.
    return url.replace(secret, secret + "-wrong")


def _unreachable(url: str, secret: str) -> str:
    port = free_port()  # nothing listens there
    head, _, tail = url.partition(f"{secret}@127.0.0.1:")
    return f"{head}{secret}@127.0.0.1:{port}{tail[tail.index('/') :]}"


class Run:
    """The CLI as a user runs it, with ``env``; every output kept for the search."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.outputs: list[tuple[str, str]] = []

    def __call__(self, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "sentimon", *args], env=self.env, capture_output=True, text=True, timeout=timeout_s
        )
        self.outputs.append((" ".join(args), result.stdout + result.stderr))
        return result


def _env(state_dir: Path, kafka: str, redis_url: str, database_url: str, webhook: str, prefix: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("SENTIMON_")},
        "SENTIMON_STATE_DIR": str(state_dir),
        "SENTIMON_KAFKA_BOOTSTRAP": kafka,
        "SENTIMON_REDIS_URL": redis_url,
        "SENTIMON_DATABASE_URL": database_url,
        "SENTIMON_ALERTS__WEBHOOKS": f'["{webhook}"]',
        "SENTIMON_WINDOWS__PREFIX": prefix,
        "SENTIMON_ALERTS__PREFIX": f"{prefix}:alerts",
        "SENTIMON_METRICS_PORT": str(free_port()),
        "SENTIMON_WEB_PORT": str(free_port()),
        **{
            f"SENTIMON_TOPICS__{kind.upper()}": f"{prefix}.{kind}"
            for kind in ("social", "market", "scored", "dlq", "alerts")
        },
    }


def _files_under(directory: Path) -> Iterator[tuple[str, str]]:
    for path in directory.rglob("*"):
        if path.is_file():
            yield str(path), path.read_text(errors="replace")


def _leaks(outputs: list[tuple[str, str]], secrets: dict[str, str]) -> list[str]:
    return [
        f"{kind} secret in {where}" for where, text in outputs for kind, secret in secrets.items() if secret in text
    ]


def test_cli_never_prints_a_secret(
    stack_settings, secrets, redis_with_password, database_with_password, unique, tmp_path: Path
) -> None:
    kafka = stack_settings.stack.kafka_servers
    webhook = f"http://127.0.0.1:{free_port()}/hooks/{secrets['webhook']}?token={secrets['webhook']}"
    good = Run(_env(tmp_path / "good", kafka, redis_with_password, database_with_password, webhook, unique))
    bad = Run(
        _env(
            tmp_path / "bad",
            kafka,
            _with_wrong_password(redis_with_password, secrets["redis"]),
            _unreachable(database_with_password, secrets["database"]),
            webhook,
            unique,
        )
    )

    # The working paths: everything answers with the right secrets.
    assert good("topics", "create").returncode == 0
    status = good("status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "redis://:***@127.0.0.1:" in status.stdout  # the URL is shown, its password is not
    assert good("status").returncode == 0
    assert good("up").returncode == 0  # every service external: up names each URL and launches nothing
    assert good("windows", "TSLA", "--window", "1h").returncode in (0, 1)
    assert good("top", "--window", "1h").returncode == 0
    assert good("alerts", "list", "--state", "all").returncode == 0
    assert good("alerts", "check", *map(str, RULES)).returncode == 0
    good("replay", "--topic", f"{unique}.no-such-topic", "--model", "vader")  # a bad target

    # The failing paths: a wrong Redis password, an unreachable database (both URLs still carry a password).
    assert bad("status", "--json").returncode == 1
    assert bad("status").returncode == 1
    assert bad("up").returncode in (0, 1)
    for args in (("windows", "TSLA"), ("top",), ("alerts", "list", "--state", "all"), ("alerts", "list")):
        result = bad(*args)
        assert result.returncode != 0 and "***" in result.stdout + result.stderr, (args, result.stderr)
    worker = bad("worker", "--loglevel", "debug", timeout_s=180)
    assert worker.returncode != 0 and "Redis at redis://:***@127.0.0.1:" in worker.stderr, worker.stderr
    bad("replay", "--topic", f"{unique}.social", "--model", "vader")

    outputs = good.outputs + bad.outputs + [*_files_under(tmp_path / "good"), *_files_under(tmp_path / "bad")]
    assert _leaks(outputs, secrets) == []


class _Failing(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the http.server name
        self.send_response(503)
        self.end_headers()
        self.wfile.write(b"busy")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def failing_receiver() -> Iterator[int]:
    server = HTTPServer(("127.0.0.1", 0), _Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


@pytest.mark.parametrize("reachable", [True, False])
def test_webhook_failures_name_the_host_only(secrets, failing_receiver: int, reachable: bool, caplog) -> None:
    from sentimon.alerts.sinks import WebhookSink

    port = failing_receiver if reachable else free_port()
    token = secrets["webhook"]
    url = f"http://user:{token}@127.0.0.1:{port}/services/{token}?token={token}"
    with caplog.at_level(logging.DEBUG):
        sink = WebhookSink(url, attempts=2, backoff_s=0, timeout_s=2)
        sink.send({"rule": "r", "entity": "E", "kind": "firing", "severity": "warning", "dedup_key": "k"})
        assert sink.flush(30)
        sink.close()
    assert sink.failed == 1
    assert f"webhook http://127.0.0.1:{port} gave up" in caplog.text
    assert f"webhook http://127.0.0.1:{port} attempt 1 failed" in caplog.text
    assert token not in caplog.text
    assert token not in sink.key and sink.key.startswith(f"webhook:http://127.0.0.1:{port}#")
