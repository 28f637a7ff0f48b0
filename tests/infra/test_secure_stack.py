"""`sentimon up --secure` against real services: one secure stack for the module, made by the project's launcher
in a fresh state dir; clients use the client.toml it writes, as a user would (`sentimon --config FILE`)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import stat
import struct
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis
import tomli_w

from sentimon.core.host import free_port
from sentimon.core.settings import Settings, load_settings
from sentimon.infra import InfraError, Stack, kafka_clients
from sentimon.infra.redis_client import connect
from sentimon.infra.secure import CLIENT_FILE, SECRETS_FILE
from sentimon.streams.windows import WindowStore
from tests.alerts.test_stream_alerts import rules
from tests.conftest import fresh_stack_settings
from tests.streams.conftest import TEST_TIMINGS, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
MIN = 60_000


@dataclass
class Secure:
    state_dir: Path
    settings: Settings  # what the test gave `up`: the state dir and ports, no logins
    client: Settings  # the client.toml `up --secure` wrote
    start_s: float

    @property
    def client_file(self) -> Path:
        return self.state_dir / CLIENT_FILE

    def passwords(self) -> list[str]:
        return list(tomllib.loads((self.state_dir / SECRETS_FILE).read_text()).values())

    def stack_env(self) -> dict[str, str]:
        """Where the stack is, and nothing else: no config file, no login."""
        s = self.settings.stack
        return {
            "SENTIMON_STATE_DIR": str(s.state_dir),
            **{f"SENTIMON_{name.upper()}": str(getattr(s, name)) for name in
               ("kafka_port", "kafka_controller_port", "redis_port", "postgres_port")},
        }  # fmt: skip


def clean_env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("SENTIMON_")}, **extra}


def sentimon(*args: str, env: dict[str, str] | None = None, timeout_s: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sentimon", *args], env=env or clean_env(), capture_output=True, text=True,
        timeout=timeout_s, cwd=ROOT,
    )  # fmt: skip


@pytest.fixture(scope="module")
def secure() -> Iterator[Secure]:
    state_dir, settings = fresh_stack_settings("sentimon-secure-")
    try:
        started = time.monotonic()
        Stack(settings).up(secure=True)
        start_s = time.monotonic() - started
        yield Secure(state_dir, settings, load_settings(state_dir / CLIENT_FILE), start_s)
    finally:
        Stack(settings).down()
        shutil.rmtree(state_dir, ignore_errors=True)


def test_client_config_keys_and_service_configs_are_private(secure: Secure) -> None:
    private = [secure.client_file, secure.state_dir / SECRETS_FILE, *sorted((secure.state_dir / "tls").glob("*.key")),
               secure.state_dir / "kafka" / "server.properties", secure.state_dir / "kafka" / "keystore.pem",
               secure.state_dir / "redis" / "redis.conf"]  # fmt: skip
    assert len(private) == 8
    for path in private:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE((secure.state_dir / "tls").stat().st_mode) == 0o700
    # The superuser's initdb password file is gone once initdb read it.
    assert not (secure.state_dir / "database" / "initdb.pw").exists()


def test_status_reports_the_protocol_and_the_client_config_without_a_password(secure: Secure) -> None:
    with_config = sentimon("--config", str(secure.client_file), "status", "--json")
    assert with_config.returncode == 0, with_config.stderr
    report = json.loads(with_config.stdout)
    assert report["kafka"]["security_protocol"] == "SASL_SSL"
    assert report["client_config"] == str(secure.client_file)
    assert all(report[name]["up"] for name in ("kafka", "redis", "database"))
    assert report["redis"]["url"].startswith("rediss://sentimon:***@")
    # The state dir remembers it is secure: without --config the same stack is probed with its logins.
    remembered = sentimon("status", "--json", env=clean_env(**secure.stack_env()))
    assert remembered.returncode == 0, remembered.stderr
    assert json.loads(remembered.stdout)["kafka"]["security_protocol"] == "SASL_SSL"
    for password in secure.passwords():
        assert password not in with_config.stdout + with_config.stderr + remembered.stdout + remembered.stderr


def test_up_without_secure_on_a_secure_state_dir_keeps_it_secure(secure: Secure) -> None:
    again = sentimon("up", env=clean_env(**secure.stack_env()))
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("already running") == 3
    assert f"--config {secure.client_file}" in again.stderr
    for password in secure.passwords():
        assert password not in again.stdout + again.stderr


def test_secure_needs_a_fresh_state_dir(tmp_path: Path) -> None:
    (tmp_path / "kafka" / "data").mkdir(parents=True)
    (tmp_path / "kafka" / "data" / "meta.properties").write_text("cluster.id=x\n")
    settings = load_settings(state_dir=tmp_path, kafka_port=free_port(), redis_port=free_port(),
                             postgres_port=free_port())  # fmt: skip
    with pytest.raises(InfraError, match="fresh state dir"):
        Stack(settings).up(secure=True)
    assert not (tmp_path / SECRETS_FILE).exists() and not (tmp_path / CLIENT_FILE).exists()


def test_a_plaintext_client_and_a_wrong_password_are_refused_naming_the_setting(secure: Secure, tmp_path) -> None:
    document = tomllib.loads(secure.client_file.read_text())
    plain = tmp_path / "plain.toml"  # the stack's ports, no kafka part: PLAINTEXT
    plain.write_text(tomli_w.dumps({"stack": document["stack"]}))
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(tomli_w.dumps({**document, "kafka": {**document["kafka"], "sasl_password": "wrong"}}))
    runs = {  # both at once: each waits out the client's bootstrap timeout
        setting: subprocess.Popen(
            [sys.executable, "-m", "sentimon", "--config", str(config), "topics", "create"],
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for setting, config in (("kafka.security_protocol", plain), ("kafka.sasl_password", wrong))
    }
    for setting, proc in runs.items():
        stdout, stderr = proc.communicate(timeout=180)
        assert proc.returncode == 2, stderr
        assert stderr.startswith("error:") and len(stderr.strip().splitlines()) == 1, stderr
        assert setting in stderr and "unreachable" in stderr
        assert stdout == ""
        for password in secure.passwords():
            assert password not in stderr


def _api_versions(port: int, context: ssl.SSLContext) -> bytes:
    """One ApiVersions request (v0) over TLS to 127.0.0.1:port; the first bytes of the answer."""
    client_id = b"secure-test"
    body = struct.pack(">hhih", 18, 0, 7, len(client_id)) + client_id
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(struct.pack(">i", len(body)) + body)
            return tls.recv(8)


def test_the_controller_listener_takes_only_a_certificate_of_the_local_ca(secure: Secure) -> None:
    tls = secure.state_dir / "tls"
    port = secure.settings.stack.kafka_controller_port
    with_cert = ssl.create_default_context(cafile=tls / "ca.pem")
    with_cert.load_cert_chain(tls / "server.pem", tls / "server.key")
    assert _api_versions(port, with_cert)[4:8] == struct.pack(">i", 7)  # answered: correlation id 7
    without = ssl.create_default_context(cafile=tls / "ca.pem")
    try:
        answer = _api_versions(port, without)
    except (ssl.SSLError, ConnectionResetError):  # TLS 1.3: the "certificate required" alert comes on the first read
        answer = b""
    assert answer == b"", answer


def test_redis_refuses_clients_without_the_password(secure: Secure) -> None:
    s = secure.client.stack
    assert connect(s).ping()
    anonymous = f"rediss://127.0.0.1:{s.redis_port}/0?ssl_ca_certs={s.redis_tls_cafile}"
    wrong = f"rediss://sentimon:wrong@127.0.0.1:{s.redis_port}/0?ssl_ca_certs={s.redis_tls_cafile}"
    for url in (anonymous, wrong):
        with pytest.raises(redis.AuthenticationError):
            redis.Redis.from_url(url, socket_timeout=5).ping()
    with pytest.raises(redis.ConnectionError):  # no plain TCP: TLS only
        redis.Redis(host="127.0.0.1", port=s.redis_port, socket_timeout=5).ping()
    # The application's login has no admin commands.
    with pytest.raises(redis.exceptions.NoPermissionError):
        connect(s).config_get("requirepass")


def test_the_application_database_role_is_no_superuser(secure: Secure) -> None:
    url = secure.client.stack.database.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user") \
            .fetchone() == (False, False, False)  # fmt: skip
        conn.execute("CREATE TABLE secure_probe (i int)")  # it owns its database
        for statement in ("CREATE ROLE intruder LOGIN SUPERUSER", "COPY (SELECT 1) TO PROGRAM 'id'",
                          "CREATE DATABASE other"):  # fmt: skip
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(url.rsplit("/", 1)[0] + "/postgres").close()
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(url.replace(secure.client.stack.database_password.get_secret_value(), "wrong")).close()


def minute(m: int, ts: int, burst: range) -> list[dict]:
    out = [{"id": f"{e}-{m}-{j}", "ts": ts + j * 1000, "source": "news", "text": f"{e} quarterly report is out",
            "entities": [e]} for e in ("AAPL", "MSFT") for j in range(4)]  # fmt: skip
    if m in burst:
        out += [{"id": f"AAPL-neg-{m}-{j}", "ts": ts + j * 1000 + 500, "source": "twitter",
                 "text": f"AAPL recall, awful and terrible, fraud probe {j}", "entities": ["AAPL"]}
                for j in range(8)]  # fmt: skip
    return out


def test_the_pipeline_round_trips_through_sasl_ssl_to_windows_and_alerts(secure: Secure, tmp_path: Path) -> None:
    name = f"sec{int(time.time() * 1000) % 10**8}"
    topics = {kind: f"{name}.{kind}" for kind in ("social", "market", "scored", "dlq", "alerts")}
    (tmp_path / "rules.yaml").write_text(rules(name, for_="1m"))
    env = clean_env(
        **{f"SENTIMON_TOPIC_{kind.upper()}": topic for kind, topic in topics.items()},
        SENTIMON_WORKER_ID=f"{name}-group", SENTIMON_WINDOW_PREFIX=name, SENTIMON_MODEL="vader",
        SENTIMON_INFERENCE__MARKET_MODEL="",
        SENTIMON_METRICS_PORT=str(free_port()), SENTIMON_WEB_PORT=str(free_port()),
        SENTIMON_WORKER_DATA_DIR=str(tmp_path / "worker"),
        SENTIMON_STREAM_HOOKS='["sentimon.alerts:stream_hook"]',
        SENTIMON_ALERTS_RULES=json.dumps([str(tmp_path / "rules.yaml")]), SENTIMON_ALERTS_PREFIX=f"{name}:alerts",
        **TEST_TIMINGS,
    )  # fmt: skip
    created = sentimon("--config", str(secure.client_file), "topics", "create", env=env)
    assert created.returncode == 0, created.stderr
    assert created.stdout.count("created") == 5
    ready = tmp_path / "worker.ready"
    with open(tmp_path / "worker.log", "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "sentimon", "--config", str(secure.client_file), "worker", "--ready-file",
             str(ready)], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
    client = secure.client
    store = WindowStore(connect(client.stack), prefix=name, bucket_ms=client.windows.bucket_ms)
    producer = kafka_clients.producer(client, acks="all", linger_ms=2)
    try:
        wait_for(lambda: ready.exists() or worker.poll() is not None, 90, "the worker's assignment")
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
        base = (int(time.time() * 1000) - 40 * MIN) // MIN * MIN
        burst = range(4, 10)
        for m in range(20):
            ts = base + m * MIN
            for record in minute(m, ts, burst):
                producer.send(topics["social"], key=record["id"].encode(), value=json.dumps(record).encode())
            producer.flush()
            want = {"AAPL": 4 + (8 if m in burst else 0), "MSFT": 4}

            def applied(ts=ts, want=want) -> bool:
                return all(store.stats(e, MIN, ts + MIN).count == n for e, n in want.items())

            wait_for(applied, 60, f"minute {m} in the Redis windows")
        alerts = _read(client, topics["alerts"], expected=2)
    finally:
        producer.close()
        worker.kill()
        worker.wait(10)
    rule = f"{name}/negative-share"
    got = [(r.key.decode(), json.loads(r.value)["kind"], json.loads(r.value)["rule"]) for r in alerts]
    assert got == [("AAPL", "firing", rule), ("AAPL", "resolved", rule)]
    from sentimon.alerts.history import History

    history = History(client.stack.database)  # the alert history went to PostgreSQL as the application role
    try:
        rows = [r for r in history.list(limit=1000) if r["rule"] == rule]
    finally:
        history.close()
    assert [(r["entity"], r["state"]) for r in rows] == [("AAPL", "resolved")]


def _read(settings: Settings, topic: str, expected: int, timeout_s: float = 60) -> list:
    consumer = kafka_clients.consumer(settings, topic, auto_offset_reset="earliest", enable_auto_commit=False,
                                      consumer_timeout_ms=1000)  # fmt: skip
    records: list = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and len(records) < expected:
            records += list(consumer)
        time.sleep(2)  # a late duplicate would be here by now
        records += list(consumer)
    finally:
        consumer.close()
    return records


def test_start_time_of_a_secure_stack_against_a_plain_one(secure: Secure) -> None:
    """Both on fresh state dirs with the broker jars cached; the secure one also makes its CA, certificates and
    logins. Printed for the record (BENCHMARKS-style numbers come from the same call)."""
    state_dir, settings = fresh_stack_settings("sentimon-plain-")
    try:
        started = time.monotonic()
        Stack(settings).up()
        plain_s = time.monotonic() - started
        assert Stack(settings).client_config is None and not (state_dir / CLIENT_FILE).exists()
    finally:
        Stack(settings).down()
        shutil.rmtree(state_dir, ignore_errors=True)
    print(f"\nstart on a fresh state dir: up --secure {secure.start_s:.1f} s, plain up {plain_s:.1f} s")
    # TLS handshakes and SCRAM logins cost milliseconds; anything near a startup timeout is a regression.
    assert secure.start_s < plain_s + 30


def test_down_then_plain_up_brings_the_stack_back_secure(secure: Secure) -> None:
    down = sentimon("down", env=clean_env(**secure.stack_env()))
    assert down.returncode == 0, down.stderr
    assert down.stderr.count("stopped") == 3
    up = sentimon("up", env=clean_env(**secure.stack_env()))
    assert up.returncode == 0, up.stderr
    assert up.stderr.count("started") == 3
    status = json.loads(sentimon("--config", str(secure.client_file), "status", "--json").stdout)
    assert all(status[name]["up"] for name in ("kafka", "redis", "database"))
    with pytest.raises(redis.ConnectionError):  # still TLS and a login only
        redis.Redis(host="127.0.0.1", port=secure.settings.stack.redis_port, socket_timeout=5).ping()
