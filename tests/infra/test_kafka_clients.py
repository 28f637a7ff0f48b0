"""The Kafka client arguments of each protocol and mechanism (pure: no broker), and the kafka.* settings' checks."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from sentimon.core.settings import ConfigError, Settings, load_settings
from sentimon.infra import kafka_clients

SECRET = "s3cr3t-Pa55word"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A self-signed CA and a client certificate signed by it, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("pki")
    now = dt.datetime.now(dt.UTC)

    def cert(subject: str, key, issuer: str, signer, ca: bool) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(signer, hashes.SHA256())
        )

    ca_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    files = {
        "ca": cert("test-ca", ca_key, "test-ca", ca_key, True),
        "cert": cert("client", client_key, "test-ca", ca_key, False),
    }
    out = {}
    for name, value in files.items():
        out[name] = folder / f"{name}.pem"
        out[name].write_bytes(value.public_bytes(serialization.Encoding.PEM))
    out["key"] = folder / "key.pem"
    out["key"].write_bytes(
        client_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return out


def settings(**kafka) -> Settings:
    return load_settings(kafka_bootstrap="a:9093,b:9093", kafka=kafka)


def sasl(protocol: str, mechanism: str = "SCRAM-SHA-512", **more) -> Settings:
    return settings(
        security_protocol=protocol, sasl_mechanism=mechanism, sasl_username="app", sasl_password=SECRET, **more
    )


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    s = load_settings(kafka_bootstrap="a:9092")
    assert kafka_clients.kafka_python_args(s) == {"bootstrap_servers": "a:9092", "security_protocol": "PLAINTEXT"}
    assert kafka_clients.aiokafka_args(s) == {"bootstrap_servers": "a:9092", "security_protocol": "PLAINTEXT"}
    assert kafka_clients.faust_args(s) == {"broker": "kafka://a:9092", "broker_credentials": None}


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_plaintext_passes_the_login_and_no_tls(mechanism: str) -> None:
    s = sasl("SASL_PLAINTEXT", mechanism)
    expected = {
        "bootstrap_servers": "a:9093,b:9093",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "app",
        "sasl_plain_password": SECRET,
    }
    assert kafka_clients.kafka_python_args(s) == expected
    assert kafka_clients.aiokafka_args(s) == expected


def test_sasl_ssl_verifies_the_broker_with_the_ca(pki: dict[str, Path]) -> None:
    s = sasl("SASL_SSL", "SCRAM-SHA-512", ssl_cafile=pki["ca"])
    args = kafka_clients.kafka_python_args(s)
    assert args["security_protocol"] == "SASL_SSL" and args["sasl_mechanism"] == "SCRAM-SHA-512"
    assert args["ssl_cafile"] == str(pki["ca"]) and args["ssl_check_hostname"] is True
    assert "ssl_certfile" not in args
    context = kafka_clients.aiokafka_args(s)["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "test-ca"),),)]


def test_mutual_tls_loads_the_client_certificate(pki: dict[str, Path]) -> None:
    s = settings(security_protocol="SSL", ssl_cafile=pki["ca"], ssl_certfile=pki["cert"], ssl_keyfile=pki["key"],
                 ssl_check_hostname=False)  # fmt: skip
    args = kafka_clients.kafka_python_args(s)
    assert args["security_protocol"] == "SSL" and "sasl_mechanism" not in args
    assert (args["ssl_certfile"], args["ssl_keyfile"]) == (str(pki["cert"]), str(pki["key"]))
    assert args["ssl_check_hostname"] is False
    context = kafka_clients.ssl_context(s.kafka)
    assert context is not None and not context.check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED  # no hostname check, yet the chain is still verified


def test_every_argument_is_one_kafka_python_knows(pki: dict[str, Path]) -> None:
    s = sasl("SASL_SSL", ssl_cafile=pki["ca"], ssl_certfile=pki["cert"], ssl_keyfile=pki["key"])
    args = kafka_clients.kafka_python_args(s)
    for client in (KafkaProducer, KafkaConsumer, KafkaAdminClient):
        assert set(args) <= set(client.DEFAULT_CONFIG), client.__name__


@pytest.mark.parametrize(
    ("protocol", "credentials"), [("SASL_PLAINTEXT", "SASLCredentials"), ("SASL_SSL", "SASLCredentials"),
                                  ("SSL", "SSLCredentials")]
)  # fmt: skip
def test_faust_gets_the_same_connection_as_aiokafka(protocol: str, credentials: str, pki: dict[str, Path]) -> None:
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    s = sasl(protocol, "SCRAM-SHA-256", ssl_cafile=pki["ca"]) if protocol.startswith("SASL") else settings(
        security_protocol=protocol, ssl_cafile=pki["ca"]
    )  # fmt: skip
    args = kafka_clients.faust_args(s)
    assert args["broker"] == "kafka://a:9093;kafka://b:9093"
    assert type(args["broker_credentials"]).__name__ == credentials
    assert SECRET not in repr(args["broker_credentials"])
    # What faust-streaming hands each aiokafka producer and consumer it makes.
    auth = credentials_to_aiokafka_auth(args["broker_credentials"])
    direct = kafka_clients.aiokafka_args(s)
    assert auth["security_protocol"] == direct["security_protocol"] == protocol
    for key in ("sasl_mechanism", "sasl_plain_username", "sasl_plain_password"):
        assert auth.get(key) == direct.get(key)
    assert (auth.get("ssl_context") is None) == (protocol == "SASL_PLAINTEXT")


def test_child_env_reproduces_the_connection_in_a_child_process(pki, monkeypatch: pytest.MonkeyPatch) -> None:
    s = sasl("SASL_SSL", ssl_cafile=pki["ca"], ssl_check_hostname=False)
    env = kafka_clients.child_env(s)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    child = load_settings()
    assert child.stack.kafka_servers == "a:9093,b:9093"
    assert kafka_clients.kafka_python_args(child) == kafka_clients.kafka_python_args(s)


def test_the_demo_worker_gets_the_real_password() -> None:
    from sentimon.replay.demo import settings_env

    env = settings_env(sasl("SASL_PLAINTEXT"))
    assert env["SENTIMON_KAFKA__SASL_PASSWORD"] == SECRET


# --- settings checks -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["sasl_username", "sasl_password"])
def test_sasl_without_a_login_names_the_setting(missing: str) -> None:
    login = {"sasl_username": "app", "sasl_password": SECRET}
    del login[missing]
    with pytest.raises(ConfigError, match=rf"kafka\.{missing} \(SENTIMON_KAFKA__{missing.upper()}"):
        settings(security_protocol="SASL_SSL", **login)


def test_a_client_certificate_needs_its_key(pki: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match=r"kafka\.ssl_certfile .* without kafka\.ssl_keyfile"):
        settings(security_protocol="SSL", ssl_certfile=pki["cert"])
    with pytest.raises(ConfigError, match=r"kafka\.ssl_keyfile .* without kafka\.ssl_certfile"):
        settings(security_protocol="SSL", ssl_keyfile=pki["key"])


def test_a_missing_tls_file_names_the_setting_and_the_path(tmp_path: Path) -> None:
    gone = tmp_path / "nope.pem"
    with pytest.raises(ConfigError, match=rf"kafka\.ssl_cafile .*: {gone} is not a file"):
        settings(security_protocol="SSL", ssl_cafile=gone)
    # Files only matter when the protocol uses TLS.
    assert settings(security_protocol="PLAINTEXT", ssl_cafile=gone).kafka.ssl_cafile == gone


def test_unknown_protocol_or_mechanism_is_refused() -> None:
    with pytest.raises(ConfigError, match="security_protocol"):
        settings(security_protocol="TLS")
    with pytest.raises(ConfigError, match="sasl_mechanism"):
        sasl("SASL_SSL", "GSSAPI")


def test_the_password_is_never_shown() -> None:
    s = sasl("SASL_PLAINTEXT")
    assert s.kafka.sasl_password is not None and s.kafka.sasl_password.get_secret_value() == SECRET
    for shown in (repr(s), str(s), repr(s.kafka), s.model_dump_json(), str(s.model_dump())):
        assert SECRET not in shown
    with pytest.raises(ConfigError) as caught:
        sasl("SASL_PLAINTEXT", "NOPE")
    assert SECRET not in str(caught.value)


def test_replace_keeps_the_password_working() -> None:
    s = sasl("SASL_PLAINTEXT").replace(window_prefix="other", kafka={"sasl_username": "other"})
    assert s.kafka.sasl_password is not None and s.kafka.sasl_password.get_secret_value() == SECRET
    assert kafka_clients.kafka_python_args(s)["sasl_plain_password"] == SECRET
    assert s.kafka.sasl_username == "other"


def test_a_toml_file_and_flat_env_names_configure_the_part(tmp_path: Path, monkeypatch) -> None:
    config = tmp_path / "client.toml"
    config.write_text(
        '[kafka]\nsecurity_protocol = "SASL_PLAINTEXT"\nsasl_mechanism = "SCRAM-SHA-256"\nsasl_username = "app"\n'
    )
    monkeypatch.setenv("SENTIMON_KAFKA_SASL_PASSWORD", SECRET)
    monkeypatch.setenv("SENTIMON_KAFKA_BOOTSTRAP", "c:9093")  # the stack's flat name is still the stack's
    s = load_settings(config)
    assert s.stack.kafka_servers == "c:9093"
    assert kafka_clients.kafka_python_args(s)["sasl_plain_password"] == SECRET
    assert s.kafka.sasl_mechanism == "SCRAM-SHA-256"


def test_replication_settings() -> None:
    s = load_settings(topics={"replication_factor": 3, "min_insync_replicas": 2})
    assert (s.topics.replication_factor, s.topics.min_insync_replicas) == (3, 2)
    assert load_settings().topics.min_insync_replicas is None  # the broker's own default
    with pytest.raises(ConfigError, match=r"topics\.min_insync_replicas \(3\) must not exceed topics\.replication"):
        load_settings(topics={"replication_factor": 2, "min_insync_replicas": 3})
    with pytest.raises(ConfigError, match="replication_factor"):
        load_settings(topic_replication_factor=0)


def test_unreachable_errors_name_the_connection_settings_in_force(pki: dict[str, Path]) -> None:
    plain = kafka_clients.settings_to_check(load_settings())
    assert "security_protocol PLAINTEXT" in plain and "SENTIMON_KAFKA__SECURITY_PROTOCOL" in plain
    assert "sasl" not in plain and "ssl_cafile" not in plain
    secured = kafka_clients.settings_to_check(sasl("SASL_SSL", ssl_cafile=pki["ca"]))
    for name in ("sasl_username", "sasl_password", "sasl_mechanism", "ssl_cafile"):
        assert f"kafka.{name} (SENTIMON_KAFKA__{name.upper()}" in secured
    assert SECRET not in secured and "ssl_certfile" not in secured
